"""How much of a model the local device's XNNPACK path takes, probed in a process of its own
(`python -P acceleration.py MODEL`, see _child.py): LiteRT's CompiledModel logs to the process's
stderr and a crash in it must not take the run down. Prints JSON (harness.record.Acceleration).

The answer depends on the model's bytes, the runtime, the harness code that reads it, the kernels
(XNNPACK over LiteRT's builtin op resolver, CompiledModel on the CPU accelerator), the threads and
the CPU, and on nothing else: `cached_probe` keeps it in the artifact cache under exactly those, so
a model is probed once per host kind and runtime, not once per run. A failed probe is not kept.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness.cache import ArtifactCache

TIMEOUT_S = 600
CACHE_KIND = "acceleration"  # the artifact cache's folder of probe answers
PROBE_FORMAT = 1  # what the probe records; raise it when that changes outside harness/tflite (whose digest is in the key)


def probe(model: Path, threads: int) -> dict[str, Any]:
    """The record's `acceleration` of `model` on this machine; `{"error": why}` when the probe failed."""
    from harness.devices.local import _child

    command = _child.command("acceleration", str(model), "--threads", str(threads))
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_S, check=False,
                              env=_child.environment())
    except subprocess.TimeoutExpired:
        return {"error": f"the acceleration probe did not finish within {TIMEOUT_S} s"}
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"the acceleration probe failed (exit {done.returncode}): {tail}"}
    return json.loads(done.stdout)


def probe_key(model: Path, threads: int) -> str:
    """The cache key of a probe's answer: everything it depends on (see the module's docstring)."""
    import platform

    from harness.cache import content_key, file_digest
    from harness.devices.cpus import cpu_model
    from harness.versions import tool_versions

    versions = tool_versions()
    return content_key(probe=PROBE_FORMAT, model=file_digest(model), runtime=versions["ai-edge-litert"],
                       harness=versions["quantbench_producers"], kernels="xnnpack", accelerator="CPU",
                       threads=threads, cpu=cpu_model(), machine=platform.machine())


class _NotKept(Exception):
    """A failed probe: its answer goes to the cell, not to the cache."""

    def __init__(self, answer: dict[str, Any]) -> None:
        super().__init__(answer.get("error"))
        self.answer = answer


def cached_probe(model: Path, threads: int, cache: ArtifactCache) -> dict[str, Any]:
    """`probe`'s answer from the cache, or probed and kept (sealed, as every cache entry: one that
    fails its seal is discarded, probed again and reported in `cache.events`)."""

    def produce(target: Path) -> None:
        answer = probe(model, threads)
        if "error" in answer:
            raise _NotKept(answer)
        target.write_text(json.dumps(answer, sort_keys=True))

    try:
        path, _ = cache.get_or_create(CACHE_KIND, probe_key(model, threads), ".json", produce)
    except _NotKept as failed:
        return failed.answer
    return json.loads(path.read_text())


def main(argv: list[str] | None = None) -> None:
    from harness.tflite.runtime import acceleration

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("model")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    json.dump(acceleration(Path(args.model), args.threads), sys.stdout)


if __name__ == "__main__":
    main()
