"""The Ray executor (`bench run --executor ray`): each cell's host work (model source, conversion,
evaluation) is a Ray task; its measurement is a task that needs the device's custom resource
`device:<name>` (1 per device, declared by `ray start --resources` on the node the phone hangs
off), so Ray runs one measurement per device at a time. A local device's measurement asks for all
of its node's CPUs: nothing else runs beside the pinned core.

The nodes share the driver's file paths (one host, or a shared filesystem): the artifact cache is
content-addressed, so a model converted on one node is a cache hit on every other; a cell whose
artifact another cell of the run produces waits for it rather than converting it again. The driver
alone appends results.jsonl, as records arrive. A task lost with its node (or worker) is retried
once; a device no live node declares any more fails its waiting cells with the reason.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import _interrupt
from harness.errors import HarnessError
from harness.pipeline import CellPipeline
from harness.plan import Cell
from harness.record import CellRecord, ExecutedOn, cell_id
from harness.schemes import BASELINE

POLL_S = 0.5
_ADDRESS = re.compile(r"^(auto|(ray://)?[A-Za-z0-9_.\-\[\]:]+:\d{1,5})$")


def resource(device: str) -> str:
    """The custom resource a node declares for the phone (or local device) `device`."""
    return f"device:{device}"


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise HarnessError("--executor ray needs Ray: pip install 'quantbench[ray]'") from None
    return ray


def here() -> ExecutedOn:
    """`executed_on` of the Ray task running this code."""
    import ray

    return {"node_id": ray.get_runtime_context().get_node_id(), "hostname": socket.gethostname()}


# -- the tasks (run on the cluster's worker processes) ---------------------------------------
# `shared` is the driver pipeline's replica(): it builds a pipeline of the same run in the worker.
Replica = Callable[[], CellPipeline]


def host_task(shared: Replica, cell: Cell, baseline: CellRecord | None) -> CellRecord:
    """Model source, conversion and evaluation of one cell (a failure is recorded on it)."""
    pipeline = shared()
    record = pipeline.host_work(cell, pipeline.prepare_model(cell.model), baseline)
    record["executed_on"] = here()
    return record


def device_task(shared: Replica, cell: Cell, record: CellRecord) -> CellRecord:
    """Measure one cell on its device (on the node declaring the device's resource)."""
    pipeline = shared()
    try:
        pipeline.measure(cell, record)
    finally:
        pipeline.close_devices([cell.device])
    node, host = here(), record.get("executed_on")
    if host and host["node_id"] != node["node_id"]:
        node["host_work"] = {"node_id": host["node_id"], "hostname": host["hostname"]}
    if host and "retried" in host:  # the host work's lost attempts stay on the record
        node["retried"] = host["retried"]
    record["executed_on"] = node
    return record


def describe_task(shared: Replica, name: str) -> dict[str, Any]:
    """A device's check and describe(), on its own node."""
    pipeline = shared()
    try:
        device = pipeline.device(name)
        device.check()
        return device.describe()
    finally:
        pipeline.close_devices([name])


# -- the driver ------------------------------------------------------------------------------
@dataclass
class _Job:
    cell: Cell
    stage: str  # "host" or "device"
    record: CellRecord | None = None  # the host work's record (device stage)
    lost: list[str] = field(default_factory=list)  # why earlier attempts were lost


class RayExecutor:
    name = "ray"

    def __init__(self, address: str | None) -> None:
        if address is not None and not _ADDRESS.match(address):
            raise HarnessError(f"--ray-address {address!r}: expected HOST:PORT, ray://HOST:PORT or auto")
        self.address = address or os.environ.get("RAY_ADDRESS") or "auto"
        self._ray: Any = None
        self._shared: Any = None
        self._owns = False

    def _connect(self) -> Any:
        ray = _import_ray()
        if ray.is_initialized():
            return ray
        import harness

        _reachable(self.address)
        root = str(Path(harness.__file__).resolve().parent.parent)
        env = {"PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p),
               "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3")}
        try:
            ray.init(address=self.address, runtime_env={"env_vars": env}, log_to_driver=False,
                     logging_level="ERROR", configure_logging=True)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise HarnessError(f"--ray-address {self.address}: cannot join a Ray cluster there "
                               f"({str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}); "
                               "start one with `ray start --head` (see README: Running on a cluster)") from None
        return ray

    def _share(self, pipeline: CellPipeline) -> Any:
        if self._shared is None:
            self._ray = self._connect()
            self._shared = self._ray.put(pipeline.replica())
        return self._shared

    def check_devices(self, pipeline: CellPipeline, names: list[str]) -> None:
        """Every device must be declared by a live node; its check and describe() run there."""
        shared = self._share(pipeline)
        ray, nodes = self._ray, _alive(self._ray)
        missing = [n for n in names if not any(resource(n) in node["Resources"] for node in nodes)]
        if missing:
            raise HarnessError(f"no node of the Ray cluster at {self.address} declares "
                               + ", ".join(f"{resource(n)!r}" for n in missing)
                               + ": start the node the device is attached to with "
                               + f"`ray start --resources '{{\"{resource(missing[0])}\": 1}}' ...`")
        refs = {n: ray.remote(describe_task).options(resources={resource(n): 0.001}, num_cpus=0, max_retries=1)
                .remote(shared, n) for n in names}
        for name, ref in refs.items():
            try:
                pipeline.keep_description(name, ray.get(ref))
            except ray.exceptions.RayTaskError as exc:
                cause = exc.cause if isinstance(exc.cause, HarnessError) else None
                raise (cause or HarnessError(f"{name}: the device check failed on its node: {exc}")) from None

    def run_cells(self, pipeline: CellPipeline, cells: list[Cell], done: dict[str, CellRecord]) -> int:
        drive = _Drive(self._ray or self._connect(), self._share(pipeline), pipeline, cells, done)
        try:
            drive.loop()
        except BaseException:
            pipeline.seal()  # the driver appends nothing more; the cells in flight are not done
            drive.cancel()
            raise
        finally:
            self._shared = None
            if self._owns:
                self._ray.shutdown()
        return drive.skipped


def _reachable(address: str, timeout: float = 5.0) -> None:
    """A HOST:PORT must accept a TCP connection (ray.init would retry a dead address for minutes)."""
    if address == "auto":
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except (OSError, ValueError) as exc:
        raise HarnessError(f"--ray-address {address}: cannot join a Ray cluster there ({exc}); start one with "
                           "`ray start --head` (see README: Running on a cluster)") from None


def _alive(ray: Any) -> list[dict[str, Any]]:
    return [node for node in ray.nodes() if node.get("Alive")]


class _Drive:
    """One run on the cluster: submits tasks as their inputs are ready, appends records in order."""

    def __init__(self, ray: Any, shared: Any, pipeline: CellPipeline, cells: list[Cell],
                 done: dict[str, CellRecord]) -> None:
        self.ray, self.shared, self.pipeline = ray, shared, pipeline
        self.todo = [c for c in cells if c.id not in done]
        self.skipped = len(cells) - len(self.todo)
        for cell in cells:
            if cell.id in done:
                pipeline.report(cell.id, "done", done[cell.id])
        self.planned = {c.id for c in self.todo}
        self.host: dict[str, CellRecord] = {}  # cell id -> record after host work
        self.pending: dict[Any, _Job] = {}  # object ref -> job
        self.finished: list[tuple[Cell, CellRecord]] = []  # records waiting for their baseline
        self.producer: dict[tuple[str, str], str] = {}  # (model, scheme) -> the cell that converts it
        self.nodes: list[dict[str, Any]] = _alive(ray)  # the live nodes, read once per turn of the loop

    def loop(self) -> None:
        waiting = list(self.todo)
        while waiting or self.pending or self.finished:
            _interrupt.check()
            self.nodes = _alive(self.ray)
            waiting = [c for c in waiting if not self._maybe_submit(c)]
            self._fail_orphans()
            if self.pending:
                ready, _ = self.ray.wait(list(self.pending), num_returns=1, timeout=POLL_S)
                for ref in ready:
                    self._arrived(ref, self.pending.pop(ref))
            self._append_ready()
            if waiting and not self.pending and not self.finished and not any(self._ready(c) for c in waiting):
                raise RuntimeError(f"ray executor: cells can never start: {[c.id for c in waiting]}")

    # -- submitting ---------------------------------------------------------------------
    def _baseline_id(self, cell: Cell) -> str:
        return cell_id(cell.model.label, BASELINE, cell.device)

    def _host_record(self, cell_name: str) -> CellRecord | None:
        return self.host.get(cell_name) or self.pipeline.recorded(cell_name)

    def _ready(self, cell: Cell) -> bool:
        """Host work may start: the float baseline's host work is done (if planned), and so is the
        cell that converts the same model × scheme first (so this one is a cache hit)."""
        base = self._baseline_id(cell)
        if cell.scheme.label != BASELINE and base in self.planned and base not in self.host:
            return False
        first = self.producer.setdefault((cell.model.label, cell.scheme.label), cell.id)
        return first == cell.id or first in self.host

    def _maybe_submit(self, cell: Cell) -> bool:
        if not self._ready(cell):
            return False
        base = None if cell.scheme.label == BASELINE else self._host_record(self._baseline_id(cell))
        self._submit(_Job(cell, "host"), base)
        return True

    def _submit(self, job: _Job, baseline: CellRecord | None = None) -> None:
        if job.stage == "host":
            self.pipeline.report(job.cell.id, "host work (ray)", None)
            ref = self.ray.remote(host_task).options(num_cpus=1, max_retries=0).remote(
                self.shared, job.cell, baseline)
        else:
            self.pipeline.report(job.cell.id, "timing (ray)", None)
            ref = self.ray.remote(device_task).options(**self._device_options(job.cell.device)).remote(
                self.shared, job.cell, job.record)
        self.pending[ref] = job

    def _device_options(self, device: str) -> dict[str, Any]:
        """One measurement per device; a local one takes its node's every CPU (the pinned core
        is not shared with host work)."""
        cpus = 0.0
        if not self.pipeline.device(device).remote:
            cpus = max((n["Resources"].get("CPU", 1.0) for n in self.nodes if resource(device) in n["Resources"]),
                       default=1.0)
        return {"resources": {resource(device): 1}, "num_cpus": cpus, "max_retries": 0}

    # -- results --------------------------------------------------------------------------
    def _arrived(self, ref: Any, job: _Job) -> None:
        try:
            record = self.ray.get(ref)
        except self.ray.exceptions.RayTaskError as exc:  # the task itself raised: a harness bug
            self._failed(job, f"{job.stage} task failed: {str(exc).strip().splitlines()[-1]}")
            return
        except self.ray.exceptions.RayError as exc:  # a lost node/worker, or a cancelled task
            self._lost(job, f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:300]}")
            return
        if job.lost:
            record.setdefault("executed_on", {})["retried"] = list(job.lost)
        if job.stage == "host":
            self.host[job.cell.id] = record
            if record["status"] == "ok":
                self._submit(_Job(job.cell, "device", record))
                return
        self.finished.append((job.cell, record))

    def _lost(self, job: _Job, reason: str) -> None:
        job.lost.append(reason)
        if len(job.lost) == 1 and (job.stage == "host" or self._declared(job.cell.device)):
            self._submit(job, self._baseline_for_retry(job))
            return
        self._failed(job, f"lost twice on the Ray cluster: {'; '.join(job.lost)}" if len(job.lost) > 1
                     else f"{reason}; no other live node declares {resource(job.cell.device)}")

    def _baseline_for_retry(self, job: _Job) -> CellRecord | None:
        if job.stage != "host" or job.cell.scheme.label == BASELINE:
            return None
        return self._host_record(self._baseline_id(job.cell))

    def _declared(self, device: str) -> bool:
        return any(resource(device) in node["Resources"] for node in self.nodes)

    def _failed(self, job: _Job, reason: str) -> None:
        record = job.record if job.record is not None else self.pipeline.new_record(job.cell)
        record["status"], record["error"] = "failed", reason
        if job.lost:
            record.setdefault("executed_on", {"node_id": "unknown", "hostname": "unknown"})["retried"] = job.lost
        if job.stage == "host":
            self.host[job.cell.id] = record
        self.finished.append((job.cell, record))

    def _fail_orphans(self) -> None:
        """Measurements waiting for a device no live node declares any more (its node died)."""
        for ref, job in list(self.pending.items()):
            if job.stage == "device" and not self._declared(job.cell.device):
                self.ray.cancel(ref, force=True)
                del self.pending[ref]
                self._failed(job, f"no live node of the Ray cluster declares {resource(job.cell.device)} "
                                  "(its node died?)")

    def _append_ready(self) -> None:
        """Append finished records whose float baseline record is appended (verdicts need it)."""
        order = {c.id: i for i, c in enumerate(self.todo)}
        self.finished.sort(key=lambda item: order[item[0].id])
        for cell, record in list(self.finished):
            base = self._baseline_id(cell)
            if cell.scheme.label == BASELINE or base not in self.planned or self.pipeline.recorded(base) is not None:
                self.finished.remove((cell, record))
                self.pipeline.append(cell, record)

    def cancel(self) -> None:
        for ref in self.pending:
            try:
                self.ray.cancel(ref, force=True)
            except Exception:  # noqa: BLE001 - best effort while the run stops
                pass
