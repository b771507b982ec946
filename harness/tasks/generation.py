"""The `generation` task: a small language model (`generative:` source) run teacher-forced on seeded prompts,
its logits compared with the float32 cell's on the same token sequences, and its prefill + decode timed on the
pinned core (the latency process's generation mode, harness.tflite.generation).

Every sequence is `prefill` prompt tokens then `decode_tokens` more: the prompt goes through the prefill
signature, each following token of the sequence (not the model's own choice) through the decode signature,
so every scheme sees the same context and each position's logits can be compared with float's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field

from harness.datasets import Dataset
from harness.errors import HarnessError, NotApplicable
from harness.record import GenerationRecord
from harness.tasks._base import TASKS, Metric, Task, TaskOptions

_TINY = 1e-30


class GenerationOptions(TaskOptions):
    prompts: Literal["synthetic"] = Field("synthetic", description=(
        "synthetic: seeded random token ids (no tokenizer needed; no perplexity)"))
    samples: int = Field(4, ge=1, le=1000, description="prompt sequences evaluated (teacher-forced)")
    seed: int = Field(0, description="the synthetic token ids")
    prefill: int = Field(16, ge=1, le=8192, description=(
        "prompt tokens: the length of the model's prefill signature (the model is exported with it)"))
    decode_tokens: int = Field(16, ge=1, le=8192, description=(
        "tokens decoded after the prompt, one decode call each (prefill + decode_tokens <= the model's max_tokens)"))


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
        Metric("perplexity", False, "exp(mean next-token cross-entropy) on real-text prompts (not synthetic ones)"),
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
        """Teacher-forced logits (sequences x positions x vocab) of the model on the seeded prompts."""
        from harness.tflite.generation import decode_budget, require_signatures, teacher_forced
        from harness.tflite.runtime import load_interpreter

        interpreter = load_interpreter(model)
        signatures = require_signatures(interpreter, model.name)
        if signatures.prefill_tokens != options.prefill:
            raise HarnessError(f"{model.name}: its prefill signature takes {signatures.prefill_tokens} tokens, the "
                               f"task's prefill is {options.prefill}")
        decode_budget(signatures, options.decode_tokens, model.name)
        rng = np.random.default_rng(options.seed)
        sequences = rng.integers(1, signatures.vocab_size, size=(options.samples, options.prefill
                                                                  + options.decode_tokens + 1))
        logits = np.stack([teacher_forced(interpreter, signatures, s) for s in sequences])
        info: GenerationRecord = {"prompts": options.prompts, "sequences": options.samples,
                                  "prefill_tokens": options.prefill, "decode_tokens": options.decode_tokens,
                                  "vocab_size": signatures.vocab_size, "max_tokens": signatures.max_tokens}
        return logits, info

    def score(self, outputs: list[np.ndarray], dataset: Dataset | None, options: GenerationOptions) -> dict[str, float]:
        raise NotApplicable("perplexity needs real-text prompts; synthetic token ids have none")

    def fidelity(self, outputs: list[np.ndarray], reference: list[np.ndarray],
                 options: GenerationOptions) -> dict[str, float]:
        """Worst-position logit SNR and next-token agreement vs the float32 cell's logits."""
        snr = position_snr_db(outputs[0], reference[0])
        agree = np.argmax(outputs[0], axis=-1) == np.argmax(reference[0], axis=-1)
        return {"logit_snr_db": float(np.min(snr)), "next_token_agreement": float(np.mean(agree))}


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
