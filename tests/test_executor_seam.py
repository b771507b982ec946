"""The executor seam (harness/pipeline.py): executors drive the runner only through `CellPipeline`.

Static checks over harness/executors/ (no private member of another object, no import of the runner),
the in-process executor's contract against a recording pipeline (order, interrupt, a worker's bug),
and a third executor written against the protocol alone running a real suite."""

from __future__ import annotations

import ast
import inspect
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from harness.config.schema import ModelSpec, SchemeSpec
from harness.devices import Device
from harness.executors._inprocess import InProcessExecutor
from harness.pipeline import CellPipeline
from harness.plan import Cell
from harness.record import CellRecord, cell_id
from harness.runner import SuiteRunner
from harness.schemes import BASELINE
from tests.kit import mlp_suite, write_mlp

HARNESS = Path(__file__).resolve().parents[1] / "harness"
EXECUTORS = sorted((HARNESS / "executors").glob("*.py"))
WAIT_S = 60.0  # generous: a condition is waited for, never a time


def _private_accesses(path: Path) -> list[str]:
    """`x._name` where x is not self/cls (dunders allowed), as file:line: text."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not isinstance(node, ast.Attribute) or not node.attr.startswith("_") or node.attr.startswith("__"):
            continue
        if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
            continue
        found.append(f"{path.name}:{node.lineno}: {ast.unparse(node)}")
    return found


def _imported(path: Path) -> set[str]:
    """Every module a file imports, at its top or inside a function."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def test_executors_touch_no_private_member_of_another_object() -> None:
    assert EXECUTORS, "no executor found"
    assert [hit for path in EXECUTORS for hit in _private_accesses(path)] == []


def test_the_private_access_check_sees_one(tmp_path: Path) -> None:
    path = tmp_path / "probe.py"
    path.write_text("def f(runner, self):\n    self._ok()\n    runner._records.get('x').__len__()\n")
    assert _private_accesses(path) == ["probe.py:3: runner._records"]


def test_executors_import_the_protocol_not_the_runner() -> None:
    for path in [*EXECUTORS, HARNESS / "pipeline.py"]:
        runner = [m for m in _imported(path) if m == "harness.runner" or m.startswith("harness.runner.")]
        assert runner == [], f"{path.name} imports {runner}"
    assert not any(m.startswith("harness.executors") for m in _imported(HARNESS / "pipeline.py"))


def test_suite_runner_has_every_member_of_the_protocol_with_its_parameters() -> None:
    members = [name for name in vars(CellPipeline) if not name.startswith("_")]
    assert {"prepare_model", "host_work", "measure", "append", "recorded", "seal", "replica"} <= set(members)
    for name in members:
        wanted, has = getattr(CellPipeline, name), getattr(SuiteRunner, name, None)
        assert has is not None, f"SuiteRunner has no {name}"
        if callable(wanted):
            assert list(inspect.signature(has).parameters) == list(inspect.signature(wanted).parameters), name


# -- the in-process executor against a recording pipeline -------------------------------------
class NamedDevice(Device):
    """A device that is only its name and whether it is remote (its measurement is Recording.measure)."""

    def __init__(self, name: str, remote: bool) -> None:
        self.name, self.remote = name, remote


class Recording:
    """A CellPipeline that records each call; `block` holds a cell's measurement until its device is closed."""

    def __init__(self, remote: set[str] = frozenset(), block: str | None = None,  # type: ignore[assignment]
                 host_fails: str | None = None, measure_fails: str | None = None) -> None:
        self.calls: list[tuple[str, str]] = []
        self.appended: dict[str, CellRecord] = {}
        self.baselines: dict[str, CellRecord | None] = {}
        self.remote, self.block, self.host_fails, self.measure_fails = remote, block, host_fails, measure_fails
        self.measuring, self.closed, self.measure_ended = threading.Event(), threading.Event(), threading.Event()
        self._sealed, self._lock = False, threading.Lock()

    def _note(self, what: str, cell: str) -> None:
        with self._lock:
            self.calls.append((what, cell))

    def prepare_model(self, spec: ModelSpec) -> Any:
        self._note("prepare", spec.label)
        return SimpleNamespace(error=None)

    def host_work(self, cell: Cell, model: Any, baseline: CellRecord | None) -> CellRecord:
        self._note("host", cell.id)
        if cell.id == self.host_fails:
            assert self.block is None or self.measuring.wait(WAIT_S), "the blocked measurement never began"
            raise KeyboardInterrupt("stop")
        self.baselines[cell.id] = baseline
        return {"model": cell.model.label, "scheme": cell.scheme.label, "device": cell.device, "status": "ok",
                "artifact": {"path": cell.id}, "metrics": {}}

    def measure(self, cell: Cell, record: CellRecord) -> None:
        self._note("measure", cell.id)
        if cell.id == self.measure_fails:
            raise RuntimeError("a harness bug")
        if cell.id == self.block:
            self.measuring.set()
            assert self.closed.wait(WAIT_S), "the device was never closed"
            self.measure_ended.set()

    def append(self, cell: Cell, record: CellRecord) -> None:
        with self._lock:
            if self._sealed:
                self.calls.append(("dropped", cell.id))
                return
            self.calls.append(("append", cell.id))
            self.appended[cell.id] = record

    def new_record(self, cell: Cell) -> CellRecord:
        return {"model": cell.model.label, "scheme": cell.scheme.label, "device": cell.device, "status": "ok"}

    def recorded(self, cell_id: str) -> CellRecord | None:
        with self._lock:
            return self.appended.get(cell_id)

    def report(self, cell_id: str, stage: str, record: CellRecord | None) -> None:
        self._note(f"report {stage}", cell_id)

    def device(self, name: str) -> Any:
        return NamedDevice(name, name in self.remote)

    def keep_description(self, name: str, described: dict[str, Any]) -> None:
        pass

    def close_devices(self, names: list[str]) -> None:
        self._note("close", ",".join(names))
        if self.block and any(self.block.endswith(f"@{n}") for n in names):
            self.closed.set()

    def seal(self) -> None:
        with self._lock:
            self._sealed = True
            self.calls.append(("seal", ""))

    @property
    def sealed(self) -> bool:
        return self._sealed

    def replica(self) -> Any:
        raise NotImplementedError


def _cells(models: list[str], schemes: list[str], devices: list[str]) -> list[Cell]:
    """Cells in plan order: per model and device, the float cell first."""
    return [Cell(ModelSpec(name=m, path=f"{m}.tflite"), SchemeSpec(scheme=s), d)
            for m in models for d in devices for s in [BASELINE, *schemes]]


def _order(pipeline: Recording, what: str) -> list[str]:
    return [cell for kind, cell in pipeline.calls if kind == what]


def test_inprocess_runs_host_work_in_order_and_appends_a_float_cell_before_the_others_of_its_model() -> None:
    pipeline = Recording(remote={"phone"})
    cells = _cells(["a", "b"], ["dynamic_range", "int8"], ["local", "phone"])
    done = {cells[0].id: {"model": "a", "scheme": BASELINE, "device": "local", "status": "ok"}}
    pipeline.appended.update(done)  # kept by a resume: already in results.jsonl

    skipped = InProcessExecutor().run_cells(pipeline, cells, done)  # type: ignore[arg-type]

    assert skipped == 1 and ("report done", cells[0].id) in pipeline.calls
    assert _order(pipeline, "host") == [c.id for c in cells[1:]]
    assert _order(pipeline, "prepare") == ["a", "b"]
    assert set(pipeline.appended) == {c.id for c in cells}
    appended = _order(pipeline, "append")
    for cell in cells[1:]:
        base = cell_id(cell.model.label, BASELINE, cell.device)
        if cell.id != base and base in appended:
            assert appended.index(base) < appended.index(cell.id), cell.id
    assert pipeline.baselines[cells[1].id] == done[cells[0].id]  # the float cell a resume kept
    baseline = pipeline.baselines[cell_id("b", "dynamic_range", "phone")]  # the float cell's host work
    assert baseline is not None and baseline["artifact"] == {"path": cell_id("b", BASELINE, "phone")}
    assert "seal" not in [kind for kind, _ in pipeline.calls]


def test_an_interrupt_seals_drops_queued_cells_and_stops_the_measurement_in_flight() -> None:
    cells = _cells(["a"], ["dynamic_range", "int8"], ["phone"])
    pipeline = Recording(remote={"phone"}, block=cells[0].id, host_fails=cells[2].id)

    with pytest.raises(KeyboardInterrupt):
        InProcessExecutor().run_cells(pipeline, cells, {})  # type: ignore[arg-type]

    assert pipeline.measure_ended.is_set(), "run_cells returned with a measurement in flight"
    kinds = [kind for kind, _ in pipeline.calls]
    assert kinds.index("seal") < kinds.index("close") and ("close", "phone") in pipeline.calls
    assert _order(pipeline, "measure") == [cells[0].id]  # the queued cell (cells[1]) is never measured
    assert pipeline.appended == {} and _order(pipeline, "dropped") == [cells[0].id]


def test_a_bug_on_a_device_worker_is_raised_after_the_other_cells_ran() -> None:
    cells = _cells(["a"], ["dynamic_range"], ["local", "phone"])
    pipeline = Recording(remote={"phone"}, measure_fails=cells[1].id)

    with pytest.raises(RuntimeError, match="a harness bug"):
        InProcessExecutor().run_cells(pipeline, cells, {})  # type: ignore[arg-type]

    assert set(pipeline.appended) == {cells[0].id, cells[2].id, cells[3].id}


# -- a third executor, from the protocol alone -------------------------------------------------
class SerialExecutor:
    """Every step of every cell in this thread, in plan order: what a new executor needs is pipeline.py."""

    name = "serial"

    def check_devices(self, pipeline: CellPipeline, names: list[str]) -> None:
        for name in names:
            pipeline.device(name)

    def run_cells(self, pipeline: CellPipeline, cells: list[Cell], done: dict[str, CellRecord]) -> int:
        models: dict[str, Any] = {}
        for cell in [c for c in cells if c.id not in done]:
            model = models.setdefault(cell.model.label, pipeline.prepare_model(cell.model))
            record = pipeline.host_work(cell, model, pipeline.recorded(cell_id(cell.model.label, BASELINE,
                                                                               cell.device)))
            pipeline.measure(cell, record)
            pipeline.append(cell, record)
        return len(cells) - sum(1 for c in cells if c.id not in done)


SUITE = mlp_suite("seam", "{warmup_runs: 1, num_runs: 3, min_secs: 0, float_pairs: 0}")


@pytest.mark.slow  # writes a real model with TensorFlow and runs it with LiteRT
def test_a_third_executor_written_against_the_protocol_runs_a_real_suite(tmp_path: Path,
                                                                          session_cache: Path) -> None:
    from harness.cache import ArtifactCache
    from harness.plan import plan_cells
    from harness.results import read_results
    from harness.suite import load_suite

    (tmp_path / "suite.yaml").write_text(SUITE)
    write_mlp(tmp_path / "model.tflite", 16)
    loaded = load_suite(tmp_path / "suite.yaml")
    runner = SuiteRunner(loaded, tmp_path / "run", ArtifactCache(session_cache), executor=SerialExecutor())
    (tmp_path / "run").mkdir()
    outcome = runner.run(plan_cells(loaded), ["pytest"])
    assert [(r["scheme"], r["status"]) for r in outcome.records] == [("float32", "ok"), ("float32_again", "ok")]
    assert all(v["pass"] for r in outcome.records for v in r["verdicts"]) and outcome.records[1]["verdicts"]
    assert [(r["scheme"], r["status"]) for r in read_results(tmp_path / "run")] == [
        ("float32", "ok"), ("float32_again", "ok")]


class _MeasuringPipeline:
    """Just what `device_task` calls on a worker's pipeline replica."""

    def measure(self, cell: Cell, record: CellRecord) -> None:
        record["latency_ms"] = {"median": 1.0}

    def close_devices(self, names: list[str]) -> None:
        pass


def test_a_ray_device_task_names_the_host_work_node_and_keeps_its_lost_attempts(monkeypatch) -> None:
    """`executed_on` of a cell measured on another node than its host work: the measuring node, the host
    work's node (node_id, hostname) under host_work, and the host attempts lost on the way under retried."""
    from harness.executors import _ray

    monkeypatch.setattr(_ray, "here", lambda: {"node_id": "phone-node", "hostname": "lab-2"})
    record: CellRecord = {"model": "m", "scheme": "int8", "device": "pixel", "status": "ok",
                          "executed_on": {"node_id": "host-node", "hostname": "lab-1", "retried": ["node died"]}}
    cell = SimpleNamespace(device="pixel")
    measured = _ray.device_task(_MeasuringPipeline, cell, record)  # type: ignore[arg-type]
    assert measured["executed_on"] == {"node_id": "phone-node", "hostname": "lab-2",
                                       "host_work": {"node_id": "host-node", "hostname": "lab-1"},
                                       "retried": ["node died"]}
