"""The seam between the runner and the executors: what an executor may ask of a run.

`SuiteRunner` (harness/runner/) implements `CellPipeline`; an executor (harness/executors/) gets
one and schedules the cells through it, and through nothing else. A new executor needs only this
file: it decides *where and when* each step runs, the pipeline decides *what* a step does and
keeps the records.

A cell's steps, in order:
1. `prepare_model(cell.model)` — once per model and process (source, evaluation data);
2. `host_work(cell, prepared, baseline)` — conversion and evaluation, a record with `status`;
3. `measure(cell, record)` — on the cell's device, only where the device is reachable;
4. `append(cell, record)` — the record checked and written to results.jsonl.

Ordering: a non-float cell's `baseline` (step 2) is its float cell's record after host work, and its
`append` (step 4) must come after its float cell's append when that cell is planned in this run
(`recorded(baseline id)` is then not None), because its checks compare it with that record.

Interrupts: every step may raise `KeyboardInterrupt` (harness._interrupt.RunInterrupted) when a stop
was requested; a cell cut by the stop is neither done nor failed, and `--resume` runs it. An
executor's `run_cells` stops its in-flight work before it lets the interrupt out (see
harness/executors/__init__.py); the runner then writes run.json.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from harness.config.schema import ModelSpec
from harness.devices import Device
from harness.plan import Cell
from harness.record import CellRecord

# Progress callback: (cell id, stage, record) — stage is a short word, or "done" with the record.
Progress = Callable[[str, str, CellRecord | None], None]


class PreparedModel(Protocol):
    """What the cells of one model share (opaque to executors: pass it back to `host_work`)."""

    error: str | None  # the model's source could not be made: every cell of it fails (or is n/a) with this


class CellPipeline(Protocol):
    """One run's cells, step by step. Thread-safety: `append`, `report`, `recorded`, `seal` and
    `sealed` may be called from any thread; `measure` from one thread per device at a time;
    `prepare_model` and `host_work` hold the run's host lock (a local device's measurement never
    overlaps them in this process)."""

    def prepare_model(self, spec: ModelSpec) -> PreparedModel:
        """The model's source and evaluation data; an error is kept on the result, never raised
        (except an interrupt)."""
        ...

    def host_work(self, cell: Cell, model: PreparedModel, baseline: CellRecord | None) -> CellRecord:
        """Convert and evaluate one cell; a failure is recorded on the returned record
        (`status` failed or n/a). `baseline` is the float cell's record after its host work (None for
        the float cell itself, or when it is not known)."""
        ...

    def measure(self, cell: Cell, record: CellRecord) -> None:
        """Time the cell on its device, in place, if its host work succeeded and the run is not
        sealed; a failure is recorded on the cell. Call it where the device is (a Ray node)."""
        ...

    def append(self, cell: Cell, record: CellRecord) -> None:
        """Check the record against its float baseline's appended record and write it to
        results.jsonl, then report it "done". The driver's pipeline is the only writer: an executor
        running steps elsewhere brings the records back and appends them here. After `seal()` the
        record is dropped (the cell is not done)."""
        ...

    def new_record(self, cell: Cell) -> CellRecord:
        """An empty record of the cell (status ok), for an executor that must record a failure the
        pipeline never saw (a lost task)."""
        ...

    def recorded(self, cell_id: str) -> CellRecord | None:
        """The appended record of a cell (this run's, or kept from the run it resumes), else None."""
        ...

    def report(self, cell_id: str, stage: str, record: CellRecord | None) -> None:
        """Progress: a stage of a cell began ("done" with its record: a cell kept by a resume).
        A stage boundary also raises a pending interrupt."""
        ...

    def device(self, name: str) -> Device:
        """The device of a name, loaded once per pipeline (its `remote` attribute, when True, says its
        measurement does not use this host's CPUs)."""
        ...

    def keep_description(self, name: str, described: dict[str, Any]) -> None:
        """A device's describe(), taken where the device is (run.json `devices`)."""
        ...

    def close_devices(self, names: list[str]) -> None:
        """Disconnect the devices and remove what was pushed (once per device); closing a device
        also stops a measurement running on it."""
        ...

    def seal(self) -> None:
        """The run is stopping: no record is appended from now on, no measurement starts."""
        ...

    @property
    def sealed(self) -> bool:
        ...

    def replica(self) -> Callable[[], CellPipeline]:
        """A picklable recipe for an equivalent pipeline in another process (a Ray worker): the same
        suite, cache, run directory and working directory; its records are to be returned to this one."""
        ...
