"""How much of a model the local device's XNNPACK path takes (the record's `acceleration`).

The measurement process probes it after its timed runs (`latency_process.py --probe`): unpinned, after
its peak RSS is read, and after its timing answer is written, so a crash in LiteRT's CompiledModel
costs the probe's answer and never the measurement nor the run. Starting no process of its own, a
probe costs what loading the model costs, not a second interpreter start.

The answer depends on the model's bytes, the runtime, the harness code that reads it, the kernels
(XNNPACK over LiteRT's builtin op resolver, CompiledModel on the CPU accelerator), the threads and
the CPU, and on nothing else: `known` and `keep` hold it in the artifact cache under exactly those,
so a model is probed once per host kind and runtime, not once per run. A failed probe is not kept.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness.cache import ArtifactCache

TIMEOUT_S = 600  # what a probe may add to its measurement process's time limit
CACHE_KIND = "acceleration"  # the artifact cache's folder of probe answers
PROBE_FORMAT = 1  # what the probe records; raise it when that changes outside harness/tflite (whose digest is in the key)
SUFFIX = ".json"


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


def known(model: Path, threads: int, cache: ArtifactCache) -> dict[str, Any] | None:
    """The kept answer for `model`'s bytes on this host and runtime (None: never probed here, or its
    entry failed its seal: it is discarded and reported in `cache.events`, and the model probed again)."""
    path = cache.lookup(CACHE_KIND, probe_key(model, threads), SUFFIX)
    return json.loads(path.read_text()) if path is not None else None


def keep(model: Path, threads: int, cache: ArtifactCache, answer: dict[str, Any]) -> None:
    """Keep a probe's answer (sealed, as every cache entry); a failed probe's answer is not kept."""
    if "error" in answer:
        return

    def produce(target: Path) -> None:
        target.write_text(json.dumps(answer, sort_keys=True))

    cache.get_or_create(CACHE_KIND, probe_key(model, threads), SUFFIX, produce)


def failed(why: str) -> dict[str, Any]:
    """The answer of a probe that gave none: the cell records why (a threshold on it then fails)."""
    return {"error": f"the acceleration probe {why}"}
