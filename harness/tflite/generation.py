"""Running a generative .tflite (litert-torch's export: `prefill_<N>` and `decode` signatures with an
external KV cache) on LiteRT: teacher-forced logits for the generation task and a timed prefill +
decode loop for the local latency process.

A KV-cache model's signatures take `tokens`, `input_pos` and one `kv_cache_{k,v}_<layer>` tensor per
layer, and return the updated caches (and `logits`); the cache goes through numpy from one call to
the next (the Python API has no in-place cache), so the timings include that copy.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from harness.errors import HarnessError

_PREFILL = re.compile(r"prefill_(\d+)")


@dataclass(frozen=True)
class Signatures:
    """A generative model's prefill signature (and its length), its decode signature, its cache size
    and vocabulary (from the decode signature's logits)."""

    prefill: str
    prefill_tokens: int
    decode: str
    max_tokens: int
    vocab_size: int


def generative_signatures(interpreter: Any) -> Signatures | None:
    """The model's prefill/decode signatures, or None when it is not a KV-cache generative model."""
    keys = list(interpreter.get_signature_list())
    prefills = sorted((int(m[1]), key) for key in keys if (m := _PREFILL.fullmatch(key)))
    if not prefills or "decode" not in keys:
        return None
    decode = interpreter.get_signature_runner("decode")
    cache = [d for name, d in decode.get_input_details().items() if name.startswith("kv_cache_")]
    logits = decode.get_output_details().get("logits")
    if not cache or logits is None:
        return None
    return Signatures(prefills[0][1], prefills[0][0], "decode", int(cache[0]["shape"][1]), int(logits["shape"][-1]))


def require_signatures(interpreter: Any, name: str) -> Signatures:
    found = generative_signatures(interpreter)
    if found is None:
        raise HarnessError(f"{name}: not a generative model (needs prefill_<N> and decode signatures with a "
                           "KV cache and logits, as litert-torch exports them)")
    return found


def empty_cache(runner: Any) -> dict[str, np.ndarray]:
    """Zeroed KV-cache inputs of a signature runner."""
    return {name: np.zeros(d["shape"], dtype=d["dtype"])
            for name, d in runner.get_input_details().items() if name.startswith("kv_cache_")}


def _step(runner: Any, tokens: np.ndarray, start: int, cache: dict[str, np.ndarray]) -> tuple[
        np.ndarray | None, dict[str, np.ndarray]]:
    """One signature call at positions start.. for `tokens`; the logits (None when it gives none) and the cache."""
    positions = np.arange(start, start + len(tokens), dtype=np.int32)
    out = runner(tokens=tokens.astype(np.int32)[None, :], input_pos=positions, **cache)
    return out.get("logits"), {name: value for name, value in out.items() if name.startswith("kv_cache_")}


def teacher_forced(interpreter: Any, signatures: Signatures, sequence: np.ndarray) -> np.ndarray:
    """Logits (positions x vocab) predicting each next token of `sequence` (prefill_tokens + decode steps
    long): the prompt through the prefill signature, then each following token of the sequence (not the
    model's own choice) through the decode signature, so every model sees the same context."""
    prefill = interpreter.get_signature_runner(signatures.prefill)
    decode = interpreter.get_signature_runner(signatures.decode)
    prompt = sequence[: signatures.prefill_tokens]
    logits, cache = _step(prefill, prompt, 0, empty_cache(prefill))
    if logits is None:
        raise HarnessError("the prefill signature returns no logits (export with output_logits_on_prefill)")
    rows = [logits[0]]
    for position in range(signatures.prefill_tokens, len(sequence) - 1):
        logits, cache = _step(decode, sequence[position : position + 1], position, cache)
        assert logits is not None
        rows.append(logits[0])
    return np.concatenate(rows, axis=0).astype(np.float32)


def timed_generation(interpreter: Any, signatures: Signatures, decode_tokens: int,
                     rng: np.random.Generator) -> dict[str, Any]:
    """One prompt prefilled then `decode_tokens` greedy decode steps, timed (ms): prefill, the first
    decode step and the mean decode step."""
    prefill = interpreter.get_signature_runner(signatures.prefill)
    decode = interpreter.get_signature_runner(signatures.decode)
    prompt = rng.integers(1, signatures.vocab_size, size=signatures.prefill_tokens)
    cache = empty_cache(prefill)
    begin = time.perf_counter()
    logits, cache = _step(prefill, prompt, 0, cache)
    prefill_ms = (time.perf_counter() - begin) * 1e3
    token = np.array([int(np.argmax(logits[0, -1]))]) if logits is not None else prompt[-1:]
    steps = []
    for position in range(signatures.prefill_tokens, signatures.prefill_tokens + decode_tokens):
        begin = time.perf_counter()
        logits, cache = _step(decode, token, position, cache)
        steps.append((time.perf_counter() - begin) * 1e3)
        assert logits is not None
        token = np.array([int(np.argmax(logits[0, -1]))])
    return {"prefill_ms": prefill_ms, "ttft_ms": prefill_ms + steps[0], "decode_ms": float(np.mean(steps))}


def decode_budget(signatures: Signatures, decode_tokens: int, name: str) -> int:
    """`decode_tokens` if the KV cache holds the prompt and them, else a one-line error."""
    if signatures.prefill_tokens + decode_tokens > signatures.max_tokens:
        raise HarnessError(f"{name}: prefill {signatures.prefill_tokens} + decode_tokens {decode_tokens} exceed the "
                           f"model's KV cache of {signatures.max_tokens} tokens (max_tokens)")
    return decode_tokens
