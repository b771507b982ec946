"""Latency measurement in a process of its own, pinned to one core (`python -P latency_process.py`, see _child.py).

Mirrors benchmark_model: init (load + allocate), first inference, warm-up runs, then timed
runs until both `num_runs` and `min_secs` are reached (or `max_secs` passes). Prints a line of JSON:
the statistics of every timed run and a bounded sample of them (`answer`), never every run. With
`--probe`, a second line: how much of the model XNNPACK takes (harness.devices.local.acceleration).
"""

from __future__ import annotations

import argparse
import array
import json
import os
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

DEFAULT_DECODE_TOKENS = 16  # generative models: decode steps per timed run unless told


def _random_input(detail: dict, rng: np.random.Generator) -> np.ndarray:
    dtype = np.dtype(detail["dtype"])
    shape = [max(1, int(d)) for d in detail["shape"]]
    if dtype.kind == "f":
        return rng.uniform(0, 1, size=shape).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dtype)


def measure(model: str, threads: int, warmup_runs: int, num_runs: int, min_secs: float, max_secs: float,
            decode_tokens: int | None = None) -> dict:
    """Time the model; return init/first/warm-up times and every timed run, in milliseconds (`samples`:
    8 bytes a run, so what the runs keep adds little to the peak RSS measured after them). A generative
    model (prefill and decode signatures, harness.tflite.generation) is timed as a prompt's prefill then
    `decode_tokens` decode steps per run: each sample is that run's mean decode step (ms per token), and
    `generation` holds every run's prefill, time to first token and decode step."""
    from harness.tflite.generation import decode_budget, generative_signatures, timed_generation
    from harness.tflite.runtime import load_interpreter

    rss_before_mb = peak_rss_mb()
    start = time.perf_counter()
    interpreter = load_interpreter(Path(model), threads)
    interpreter.allocate_tensors()
    init_ms = (time.perf_counter() - start) * 1e3
    rng = np.random.default_rng(0)
    signatures = generative_signatures(interpreter)
    runs: list[dict] = []
    steps = 0
    if signatures is None:
        for detail in interpreter.get_input_details():
            interpreter.set_tensor(detail["index"], _random_input(detail, rng))
    else:
        steps = decode_budget(signatures, decode_tokens or DEFAULT_DECODE_TOKENS, Path(model).name)

    def timed_invoke() -> float:
        if signatures is not None:
            runs.append(timed_generation(interpreter, signatures, steps, rng))
            return float(runs[-1]["decode_ms"])
        begin = time.perf_counter()
        interpreter.invoke()
        return (time.perf_counter() - begin) * 1e3

    first_ms = timed_invoke()
    warmup = [timed_invoke() for _ in range(warmup_runs)]
    runs.clear()
    samples = timed_runs(timed_invoke, num_runs, min_secs, max_secs)
    generation = None if signatures is None else {
        "prefill_tokens": signatures.prefill_tokens, "decode_tokens": steps, "runs": runs}
    return {
        "model": model,
        "init": init_ms,
        "first": first_ms,
        "warmup_mean": float(np.mean(warmup)) if warmup else None,
        "samples": samples,
        **({"generation": generation} if generation is not None else {}),
        "peak_rss_mb": peak_rss_mb(),
        "rss_before_model_mb": rss_before_mb,
        "core": sorted(os.sched_getaffinity(0)),
        "threads": threads,
    }


def peak_rss_mb() -> float:
    """This process's peak resident memory (MB): Linux's VmHWM, which starts afresh at exec; elsewhere
    ru_maxrss (on Linux that one keeps the parent's peak across fork and exec: the whole run's size)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed_runs(timed: Callable[[], float], num_runs: int, min_secs: float, max_secs: float) -> array.array:
    """Timed runs until both `num_runs` and `min_secs` are reached (or `max_secs` passes)."""
    samples = array.array("d")
    begin = time.perf_counter()
    while True:
        elapsed = time.perf_counter() - begin
        if (len(samples) >= num_runs and elapsed >= min_secs) or (samples and elapsed >= max_secs):
            return samples
        samples.append(timed())


def answer(result: dict) -> dict:
    """What the process sends its parent: `stats` over every timed run (harness.stats.summarize:
    median, mean, p90, std, min, max and `count`, the number of runs) and, as `samples`, a bounded
    sample of them (stats.bounded_sample: at most stats.SAMPLE_LIMIT order statistics, deterministic).
    What it sends grows with nothing: a microsecond model at `min_secs: 1` times about a million runs."""
    from harness.stats import bounded_sample, summarize

    samples = result["samples"]
    return {**result, "stats": summarize(samples), "samples": bounded_sample(samples)}


def die_with(parent: int | None) -> None:
    """Linux: be killed when the process that started this one dies (it runs in a session of its
    own, so a `kill -9` of the run reaches it only this way); exit at once if that already happened."""
    if parent is None or not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        sys.exit("the run that started this measurement is gone")


_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("model")
    parser.add_argument("--core", type=int, required=True)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--warmup-runs", type=int, default=10)
    parser.add_argument("--num-runs", type=int, default=50)
    parser.add_argument("--min-secs", type=float, default=1.0)
    parser.add_argument("--max-secs", type=float, default=60.0)
    parser.add_argument("--decode-tokens", type=int, help="generative models: decode steps per timed run")
    parser.add_argument("--parent", type=int, help="pid of the run: this process dies with it")
    parser.add_argument("--probe", action="store_true", help="then print the model's XNNPACK acceleration")
    args = parser.parse_args(argv)
    die_with(args.parent)
    spread = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {args.core})  # before the runtime starts any thread
    result = measure(args.model, args.threads, args.warmup_runs, args.num_runs, args.min_secs, args.max_secs,
                     args.decode_tokens)
    print(json.dumps(answer(result)), flush=True)
    if args.probe:
        probe(args.model, args.threads, spread)


def probe(model: str, threads: int, spread: set[int]) -> None:
    """Print the model's acceleration (harness.tflite.runtime.acceleration) as a line of JSON, on the
    cores the process started with: the parent's watch of the pinned core ends where the pinning does,
    and a crash in LiteRT's CompiledModel here loses this line only, never the timing printed before."""
    from harness.tflite.runtime import acceleration

    os.sched_setaffinity(0, spread)
    print(json.dumps(acceleration(Path(model), threads)), flush=True)


if __name__ == "__main__":
    main()
