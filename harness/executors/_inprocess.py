"""The default executor: this process. Host work runs in the calling thread, one cell at a time, in
cell order; each device has one worker thread that measures its cells in that order and appends their
records. A local (non-`remote`) device's measurement never overlaps host work: the host waits for it
(and the pipeline's host lock covers both)."""

from __future__ import annotations

import queue
import threading

from harness import _interrupt
from harness.pipeline import CellPipeline, PreparedModel
from harness.plan import Cell
from harness.record import CellRecord, cell_id
from harness.schemes import BASELINE

HALT_WAIT_S = 30.0  # how long a stopping run waits for a device's measurement to end once stopped
WAKE_S = 0.5  # how often the host, waiting for a local measurement, looks for an interrupt


class InProcessExecutor:
    name = "inprocess"

    def check_devices(self, pipeline: CellPipeline, names: list[str]) -> None:
        """Each device's own check (a phone: connect, probe), here, before any work."""
        for name in names:
            pipeline.device(name).check()

    def run_cells(self, pipeline: CellPipeline, cells: list[Cell], done: dict[str, CellRecord]) -> int:
        workers: dict[str, DeviceWorker] = {}
        try:
            skipped = _schedule(pipeline, cells, done, workers)
        except BaseException:
            with _interrupt.deferred():  # a second Ctrl-C cannot cut the stop short
                _halt(pipeline, workers)
            raise
        failures = [w.error for w in workers.values() if w.error is not None]
        if failures:
            raise failures[0]  # a harness bug on a device's worker
        return skipped


def _schedule(pipeline: CellPipeline, cells: list[Cell], done: dict[str, CellRecord],
              workers: dict[str, DeviceWorker]) -> int:
    """Host work of every cell not already done, in order; measurement on each device's worker."""
    host_done: dict[str, CellRecord] = {}  # cell id -> identity, status, artifact and metrics after host work
    models: dict[str, PreparedModel] = {}
    skipped = 0
    for cell in cells:
        _interrupt.check()
        if cell.id in done:
            skipped += 1
            pipeline.report(cell.id, "done", done[cell.id])
            continue
        record = _host_work(pipeline, cell, models, host_done)
        if cell.device not in workers:
            workers[cell.device] = DeviceWorker(pipeline, cell.device)
        finished = workers[cell.device].submit(cell, record)
        if not pipeline.device(cell.device).remote:
            _wait(finished)
    for worker in workers.values():
        worker.finish()
    for worker in workers.values():
        worker.join()
    _interrupt.check()
    return skipped


def _wait(finished: threading.Event) -> None:
    """Wait for a local measurement, waking now and then: a signal the kernel handed to another thread
    leaves a blocked main thread asleep, and only a waking one runs the Python handler (the interrupt)."""
    while not finished.wait(WAKE_S):
        _interrupt.check()


def _host_work(pipeline: CellPipeline, cell: Cell, models: dict[str, PreparedModel],
               host_done: dict[str, CellRecord]) -> CellRecord:
    """One cell's host work, its model prepared once; its float baseline is the one host work just did
    (or the record a resume kept)."""
    if cell.model.label not in models:
        pipeline.report(cell.id, "preparing model", None)
        models[cell.model.label] = pipeline.prepare_model(cell.model)
    base_id = cell_id(cell.model.label, BASELINE, cell.device)
    record = pipeline.host_work(cell, models[cell.model.label], host_done.get(base_id) or pipeline.recorded(base_id))
    host_done[cell.id] = {"model": record["model"], "scheme": record["scheme"], "device": record["device"],
                          "status": record["status"], "artifact": record.get("artifact"),
                          "metrics": record.get("metrics", {})}
    return record


def _halt(pipeline: CellPipeline, workers: dict[str, DeviceWorker]) -> None:
    """Stop every cell still in flight: no record is appended from now on, queued cells are dropped,
    a running measurement is stopped (its device closed, its process killed: `_interrupt.cut` keeps
    that from reading as a failed cell) and the workers are waited for, so nothing is written after
    the run's final status."""
    pipeline.seal()
    for worker in workers.values():
        worker.cancel()
    pipeline.close_devices(list(workers))
    for worker in workers.values():
        worker.join(timeout=HALT_WAIT_S)


class DeviceWorker:
    """One thread per device: measures the cells handed to it, in order, one at a time, and appends
    their records (in that order: a float cell's before the other cells of its model)."""

    def __init__(self, pipeline: CellPipeline, device: str) -> None:
        self.pipeline, self.device = pipeline, device
        self.error: BaseException | None = None
        self._queue: queue.Queue[tuple[Cell, CellRecord, threading.Event] | None] = queue.Queue()
        self._cancelled = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"measure-{device}", daemon=True)
        self._thread.start()

    def submit(self, cell: Cell, record: CellRecord) -> threading.Event:
        """Queue a cell after its host work; the event is set once its record is appended."""
        finished = threading.Event()
        self._queue.put((cell, record, finished))
        return finished

    def finish(self) -> None:
        """No more cells: the thread ends after the queued ones."""
        self._queue.put(None)

    def cancel(self) -> None:
        """Skip the queued cells (the run is being interrupted)."""
        self._cancelled.set()
        self._queue.put(None)

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def _loop(self) -> None:
        while (item := self._queue.get()) is not None:
            cell, record, finished = item
            try:
                if not self._cancelled.is_set() and self.error is None:
                    self.pipeline.measure(cell, record)
                    self.pipeline.append(cell, record)
            except BaseException as exc:  # noqa: BLE001 - a harness bug: re-raised by run_cells
                self.error = exc
            finally:
                finished.set()
