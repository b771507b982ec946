"""The `generation` task: a small language model (`generative:` source) run teacher-forced on seeded prompts,
its logits compared with the float32 cell's on the same token sequences, and its prefill + decode timed on the
pinned core (the latency process's generation mode, harness.tflite.generation).

Every sequence is `prefill` prompt tokens then `decode_tokens` more: the prompt goes through the prefill
signature, each following token of the sequence (not the model's own choice) through the decode signature,
so every scheme sees the same context and each position's logits can be compared with float's.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field, ValidationInfo, field_validator, model_validator
from scipy.special import log_softmax

from harness.datasets import Dataset
from harness.errors import HarnessError, NotApplicable
from harness.record import GenerationRecord
from harness.tasks._base import TASKS, Metric, Task, TaskOptions

_TINY = 1e-30


class GenerationOptions(TaskOptions):
    prompts: Literal["synthetic", "text"] = Field("synthetic", description=(
        "synthetic: seeded random token ids (no tokenizer needed; no perplexity); text: the `text` file "
        "tokenized (perplexity too)"))
    samples: int = Field(4, ge=1, le=1000, description="prompt sequences evaluated (teacher-forced)")
    seed: int = Field(0, description="the synthetic token ids")
    prefill: int = Field(16, ge=1, le=8192, description=(
        "prompt tokens: the length of the model's prefill signature (the model is exported with it)"))
    decode_tokens: int = Field(16, ge=1, le=8192, description=(
        "tokens decoded after the prompt, one decode call each (prefill + decode_tokens <= the model's max_tokens)"))
    text: str | None = Field(None, description=(
        "prompts: text: a UTF-8 text file (relative to the suite) cut into `samples` sequences of prefill + "
        "decode_tokens + 1 tokens from its start"))
    tokenizer: str | None = Field(None, description=(
        "a SentencePiece model file (relative to the suite) tokenizing `text`; without one, UTF-8 bytes "
        "(token = byte + 3: the toy family's, needs vocab_size >= 259)"))
    files: dict[str, str] | None = Field(None, description=(
        "(set by the loader) `text` and `tokenizer` resolved, with their sha256 (text_sha256, tokenizer_sha256)"))

    @field_validator("text", "tokenizer")
    @classmethod
    def _exists(cls, value: str | None, info: ValidationInfo) -> str | None:
        base = (info.context or {}).get("base_dir")
        if value is not None and base is not None and not (Path(base) / value).is_file():
            raise ValueError(f"{Path(base) / value} does not exist")
        return value

    @model_validator(mode="before")
    @classmethod
    def _resolve(cls, data: Any, info: ValidationInfo) -> Any:
        base = (info.context or {}).get("base_dir")
        if not isinstance(data, dict) or base is None:
            return data
        if "files" in data:
            raise ValueError("`files` is set by the loader, not in the suite")
        return {**data, "files": resolved_files(data, Path(base))}

    @model_validator(mode="after")
    def _text_prompts(self) -> GenerationOptions:
        if (self.prompts == "text") != (self.text is not None):
            raise ValueError("`text` (a file) goes with `prompts: text`, and `prompts: text` needs one")
        if self.tokenizer is not None and self.text is None:
            raise ValueError("`tokenizer` tokenizes `text`: give `prompts: text` and a `text` file")
        if self.tokenizer is None and self.files and "text" in self.files:  # byte tokens: the size says it now
            length = self.prefill + self.decode_tokens + 1
            try:
                enough_tokens(Path(self.files["text"]).stat().st_size, self.samples, length, str(self.text))
            except HarnessError as exc:
                raise ValueError(str(exc)) from None
        return self


def resolved_files(data: dict[str, Any], base: Path) -> dict[str, str]:
    """The existing `text` and `tokenizer` files of raw options, resolved, with their sha256."""
    files: dict[str, str] = {}
    for key in ("text", "tokenizer"):
        value = data.get(key)
        if isinstance(value, str) and (base / value).is_file():
            path = (base / value).resolve()
            files[key], files[f"{key}_sha256"] = str(path), hashlib.sha256(path.read_bytes()).hexdigest()
    return files


@TASKS.register("generation", "small language models (generative: sources): time to first token, prefill/decode "
                "tokens/s, peak memory, logit SNR and next-token agreement vs float (teacher-forced)")
class Generation(Task):
    Options = GenerationOptions
    metrics = (
        Metric("ttft_ms", False, "time to first token: the prompt's prefill and the first decode step (ms, median)"),
        Metric("prefill_tokens_per_s", True, "prompt tokens / median prefill time"),
        Metric("decode_tokens_per_s", True, "1 / median time per decode step (one token, batch 1)"),
        Metric("peak_rss_mb", False, "peak resident memory of the measuring process (MB; the largest repeat's)"),
        Metric("logit_snr_db", True, "logits vs the float32 cell's on the same tokens, SNR (dB) of the worst "
               "position (the mean over positions: the record's generation.logit_snr_db_mean)", vs_float=True),
        Metric("next_token_agreement", True, "positions whose greedy next token equals the float32 cell's",
               vs_float=True),
        Metric("perplexity", False, "exp(mean next-token cross-entropy) of the teacher-forced logits on "
               "`prompts: text` (every predicted position; not produced on synthetic prompts)"),
    )
    headline = ("logit_snr_db",)  # the report's roles (with the float cell's decode speed as latency × float)
    agreement = "next_token_agreement"
    runs_model = True  # the runner calls `generate` on the cell's .tflite instead of batch inference on a dataset

    def prefill(self, options: GenerationOptions) -> int:
        """The prompt length a generative source is exported with."""
        return options.prefill

    def latency_workload(self, options: GenerationOptions) -> dict[str, Any]:
        """What the latency process times per run (LatencySpec fields; the suite's own `decode_tokens` wins)."""
        return {"decode_tokens": options.decode_tokens}

    def generate(self, model: Path, options: GenerationOptions) -> tuple[np.ndarray, GenerationRecord]:
        """Teacher-forced logits (sequences x positions x vocab) of the model on its prompts."""
        from harness.tflite.generation import decode_budget, require_signatures, teacher_forced
        from harness.tflite.runtime import load_interpreter

        interpreter = load_interpreter(model)
        signatures = require_signatures(interpreter, model.name)
        if signatures.prefill_tokens != options.prefill:
            raise HarnessError(f"{model.name}: its prefill signature takes {signatures.prefill_tokens} tokens, the "
                               f"task's prefill is {options.prefill}")
        decode_budget(signatures, options.decode_tokens, model.name)
        sequences = prompt_sequences(options, signatures.vocab_size)
        logits = np.stack([teacher_forced(interpreter, signatures, s) for s in sequences])
        info: GenerationRecord = {"prompts": options.prompts, "sequences": options.samples,
                                  "prefill_tokens": options.prefill, "decode_tokens": options.decode_tokens,
                                  "vocab_size": signatures.vocab_size, "max_tokens": signatures.max_tokens}
        return logits, info

    def score(self, outputs: list[np.ndarray], dataset: Dataset | None, options: GenerationOptions) -> dict[str, float]:
        """Perplexity of the teacher-forced logits on text prompts (the same tokens `generate` ran)."""
        if options.prompts != "text":
            raise NotApplicable("perplexity needs real-text prompts; synthetic token ids have none")
        sequences = prompt_sequences(options, outputs[0].shape[-1])
        return {"perplexity": perplexity(outputs[0], sequences[:, 1:])}

    def fidelity(self, outputs: list[np.ndarray], reference: list[np.ndarray],
                 options: GenerationOptions) -> dict[str, float]:
        """Worst-position logit SNR and next-token agreement vs the float32 cell's logits."""
        snr = position_snr_db(outputs[0], reference[0])
        agree = np.argmax(outputs[0], axis=-1) == np.argmax(reference[0], axis=-1)
        return {"logit_snr_db": float(np.min(snr)), "next_token_agreement": float(np.mean(agree))}


def prompt_sequences(options: GenerationOptions, vocab_size: int) -> np.ndarray:
    """`samples` token sequences of prefill + decode_tokens + 1: seeded random ids, or the text's tokens."""
    length = options.prefill + options.decode_tokens + 1
    if options.prompts == "synthetic":
        return np.random.default_rng(options.seed).integers(1, vocab_size, size=(options.samples, length))
    return cut_sequences(text_tokens(options, vocab_size), options.samples, length, str(options.text))


def text_tokens(options: GenerationOptions, vocab_size: int) -> np.ndarray:
    """The text file's tokens: its SentencePiece `tokenizer`'s, else UTF-8 bytes (harness.models.generative)."""
    from harness.models.generative import byte_tokens, sentencepiece_tokens

    try:
        text = read_checked(options, "text").decode("utf-8")
    except UnicodeDecodeError as exc:
        raise HarnessError(f"text {options.text}: not UTF-8 ({exc.reason} at byte {exc.start})") from None
    if options.tokenizer is None:
        return byte_tokens(text, vocab_size)
    read_checked(options, "tokenizer")
    return sentencepiece_tokens(text, Path((options.files or {})["tokenizer"]), vocab_size)


def read_checked(options: GenerationOptions, key: str) -> bytes:
    """A `text`/`tokenizer` file's bytes, checked to be what the suite was loaded with (its sha256)."""
    files = options.files or {}
    if key not in files:
        raise HarnessError(f"{key} {getattr(options, key)}: not resolved (load the suite with its folder)")
    try:
        data = Path(files[key]).read_bytes()
    except OSError as exc:
        raise HarnessError(f"cannot read {key} {files[key]}: {exc.strerror}") from None
    if hashlib.sha256(data).hexdigest() != files[f"{key}_sha256"]:
        raise HarnessError(f"{key} {files[key]} changed since the suite was loaded")
    return data


def cut_sequences(tokens: np.ndarray, samples: int, length: int, name: str) -> np.ndarray:
    """The first samples x length tokens as `samples` consecutive sequences; an error when there are fewer."""
    enough_tokens(len(tokens), samples, length, name)
    return tokens[: samples * length].reshape(samples, length)


def enough_tokens(count: int, samples: int, length: int, name: str) -> None:
    """A one-line error when `count` tokens cannot make `samples` sequences of `length`."""
    if count < samples * length:
        raise HarnessError(f"text {name} is too short: {count} tokens, samples {samples} x (prefill + "
                           f"decode_tokens + 1 = {length}) = {samples * length} needed")


def perplexity(logits: np.ndarray, targets: np.ndarray) -> float:
    """exp(mean cross-entropy) of logits (... x positions x vocab) predicting targets (... x positions),
    log-softmax in float64 (inf past float64's range)."""
    if logits.shape[:-1] != targets.shape:
        raise HarnessError(f"logits of shape {logits.shape} do not predict targets of shape {targets.shape}")
    log_probs = log_softmax(logits.astype(np.float64), axis=-1)
    picked = np.take_along_axis(log_probs, targets[..., None].astype(np.int64), axis=-1)
    with np.errstate(over="ignore"):  # a mean cross-entropy above ~709 nats: inf, recorded as "Infinity"
        return float(np.exp(-np.mean(picked)))


def position_snr_db(logits: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """SNR (dB) of each position's logits vs the reference's (signal: the reference; noise: the difference)."""
    if logits.shape != reference.shape:
        raise HarnessError(f"logits of shape {logits.shape} cannot be compared with the float cell's {reference.shape}")
    signal = np.sum(reference.astype(np.float64) ** 2, axis=-1)
    noise = np.sum((logits.astype(np.float64) - reference) ** 2, axis=-1)
    return np.asarray(10 * np.log10((signal + _TINY) / (noise + _TINY)))


def mean_snr_db(logits: np.ndarray, reference: np.ndarray) -> float:
    return float(np.mean(position_snr_db(logits, reference)))


def timing_metrics(raws: list[dict[str, Any]]) -> dict[str, float]:
    """ttft, prefill and decode tokens/s (medians over every timed run of every repeat) and the peak RSS of the
    measuring processes, from the latency process's generation results."""
    runs = [run for raw in raws for run in raw["generation"]["runs"]]
    prefill_tokens = raws[0]["generation"]["prefill_tokens"]
    prefill_ms = float(np.median([r["prefill_ms"] for r in runs]))
    decode_ms = float(np.median([r["decode_ms"] for r in runs]))
    return {"ttft_ms": float(np.median([r["ttft_ms"] for r in runs])),
            "prefill_tokens_per_s": prefill_tokens / (prefill_ms / 1e3),
            "decode_tokens_per_s": 1e3 / decode_ms,
            "peak_rss_mb": max(float(raw["peak_rss_mb"]) for raw in raws)}
