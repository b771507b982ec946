"""Executors: who runs a suite's cells. `inprocess` (the default: this process, one worker thread
per device) or `ray` (host work and device-bound measurement as tasks on a Ray cluster).

An executor drives a `CellPipeline` (harness/pipeline.py) and nothing else of the runner: it decides
where and when each cell's steps run, and hands every finished record back to the pipeline's
`append`, which alone writes results.jsonl (so --resume and the integrity rules do not depend on it).
This module is the registry; it imports no executor (nor the runner) until one is asked for."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from harness.errors import HarnessError
from harness.record import ExecutedOn

if TYPE_CHECKING:
    from harness.pipeline import CellPipeline
    from harness.plan import Cell
    from harness.record import CellRecord

NAMES = ("inprocess", "ray")


class Executor(Protocol):
    name: str

    def check_devices(self, pipeline: CellPipeline, names: list[str]) -> None:
        """Check every device before any work, where the device is reachable from (a HarnessError
        stops the run before run.json is written)."""
        ...

    def run_cells(self, pipeline: CellPipeline, cells: list[Cell], done: dict[str, CellRecord]) -> int:
        """Run every cell not in `done` (report those "done"); return how many were skipped.

        Each cell's record is appended through `pipeline.append`, a non-float cell's after its float
        baseline's (harness/pipeline.py). It returns only when nothing of the run is in flight: when
        it raises (an interrupt, a harness bug), it has first stopped its work — no record is
        appended after it returns or raises (`pipeline.seal()`), queued cells are dropped and running
        measurements are stopped (`pipeline.close_devices`) and waited for, boundedly."""
        ...


def make_executor(name: str, address: str | None = None) -> Executor:
    """The executor called `name` (HarnessError for an unknown one, or --ray-address without ray)."""
    if name == "inprocess":
        if address:
            raise HarnessError("--ray-address is only for --executor ray")
        from harness.executors._inprocess import InProcessExecutor

        return InProcessExecutor()
    if name == "ray":
        from harness.executors._ray import RayExecutor

        return RayExecutor(address)
    raise HarnessError(f"--executor {name!r}: expected one of {', '.join(NAMES)}")


def local_node() -> ExecutedOn:
    """`executed_on` of work done in this process."""
    import socket

    return {"node_id": "local", "hostname": socket.gethostname()}
