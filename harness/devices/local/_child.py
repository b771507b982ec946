"""How the local device starts its child process (the latency measurement, which also probes acceleration).

It runs as a file, `python -P FILE ARGS`, not as `python -m harness.devices.local.NAME`: `-m`
imports the packages above the module first (harness.devices: the suite schema with pydantic, YAML,
the device registry; about 40 modules and 40 ms of CPU a process) that a child never uses, and a
cell at the default settings starts 13 of them. `-P` keeps the file's folder off the child's path;
the harness the run itself imported comes first on it, so the child runs the same code.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import harness

ROOT = Path(harness.__file__).resolve().parent.parent  # the folder holding the `harness` package
HERE = Path(__file__).resolve().parent


def command(name: str, *args: str) -> list[str]:
    """The command line that runs this package's module `name` (e.g. latency_process) with `args`."""
    return [sys.executable, "-P", str(HERE / f"{name}.py"), *args]


def environment() -> dict[str, str]:
    """This process's environment with the run's harness first on PYTHONPATH."""
    paths = [str(ROOT), *(p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p)]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(dict.fromkeys(paths))}
