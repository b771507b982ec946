"""Latency measurement in a process of its own, pinned to one core (`python -P latency_process.py`, see _child.py).

Mirrors benchmark_model: init (load + allocate), first inference, warm-up runs, then timed
runs until both `num_runs` and `min_secs` are reached (or `max_secs` passes). Prints JSON: the
statistics of every timed run and a bounded sample of them (`answer`), never every run.
"""

from __future__ import annotations

import argparse
import array
import json
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np


def _random_input(detail: dict, rng: np.random.Generator) -> np.ndarray:
    dtype = np.dtype(detail["dtype"])
    shape = [max(1, int(d)) for d in detail["shape"]]
    if dtype.kind == "f":
        return rng.uniform(0, 1, size=shape).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dtype)


def measure(model: str, threads: int, warmup_runs: int, num_runs: int, min_secs: float, max_secs: float) -> dict:
    """Time the model; return init/first/warm-up times and every timed run, in milliseconds (`samples`:
    8 bytes a run, so what the runs keep adds little to the peak RSS measured after them)."""
    from harness.tflite.runtime import load_interpreter

    rss_before_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    interpreter = load_interpreter(Path(model), threads)
    interpreter.allocate_tensors()
    init_ms = (time.perf_counter() - start) * 1e3
    rng = np.random.default_rng(0)
    for detail in interpreter.get_input_details():
        interpreter.set_tensor(detail["index"], _random_input(detail, rng))

    def timed_invoke() -> float:
        begin = time.perf_counter()
        interpreter.invoke()
        return (time.perf_counter() - begin) * 1e3

    first_ms = timed_invoke()
    warmup = [timed_invoke() for _ in range(warmup_runs)]
    samples = array.array("d")
    begin = time.perf_counter()
    while True:
        elapsed = time.perf_counter() - begin
        if (len(samples) >= num_runs and elapsed >= min_secs) or (samples and elapsed >= max_secs):
            break
        samples.append(timed_invoke())
    return {
        "model": model,
        "init": init_ms,
        "first": first_ms,
        "warmup_mean": float(np.mean(warmup)) if warmup else None,
        "samples": samples,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rss_before_model_mb": rss_before_kb / 1024,
        "core": sorted(os.sched_getaffinity(0)),
        "threads": threads,
    }


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
    parser.add_argument("--parent", type=int, help="pid of the run: this process dies with it")
    args = parser.parse_args(argv)
    die_with(args.parent)
    os.sched_setaffinity(0, {args.core})  # before the runtime starts any thread
    result = measure(args.model, args.threads, args.warmup_runs, args.num_runs, args.min_secs, args.max_secs)
    json.dump(answer(result), sys.stdout)


if __name__ == "__main__":
    main()
