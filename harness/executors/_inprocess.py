"""The default executor: this process (host work in cell order, one worker thread per device)."""

from __future__ import annotations

from typing import Any


class InProcessExecutor:
    name = "inprocess"

    def run_cells(self, runner: Any, cells: list[Any], done: dict[str, Any], workers: dict[str, Any]) -> int:
        return runner._run_cells(cells, done, workers)

    def check_devices(self, runner: Any, names: list[str]) -> None:
        """Each device's own check (a phone: connect, probe), here, before any work."""
        for name in names:
            check = getattr(runner.device(name), "check", None)
            if check is not None:
                check()
