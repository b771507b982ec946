"""A run's life-cycle: run.json from `running` to `finished` — or, whatever stops it on the way (Ctrl-C,
SIGTERM, an error), `interrupted`/`failed` with why — and `SuiteRunner`, the `CellPipeline` an executor
drives (harness/pipeline.py)."""

from __future__ import annotations

import contextlib
import os
import platform
import socket
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import _interrupt, heap
from harness.cache import ArtifactCache
from harness.config.schema import CalibrationSpec, ModelSpec
from harness.datasets import Dataset
from harness.devices import Device
from harness.devices.cpus import cpu_model
from harness.executors import Executor, make_executor
from harness.history import EarlierRun, suite_identity
from harness.pipeline import CellPipeline, PreparedModel, Progress
from harness.plan import Cell
from harness.record import FORMAT_VERSION, CellRecord
from harness.results import new_run_id, read_run_info, utc_now, write_run_info
from harness.runner.devices import RunDevices
from harness.runner.host import HostWork, ModelState, new_record
from harness.runner.inputs import SharedInputs
from harness.runner.measure import Measurement
from harness.runner.records import RunRecords
from harness.runner.resume import resumable
from harness.samples import Samples
from harness.suite.loader import LoadedSuite
from harness.versions import tool_versions


@dataclass
class RunOutcome:
    run_dir: Path
    records: list[CellRecord]
    skipped: int = 0
    notes: list[str] = field(default_factory=list)  # what a resume kept, dropped or re-ran

    @property
    def failed_checks(self) -> int:
        return sum(1 for r in self.records for v in r.get("verdicts", []) if not v["pass"])

    @property
    def failed_cells(self) -> int:
        return sum(1 for r in self.records if r["status"] == "failed")

    @property
    def exit_code(self) -> int:
        """0 when every check passed and no cell failed, else 1."""
        return 1 if self.failed_checks or self.failed_cells else 0


class SuiteRunner:
    """One run of a suite's cells: the `CellPipeline` its executor drives (host work, measurement,
    records), and the run's life-cycle around it (`run`)."""

    def __init__(self, loaded: LoadedSuite, run_dir: Path, cache: ArtifactCache,
                 progress: Progress | None = None, earlier: EarlierRun | None = None,
                 executor: Executor | None = None) -> None:
        self.loaded, self.run_dir, self.cache = loaded, run_dir, cache
        self.executor = executor or make_executor("inprocess")  # who runs the cells (harness/executors)
        self.earlier = earlier or EarlierRun()  # the run this one is compared with: its models are re-timed
        self.records = RunRecords(loaded, progress or (lambda cell, stage, record: None))
        self.inputs = SharedInputs(loaded, cache)
        self.devices = RunDevices(loaded.base_dir, cache=cache)
        self._host_lock = threading.Lock()  # host work, and a local device's measurement
        self.host = HostWork(loaded, cache, self.inputs, self.report)
        self.measurement = Measurement(loaded, run_dir, self.devices, self.inputs, self.earlier, self.report,
                                       self._host_lock)
        self.finished = False  # run.json says `finished`: every cell ran (what stops the caller after is its own)

    @property
    def progress(self) -> Progress:
        return self.records.progress

    @progress.setter
    def progress(self, value: Progress) -> None:
        self.records.progress = value

    # -- shared inputs ------------------------------------------------------------------
    def dataset(self, name: str) -> Dataset:
        return self.inputs.dataset(name)

    def calibration(self, spec: CalibrationSpec) -> Samples:
        return self.inputs.calibration(spec)

    # -- the CellPipeline (harness/pipeline.py) -----------------------------------------
    def prepare_model(self, spec: ModelSpec) -> ModelState:
        with self._host_lock:
            heap.settle()  # what the last unit of work imported (TensorFlow, TFMOT, torch) leaves the collector
            return self.host.prepare_model(spec)

    def host_work(self, cell: Cell, model: PreparedModel, baseline: CellRecord | None) -> CellRecord:
        assert isinstance(model, ModelState), "host_work takes what prepare_model returned"
        with self._host_lock:
            heap.settle()
            return self.host.run(cell, model, baseline)

    def measure(self, cell: Cell, record: CellRecord) -> None:
        if not self.records.sealed:
            self.measurement.measured(cell, record)

    def append(self, cell: Cell, record: CellRecord) -> None:
        self.records.append(cell, record)

    def new_record(self, cell: Cell) -> CellRecord:
        return new_record(self.loaded, cell)

    def recorded(self, cell_id: str) -> CellRecord | None:
        return self.records.recorded(cell_id)

    def report(self, cell_id: str, stage: str, record: CellRecord | None) -> None:
        self.records.report(cell_id, stage, record)

    def device(self, name: str) -> Device:
        return self.devices.get(name)

    def keep_description(self, name: str, described: dict[str, Any]) -> None:
        self.devices.keep_description(name, described)

    def close_devices(self, names: list[str]) -> None:
        self.devices.close(names)

    def seal(self) -> None:
        self.records.seal()

    @property
    def sealed(self) -> bool:
        return self.records.sealed

    def replica(self) -> Callable[[], CellPipeline]:
        return Replica(self.loaded, str(Path(self.cache.root).resolve()), str(Path(self.run_dir).resolve()),
                       os.getcwd(), self.earlier)

    # -- the run ------------------------------------------------------------------------
    def run(self, cells: list[Cell], argv: list[str]) -> RunOutcome:
        """Every cell not kept by a resume, run by the executor through this pipeline; the devices
        are checked before any work and closed after (what closing said goes into run.json notes)."""
        names = sorted({c.device for c in cells})
        for name in names:
            self.device(name)  # a bad profile stops the run before any work (exit 2)
        self.executor.check_devices(self, names)
        try:
            return self._run(cells, argv, names)
        finally:
            self.devices.close(names)
            keep_device_notes(self.run_dir, self.devices.notes)

    def _run(self, cells: list[Cell], argv: list[str], names: list[str]) -> RunOutcome:
        """From run.json `running` to `finished`; whatever stops it on the way ends in `stopped`, so
        run.json never stays `running` after the run has exited."""
        done, notes = resumable(self.loaded, self.run_dir, cells)
        info = run_info(self, argv, names, cells, notes)
        write_run_info(self.run_dir, info)
        self.records.open(self.run_dir, done)
        try:
            skipped = self.executor.run_cells(self, cells, done)
            info.update(finished_at=utc_now(), status="finished", cache_repairs=[str(e) for e in self.cache.events])
            write_run_info(self.run_dir, info)
            self.finished = True
        except BaseException as exc:
            with _interrupt.deferred():  # a second Ctrl-C cannot cut the stop short
                self.seal()  # the executor stopped its work in flight; nothing is appended after this
                self.devices.close(names)
                stopped(self.run_dir, info, exc, self.cache)
            raise
        return RunOutcome(self.run_dir, self.records.in_order(cells), skipped, notes)


@dataclass(frozen=True)
class Replica:
    """A `SuiteRunner` of the same run in another process (a Ray worker): the suite's relative paths
    mean there what they meant to the driver (its working directory)."""

    loaded: LoadedSuite
    cache_root: str
    run_dir: str
    cwd: str
    earlier: EarlierRun | None = None

    def __call__(self) -> SuiteRunner:
        os.chdir(self.cwd)
        return SuiteRunner(self.loaded, Path(self.run_dir), ArtifactCache(Path(self.cache_root)), earlier=self.earlier)


def run_info(runner: SuiteRunner, argv: list[str], devices: list[str], cells: list[Cell],
             notes: list[str]) -> dict[str, Any]:
    """run.json of a run starting (or resuming: the same id, start time and plan so far)."""
    earlier, loaded = read_run_info(runner.run_dir), runner.loaded
    return {
        "format_version": FORMAT_VERSION,
        "run_id": earlier.get("run_id") or new_run_id(),  # resume: the same run
        "suite": loaded.name,
        "suite_path": str(loaded.path.resolve()),  # `bench report` may run elsewhere
        "suite_sha256": loaded.sha256,
        "suite_identity": suite_identity(loaded.name, str(loaded.path.resolve())),
        "started_at": earlier.get("started_at", utc_now(precise=True)),
        "resumed_at": utc_now() if earlier else None,
        "finished_at": None,
        "status": "running",
        "argv": argv,
        "git_commit": _git_commit(loaded.path.parent),
        "tool_versions": tool_versions(),
        "host": {"hostname": socket.gethostname(), "platform": platform.platform(),
                 "cpu_model": cpu_model(), "cpus": os.cpu_count()},
        "devices": {name: runner.devices.described(name) for name in devices},
        "cache_dir": str(runner.cache.root),
        "plan": list(dict.fromkeys([*(earlier.get("plan") or []), *(c.id for c in cells)])),
        "notes": notes,
    }


def stopped(run_dir: Path, info: dict[str, Any], exc: BaseException, cache: ArtifactCache) -> None:
    """run.json says the run did not finish, and why (best effort: the cause is re-raised)."""
    interrupted = isinstance(exc, KeyboardInterrupt)
    info.update(finished_at=utc_now(), status="interrupted" if interrupted else "failed",
                stop_reason=str(exc) or type(exc).__name__, cache_repairs=[str(e) for e in cache.events])
    with contextlib.suppress(Exception):
        write_run_info(run_dir, info)


def keep_device_notes(run_dir: Path, device_notes: list[str]) -> None:
    """What closing the devices had to say (an STF lease the server would not release, files left
    on a phone) goes into run.json's `notes`, after its final status was written; each note once."""
    info = read_run_info(run_dir)
    new = [note for note in device_notes if note not in (info.get("notes") or [])]
    if info and new:
        with contextlib.suppress(Exception):
            write_run_info(run_dir, {**info, "notes": [*(info.get("notes") or []), *new]})


def _git_commit(directory: Path) -> str | None:
    try:
        done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=directory, capture_output=True, text=True,
                              timeout=5, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None
