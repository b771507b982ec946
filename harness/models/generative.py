"""`generative:` model sources: a decoder built with litert-torch's generative layers from a config (random
weights from a seed) or a family's checkpoint, exported to one float .tflite with `prefill_<N>` and `decode`
signatures and an external KV cache of `max_tokens` (litert_torch.generative.utilities.converter), cached
by the config, the prompt length and the converter's versions.

torch and litert-torch are the `torch` extra (`pip install 'quantbench[torch]'`), imported only here, lazily.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from harness.cache import ArtifactCache, content_key, file_digest
from harness.config.schema import GenerativeSpec
from harness.errors import HarnessError
from harness.versions import package_versions

EXTRA = "quantbench[torch]"
_PACKAGES = ("torch", "litert-torch")
DEFAULT_PREFILL = 16
TOY = {"layers": 2, "embedding_dim": 128, "heads": 4, "vocab_size": 1024}
# family → (litert-torch example module, its config function, its checkpoint builder)
FAMILIES = {
    "smollm": ("smollm.smollm", "get_model_config", "build_model"),
    "smollm2": ("smollm.smollm", "get_model_config_v2", "build_model_v2"),
    "qwen2.5-0.5b": ("qwen.qwen", "get_0_5b_model_config", "build_0_5b_model"),
    "qwen3-0.6b": ("qwen.qwen3", "get_0_6b_model_config", "build_0_6b_model"),
    "gemma-2b": ("gemma.gemma1", "get_model_config_2b", "build_2b_model"),
    "tinyllama": ("tiny_llama.tiny_llama", "get_model_config", "build_model"),
}


def require_extra() -> None:
    """A one-line error naming the extra when torch or litert-torch is not installed."""
    missing = [name for name, module in (("torch", "torch"), ("litert-torch", "litert_torch"))
               if importlib.util.find_spec(module) is None]
    if missing:
        raise HarnessError(f"generative models need {' and '.join(missing)}: install the torch extra "
                           f"(pip install '{EXTRA}')")


def checkpoint_path(spec: GenerativeSpec, base_dir: Path) -> Path | None:
    """The checkpoint a spec names (relative to the suite), checked to exist; None for random weights."""
    if spec.checkpoint is None:
        return None
    path = (base_dir / spec.checkpoint).resolve()
    if not path.exists():
        raise HarnessError(f"generative checkpoint {path} does not exist")
    return path


def converter_versions() -> dict[str, str]:
    """Installed versions of the packages that shape a generative source's .tflite."""
    return package_versions(_PACKAGES)


def generative_source(spec: GenerativeSpec, prefill: int, base_dir: Path,
                      cache: ArtifactCache) -> tuple[Path, dict[str, Any]]:
    """The float .tflite of a generative spec with a `prefill` signature of that many tokens (built, exported
    and cached on first use) and what it is (family, parameters, signatures)."""
    from harness.versions import tool_versions

    require_extra()
    checkpoint = checkpoint_path(spec, base_dir)
    if prefill >= spec.max_tokens:
        raise HarnessError(f"prefill ({prefill}) must be below the model's max_tokens ({spec.max_tokens})")
    key = content_key(kind="generative-source", spec=spec.model_dump(mode="json"), prefill=prefill,
                      checkpoint=file_digest(checkpoint) if checkpoint and checkpoint.is_file() else str(checkpoint),
                      versions={**tool_versions(), **converter_versions()})
    info: dict[str, Any] = {}

    def build(target: Path) -> None:
        info.update(export(spec, prefill, checkpoint, target))
        cache.write_json("models", key, info)

    path, _ = cache.get_or_create("models", key, ".tflite", build)
    return path, cache.read_json("models", key) or info


def export(spec: GenerativeSpec, prefill: int, checkpoint: Path | None, target: Path) -> dict[str, Any]:
    """Build the decoder and export it to `target` (float32, logits on prefill too)."""
    import tempfile

    import torch

    converter = importlib.import_module("litert_torch.generative.utilities.converter")
    export_config = importlib.import_module("litert_torch.generative.utilities.export_config")
    importlib.import_module("litert_torch.progress").console.quiet = True  # its own progress lines, not the run's
    model, config = build_decoder(spec, checkpoint)
    with tempfile.TemporaryDirectory() as scratch:
        written = converter.convert_to_tflite(
            model, scratch, "model", prefill_seq_len=prefill, kv_cache_max_len=spec.max_tokens, quantize="none",
            config=config, export_config=export_config.ExportConfig(output_logits_on_prefill=True))
        target.write_bytes(Path(written).read_bytes())
    return {"family": spec.family, "parameters": int(sum(p.numel() for p in model.parameters())),
            "layers": config.num_layers, "embedding_dim": config.embedding_dim, "vocab_size": config.vocab_size,
            "max_tokens": spec.max_tokens, "prefill": prefill, "weights": "checkpoint" if checkpoint else
            f"random (seed {spec.seed})", "torch": torch.__version__, **converter_versions()}


def build_decoder(spec: GenerativeSpec, checkpoint: Path | None) -> tuple[Any, Any]:
    """The torch decoder (eval mode) and its litert-torch ModelConfig."""
    import torch

    model_builder = importlib.import_module("litert_torch.generative.utilities.model_builder")
    torch.manual_seed(spec.seed)
    config = model_config(spec)
    if spec.family != "toy" and checkpoint is not None:
        builder = _family(spec.family)[1]
        return builder(str(checkpoint), mask_cache_size=spec.max_tokens), config
    model = model_builder.DecoderOnlyModel(config, mask_cache_size=spec.max_tokens).eval()
    if checkpoint is None:  # the padding token's embedding row starts at zero: random like the rest
        with torch.no_grad():
            model.tok_embedding.weight[0].normal_()
    else:  # toy: a torch state_dict
        try:
            model.load_state_dict(torch.load(checkpoint, map_location="cpu", weights_only=True))
        except (RuntimeError, OSError, ValueError) as exc:
            raise HarnessError(f"generative checkpoint {checkpoint}: not a state_dict of this toy decoder "
                               f"({str(exc).splitlines()[0]})") from None
    return model, config


def model_config(spec: GenerativeSpec) -> Any:
    """litert-torch's ModelConfig of the spec: the toy decoder's, or the family's with the spec's overrides."""
    if spec.family == "toy":
        return toy_config(spec)
    config = _family(spec.family)[0]()
    if spec.layers is not None:
        config.num_layers = spec.layers
    if spec.vocab_size is not None:
        config.vocab_size = spec.vocab_size
    config.max_seq_len = max(config.max_seq_len, spec.max_tokens)
    return config


def _family(name: str) -> tuple[Callable[[], Any], Callable[..., Any]]:
    module_name, config_name, builder_name = FAMILIES[name]
    module = importlib.import_module(f"litert_torch.generative.examples.{module_name}")
    return getattr(module, config_name), getattr(module, builder_name)


def toy_config(spec: GenerativeSpec) -> Any:
    """A small Llama-like decoder: RMS norm, rotary attention, a gated SiLU feed-forward 4x as wide."""
    cfg = importlib.import_module("litert_torch.generative.layers.model_config")
    width, heads = spec.embedding_dim or TOY["embedding_dim"], spec.heads or TOY["heads"]
    attention = cfg.AttentionConfig(num_heads=heads, head_dim=width // heads, num_query_groups=heads,
                                    rotary_base=10000, rotary_percentage=1.0)
    feed_forward = cfg.FeedForwardConfig(type=cfg.FeedForwardType.GATED, intermediate_size=4 * width,
                                         activation=cfg.ActivationConfig(cfg.ActivationType.SILU))
    norm = cfg.NormalizationConfig(type=cfg.NormalizationType.RMS_NORM)
    block = cfg.TransformerBlockConfig(attn_config=attention, ff_config=feed_forward,
                                       pre_attention_norm_config=norm, post_attention_norm_config=norm)
    return cfg.ModelConfig(vocab_size=spec.vocab_size or TOY["vocab_size"], num_layers=spec.layers or TOY["layers"],
                           max_seq_len=spec.max_tokens, embedding_dim=width, block_configs=block,
                           final_norm_config=norm)


BYTE_OFFSET = 3  # byte-level tokens: ids 0..2 stay free (padding, begin, end), byte b is token b + 3


def byte_tokens(text: str, vocab_size: int) -> np.ndarray:
    """UTF-8 bytes as token ids (byte + BYTE_OFFSET): the toy family's tokenizer."""
    if vocab_size < 256 + BYTE_OFFSET:
        raise HarnessError(f"byte-level text prompts need a vocabulary of at least {256 + BYTE_OFFSET} tokens "
                           f"(256 bytes + {BYTE_OFFSET}); the model's is {vocab_size}: give a `tokenizer`")
    return np.frombuffer(text.encode("utf-8"), dtype=np.uint8).astype(np.int64) + BYTE_OFFSET


def sentencepiece_tokens(text: str, model: Path, vocab_size: int) -> np.ndarray:
    """`text` tokenized by a SentencePiece model file, checked to fit the model's vocabulary."""
    import sentencepiece

    try:
        processor = sentencepiece.SentencePieceProcessor(model_file=str(model))
    except (OSError, RuntimeError) as exc:
        raise HarnessError(f"tokenizer {model}: not a SentencePiece model ({str(exc).splitlines()[0]})") from None
    if processor.get_piece_size() > vocab_size:
        raise HarnessError(f"tokenizer {model} has {processor.get_piece_size()} pieces, more than the model's "
                           f"vocabulary of {vocab_size}")
    return np.asarray(processor.encode(text), dtype=np.int64)
