"""The run's records as they are appended: results.jsonl's only writer, progress, the seal."""

from __future__ import annotations

import threading
from pathlib import Path

from harness import _interrupt
from harness.pipeline import Progress
from harness.plan import Cell
from harness.record import CellRecord, cell_id
from harness.results import ResultsWriter
from harness.runner.checks import finish
from harness.schemes import BASELINE
from harness.suite.loader import LoadedSuite


class RunRecords:
    """Appended records by cell id; thread-safe (one lock for the records, the file and progress)."""

    def __init__(self, loaded: LoadedSuite, progress: Progress) -> None:
        self.loaded, self.progress = loaded, progress
        self._lock = threading.Lock()
        self._records: dict[str, CellRecord] = {}
        self._writer: ResultsWriter | None = None
        self._sealed = False  # the run stopped: no record is appended any more (run.json says what was kept)

    def open(self, run_dir: Path, done: dict[str, CellRecord]) -> None:
        """Start appending to the run's results.jsonl, which holds `done` (the cells a resume keeps)."""
        self._writer = ResultsWriter(run_dir)
        self._records = dict(done)

    def report(self, cell: str, stage: str, record: CellRecord | None) -> None:
        if stage != "done":
            _interrupt.check()  # a stage boundary: where a swallowed Ctrl-C still stops the run
        with self._lock:
            self.progress(cell, stage, record)

    def append(self, cell: Cell, record: CellRecord) -> None:
        """Check a measured record against its (finished) baseline and append it (the only writer)."""
        baseline = self.recorded(cell_id(cell.model.label, BASELINE, cell.device))
        finish(self.loaded, cell, record, baseline)
        assert self._writer is not None, "append before open"
        with self._lock:
            if self._sealed:
                return  # in flight when the run stopped: not done, --resume runs it
            self._writer.append(record)
            self._records[cell.id] = record
            self.progress(cell.id, "done", record)

    def recorded(self, cell: str) -> CellRecord | None:
        with self._lock:
            return self._records.get(cell)

    def in_order(self, cells: list[Cell]) -> list[CellRecord]:
        with self._lock:
            return [self._records[c.id] for c in cells if c.id in self._records]

    def seal(self) -> None:
        with self._lock:
            self._sealed = True

    @property
    def sealed(self) -> bool:
        return self._sealed
