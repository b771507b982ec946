"""Executors: who runs a suite's cells. `inprocess` (the default: this process, one worker thread
per device) or `ray` (host work and device-bound measurement as tasks on a Ray cluster).

An executor takes the runner's planned cells and hands every finished record back to the runner,
which alone appends results.jsonl (so --resume and the integrity rules do not depend on it)."""

from __future__ import annotations

from typing import Any, Protocol

from harness.errors import HarnessError
from harness.record import ExecutedOn

NAMES = ("inprocess", "ray")


class Executor(Protocol):
    name: str

    def run_cells(self, runner: Any, cells: list[Any], done: dict[str, Any], workers: dict[str, Any]) -> int:
        """Run every cell not in `done`; returns how many were skipped (already done)."""
        ...

    def check_devices(self, runner: Any, names: list[str]) -> None:
        """Check every device before any work (where the device is reachable from)."""
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
