"""Run a suite: every model × device × scheme cell, recorded as it finishes."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import os
import platform
import queue
import re
import socket
import subprocess
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np

from harness import _interrupt
from harness._latency import (
    device_state,
    earlier_binary,
    earlier_model,
    float_reference,
    latency_stats,
    measure_repeats,
    time_ab,
    time_vs_float,
    with_after,
    with_unpaired,
)
from harness.cache import ArtifactCache, content_key
from harness.claims import check_claims
from harness.config.schema import CalibrationSpec, ModelSpec, TaskSpec
from harness.datasets import DATASETS, Dataset
from harness.datasets.overlap import overlap_note
from harness.devices import Device, load_device
from harness.devices.cpus import cpu_model
from harness.errors import NotApplicable
from harness.executors import Executor, local_node, make_executor
from harness.fidelity import aligned, describe_outputs, json_number, output_fidelity
from harness.history import EarlierRun, suite_identity
from harness.models.source import SourceModel, resolve_source, saved_model_dir
from harness.plan import Cell, cell_key, plan_cells
from harness.record import (
    FORMAT_VERSION,
    Artifact,
    CellRecord,
    LatencyAB,
    LatencySetup,
    Verdict,
    artifact_of,
    benchmark_binary,
    cell_id,
    record_id,
)
from harness.results import (
    ResultsWriter,
    new_run_id,
    read_results,
    read_run_info,
    rewrite_results,
    utc_now,
    write_run_info,
)
from harness.samples import Samples, sample_count, samples_digest
from harness.schemes import BASELINE, SCHEMES
from harness.schemes._base import calibrates
from harness.schemes._intent import quantization_of
from harness.schemes.training import FineTuning, TrainingScheme
from harness.suite.loader import LoadedSuite
from harness.tasks import TASKS
from harness.tflite.audit import audit
from harness.tflite.batching import PROBE_VERSION, Batching, batch_for, model_batching, per_sample
from harness.tflite.runtime import kernels_used, model_outputs, output_info, predict, tensor_types
from harness.tflite.weights import weight_stats
from harness.verdicts import bounds_for, check, claims_for
from harness.versions import tool_versions

# Progress callback: (cell id, stage) — stage is a short word, or "done" with the record.
Progress = Callable[[str, str, CellRecord | None], None]

__all__ = ["Cell", "EarlierRun", "RunOutcome", "SuiteRunner", "latency_stats", "plan_cells"]


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


@dataclass
class _ModelState:
    """What the cells of one model share: its source, evaluation data and float outputs."""

    source: SourceModel | None = None
    error: str | None = None
    not_applicable: bool = False  # the source cannot run here at all (an op no resolver has): cells are n/a
    eval_data: Dataset | None = None
    baseline_outputs: list[np.ndarray] | None = None


class SuiteRunner:
    def __init__(self, loaded: LoadedSuite, run_dir: Path, cache: ArtifactCache,
                 progress: Progress | None = None, earlier: EarlierRun | None = None,
                 executor: Executor | None = None) -> None:
        self.loaded, self.run_dir, self.cache = loaded, run_dir, cache
        self.executor = executor or make_executor("inprocess")  # who runs the cells (harness/executors)
        self.earlier = earlier or EarlierRun()  # the run this one is compared with: its models are re-timed
        self.progress = progress or (lambda cell, stage, record: None)
        self._datasets: dict[str, Dataset] = {}
        self._calibration: dict[CalibrationSpec, Samples] = {}
        self._overlaps: dict[tuple[CalibrationSpec, str, int], str | None] = {}  # calibration vs evaluation
        self._devices: dict[str, Device] = {}
        self._device_info: dict[str, dict[str, Any]] = {}  # describe() of each device, read once per run
        self._host_lock = threading.Lock()  # host work, and a local device's measurement
        self._lock = threading.Lock()  # records, the results file, progress callbacks
        self._records: dict[str, CellRecord] = {}
        self._writer: ResultsWriter | None = None
        self._sealed = False  # the run stopped: no record is appended any more (run.json says what was kept)
        self._closed: set[str] = set()  # devices closed (close() runs once)
        self._device_notes: list[str] = []  # what closing the devices said (run.json notes)
        self.finished = False  # run.json says `finished`: every cell ran (what stops the caller after is its own)

    # -- shared inputs ------------------------------------------------------------------
    def dataset(self, name: str) -> Dataset:
        if name not in self._datasets:
            spec = self.loaded.suite.datasets[name]
            loader = DATASETS.get(spec.kind)
            self._datasets[name] = loader.load(name, self.loaded.dataset_options[name], self.loaded.base_dir,
                                               self.cache)
        return self._datasets[name]

    def calibration(self, spec: CalibrationSpec) -> Samples:
        """The calibration samples a spec draws (the same array for every cell that shares it)."""
        if spec not in self._calibration:
            self._calibration[spec] = self.dataset(spec.dataset).sample(spec.samples, spec.seed)
        return self._calibration[spec]

    def device(self, name: str) -> Device:
        if name not in self._devices:
            self._devices[name] = load_device(name, self.loaded.base_dir)
        return self._devices[name]

    def _prepare_model(self, spec: ModelSpec) -> _ModelState:
        state = _ModelState()
        try:
            train_data = self.dataset(spec.train.dataset) if spec.train else None
            state.source = resolve_source(
                spec, self.loaded.builder_options.get(spec.label), self.loaded.base_dir, self.cache, train_data)
            task = spec.task or self.loaded.suite.task
            assert task is not None  # the loader checked this
            state.eval_data = self.dataset(task.dataset).head(task.limit)
        except Exception as exc:  # noqa: BLE001 - recorded on every cell of the model
            _interrupt.cut(exc)
            state.error, state.not_applicable = _describe(exc), isinstance(exc, NotApplicable)
        return state

    # -- the run ------------------------------------------------------------------------
    def run(self, cells: list[Cell], argv: list[str]) -> RunOutcome:
        """Host work (model sources, conversion, evaluation) runs here, one cell at a time, in
        cell order; each device has one worker thread that measures its cells in that order
        and appends their records. A local (non-`remote`) device's measurement never overlaps
        host work: the host waits for it, and both hold `_host_lock`."""
        names = sorted({c.device for c in cells})
        for name in names:
            self.device(name)  # a bad profile stops the run before any work (exit 2)
        self.executor.check_devices(self, names)
        try:
            return self._run(cells, argv, names)
        finally:
            self._close_devices(names)
            self._keep_device_notes()

    def _run(self, cells: list[Cell], argv: list[str], names: list[str]) -> RunOutcome:
        """From run.json `running` to `finished`; whatever stops it on the way (Ctrl-C, SIGTERM, an
        error) ends in `_stopped`, so run.json never stays `running` after the run has exited."""
        done, notes = self._resumable(cells)
        info = self._run_info(argv, names, cells, notes)
        write_run_info(self.run_dir, info)
        self._writer = ResultsWriter(self.run_dir)
        self._records = dict(done)
        workers: dict[str, _DeviceWorker] = {}
        try:
            skipped = self.executor.run_cells(self, cells, done, workers)
            failures = [w.error for w in workers.values() if w.error is not None]
            if failures:
                raise failures[0]
            info.update(finished_at=utc_now(), status="finished", cache_repairs=[str(e) for e in self.cache.events])
            write_run_info(self.run_dir, info)
            self.finished = True
        except BaseException as exc:
            with _interrupt.deferred():  # a second Ctrl-C cannot cut the stop short
                self._halt(workers, names)
                self._stopped(info, exc)
            raise
        ordered = [self._records[c.id] for c in cells if c.id in self._records]
        return RunOutcome(self.run_dir, ordered, skipped, notes)

    def _halt(self, workers: dict[str, _DeviceWorker], names: list[str]) -> None:
        """Stop every cell still in flight before run.json says the run stopped: no record is
        appended from now on, queued cells are dropped, a running measurement is stopped (its
        process killed: `_interrupt.cut` keeps that from reading as a failed cell) and the device
        workers are waited for, so nothing is written after the run's final status."""
        with self._lock:
            self._sealed = True
        for worker in workers.values():
            worker.cancel()
        self._close_devices(names)
        for worker in workers.values():
            worker.join(timeout=HALT_WAIT_S)

    def _run_cells(self, cells: list[Cell], done: dict[str, CellRecord], workers: dict[str, _DeviceWorker]) -> int:
        """Host work of every cell not already done, in order; measurement on each device's worker."""
        host_done: dict[str, CellRecord] = {}  # cell id -> identity, status, artifact and metrics after host work
        states: dict[str, _ModelState] = {}
        skipped = 0
        for cell in cells:
            _interrupt.check()
            if cell.id in done:
                skipped += 1
                self._report(cell.id, "done", done[cell.id])
                continue
            base_id = cell_id(cell.model.label, BASELINE, cell.device)
            with self._host_lock:
                if cell.model.label not in states:
                    self._report(cell.id, "preparing model", None)
                    states[cell.model.label] = self._prepare_model(cell.model)
                record = self._host_work(cell, states[cell.model.label],
                                         host_done.get(base_id) or self._records.get(base_id))
            host_done[cell.id] = {"model": record["model"], "scheme": record["scheme"], "device": record["device"],
                                  "status": record["status"], "artifact": record.get("artifact"),
                                  "metrics": record.get("metrics", {})}
            if cell.device not in workers:
                workers[cell.device] = _DeviceWorker(self, cell.device)
            finished = workers[cell.device].submit(cell, record)
            if not getattr(self.device(cell.device), "remote", False):
                finished.wait()
        for worker in workers.values():
            worker.finish()
        for worker in workers.values():
            worker.join()
        _interrupt.check()
        return skipped

    def _stopped(self, info: dict[str, Any], exc: BaseException) -> None:
        """run.json says the run did not finish, and why (best effort: the cause is re-raised)."""
        interrupted = isinstance(exc, KeyboardInterrupt)
        info.update(finished_at=utc_now(), status="interrupted" if interrupted else "failed",
                    stop_reason=str(exc) or type(exc).__name__, cache_repairs=[str(e) for e in self.cache.events])
        with contextlib.suppress(Exception):
            write_run_info(self.run_dir, info)

    # -- resuming -----------------------------------------------------------------------
    def _resumable(self, cells: list[Cell]) -> tuple[dict[str, CellRecord], list[str]]:
        """The recorded cells a resumed run can keep: those whose inputs (cell key) are unchanged
        and whose float baseline is kept too, with their checks re-applied under today's thresholds.
        The others are moved to superseded.jsonl (and re-run if planned); the notes say which."""
        recorded = read_results(self.run_dir)
        if not recorded:
            return {}, []
        devices = sorted({c.device for c in cells} | set(self.loaded.suite.devices))
        planned = {c.id: c for c in plan_cells(self.loaded, None, devices)}
        keep, dropped = _still_valid(recorded, {i: cell_key(self.loaded, c) for i, c in planned.items()})
        notes = _resume_notes(read_run_info(self.run_dir), self.loaded.sha256, dropped)
        changed = False
        for record in keep:
            before = record.get("verdicts")
            self._recheck(planned[record_id(record)], record, keep)
            changed = changed or record.get("verdicts") != before
        if dropped or changed:
            _supersede(self.run_dir, [r for r, _ in dropped])
            rewrite_results(self.run_dir, keep)
        return {record_id(r): r for r in keep}, notes

    def _recheck(self, cell: Cell, record: CellRecord, kept: list[CellRecord]) -> None:
        baseline = next((r for r in kept if record_id(r) == cell_id(cell.model.label, BASELINE, cell.device)), None)
        if record["status"] == "ok":
            record["verdicts"] = self._verdicts(cell, record, baseline)

    def _report(self, cell: str, stage: str, record: CellRecord | None) -> None:
        if stage != "done":
            _interrupt.check()  # a stage boundary: where a swallowed Ctrl-C still stops the run
        with self._lock:
            self.progress(cell, stage, record)

    def _close_devices(self, names: list[str]) -> None:
        """Remove pushed files and disconnect (also when the run stops early); once per device."""
        for name in [n for n in names if n not in self._closed]:
            self._closed.add(name)
            close = getattr(self._devices.get(name), "close", None)
            if close is not None:
                try:
                    close()
                except Exception:  # noqa: BLE001 - cleanup must not lose the finished run
                    pass
            notes = getattr(self._devices.get(name), "notes", None) or []
            self._device_notes += [f"device {name}: {note}" for note in notes]

    def _keep_device_notes(self) -> None:
        """What closing the devices had to say (an STF lease the server would not release, files left
        on a phone) goes into run.json's `notes`, after its final status was written."""
        info = read_run_info(self.run_dir)
        new = [note for note in self._device_notes if note not in (info.get("notes") or [])]
        if info and new:
            with contextlib.suppress(Exception):
                write_run_info(self.run_dir, {**info, "notes": [*(info.get("notes") or []), *new]})

    def _run_info(self, argv: list[str], devices: list[str], cells: list[Cell], notes: list[str]) -> dict[str, Any]:
        earlier = read_run_info(self.run_dir)
        return {
            "format_version": FORMAT_VERSION,
            "run_id": earlier.get("run_id") or new_run_id(),  # resume: the same run
            "suite": self.loaded.name,
            "suite_path": str(self.loaded.path.resolve()),  # `bench report` may run elsewhere
            "suite_sha256": self.loaded.sha256,
            "suite_identity": suite_identity(self.loaded.name, str(self.loaded.path.resolve())),
            "started_at": earlier.get("started_at", utc_now(precise=True)),
            "resumed_at": utc_now() if earlier else None,
            "finished_at": None,
            "status": "running",
            "argv": argv,
            "git_commit": _git_commit(self.loaded.path.parent),
            "tool_versions": tool_versions(),
            "host": {"hostname": socket.gethostname(), "platform": platform.platform(),
                     "cpu_model": cpu_model(), "cpus": os.cpu_count()},
            "devices": {name: self._described(name) for name in devices},
            "cache_dir": str(self.cache.root),
            "plan": list(dict.fromkeys([*(earlier.get("plan") or []), *(c.id for c in cells)])),
            "notes": notes,
        }

    def _described(self, name: str) -> dict[str, Any]:
        if name not in self._device_info:
            self._device_info[name] = self.device(name).describe()
        return self._device_info[name]

    def _new_record(self, cell: Cell) -> CellRecord:
        return {
            "model": cell.model.label, "scheme": cell.scheme.label, "scheme_kind": cell.scheme.scheme,
            "scheme_options": cell.scheme.options, "device": cell.device, "status": "ok", "error": None,
            "size_bytes": None, "gzip_bytes": None, "weights": None, "metrics": {}, "metrics_na": None,
            "latency_ms": None, "latency_samples_ms": None, "memory": None, "verdicts": [],
            "artifact": None, "timings_s": {}, "cell_key": cell_key(self.loaded, cell), "executed_on": local_node(),
        }

    def _host_work(self, cell: Cell, state: _ModelState, baseline: CellRecord | None) -> CellRecord:
        """Convert and evaluate one cell; `baseline` is its float cell after host work (status, artifact)."""
        record = self._new_record(cell)
        try:
            if state.error:
                raise NotApplicable(state.error) if state.not_applicable else _SourceFailed(state.error)
            self._produce(cell, state, record, baseline)
            self._evaluate(cell, state, record, baseline)
            if cell.scheme.label != BASELINE and (paired := float_reference(baseline, self.loaded.suite.latency)):
                record["latency_vs_float"] = paired
        except NotApplicable as exc:
            record["status"], record["error"] = "n/a", str(exc)
        except Exception as exc:  # noqa: BLE001 - one failing cell must not stop the suite
            _interrupt.cut(exc)
            record["status"], record["error"] = "failed", _describe(exc)
        return record

    def _device_work(self, cell: Cell, record: CellRecord) -> None:
        """On the device's worker: measure (if host work succeeded), check, append the record."""
        self._measured(cell, record)
        self._append(cell, record)

    def _measured(self, cell: Cell, record: CellRecord) -> None:
        """Measure a cell whose host work succeeded; a failure is recorded on the cell."""
        if record["status"] == "ok" and not self._sealed:
            device = self.device(cell.device)
            try:
                with contextlib.nullcontext() if getattr(device, "remote", False) else self._host_lock:
                    self._measure(cell, record)
            except NotApplicable as exc:
                record["status"], record["error"] = "n/a", str(exc)
            except Exception as exc:  # noqa: BLE001 - one failing cell must not stop the suite
                _interrupt.cut(exc)  # its measurement was stopped by Ctrl-C/SIGTERM: not done, not failed
                record["status"], record["error"] = "failed", _describe(exc)
                self._keep_log(cell, record, getattr(exc, "log", None))

    def _append(self, cell: Cell, record: CellRecord) -> None:
        """Check a measured record against its (finished) baseline and append it (the only writer)."""
        with self._lock:
            baseline = self._records.get(cell_id(cell.model.label, BASELINE, cell.device))
        self._finish(cell, record, baseline)
        assert self._writer is not None
        with self._lock:
            if self._sealed:
                return  # in flight when the run stopped: not done, --resume runs it
            self._writer.append(record)
            self._records[cell.id] = record
            self.progress(cell.id, "done", record)

    def _finish(self, cell: Cell, record: CellRecord, baseline: CellRecord | None) -> None:
        """Threshold checks against the (finished) float baseline record, and the finish time."""
        if record["status"] == "ok":
            with_unpaired(record, baseline)
            record["verdicts"] = self._verdicts(cell, record, baseline)
            if cell.scheme.label != BASELINE and (baseline is None or baseline["status"] != "ok"):
                record["metrics_na"] = (record["metrics_na"] or "") + " no float baseline to compare with"
        record["finished_at"] = utc_now()

    def _verdicts(self, cell: Cell, record: CellRecord, baseline: CellRecord | None) -> list[Verdict]:
        reference = record if cell.scheme.label == BASELINE else baseline
        thresholds, model, scheme = self.loaded.suite.thresholds, cell.model.label, cell.scheme.label
        return check(record, reference, bounds_for(thresholds, model, scheme), claims=claims_for(thresholds, model, scheme))

    def _produce(self, cell: Cell, state: _ModelState, record: CellRecord, baseline: CellRecord | None = None) -> None:
        self._report(cell.id, "converting", None)
        source = state.source
        assert source is not None
        scheme = SCHEMES.get(cell.scheme.scheme)
        options = self.loaded.scheme_options.get(cell.scheme.label) or scheme.Options()
        calibrated = calibrates(scheme, options)
        calibration_spec = self.loaded.calibration_for(cell.model, cell.scheme) if calibrated else None
        calibration = self.calibration(calibration_spec) if calibration_spec is not None else None
        if calibrated and calibration is None:
            raise NotApplicable("no calibration dataset configured")
        if calibration_spec is not None and calibration is not None:
            record["calibration"] = {**calibration_spec.model_dump(), "drawn": sample_count(calibration)}
            self._note_overlap(calibration_spec, state, record)
        finetune = None
        trainer = scheme if isinstance(scheme, TrainingScheme) and scheme.needs_training else None
        if trainer is not None and source.format != "tflite":
            budget = self.loaded.finetune_for(cell.model, cell.scheme)  # the loader checked there is one
            assert budget is not None and budget.dataset is not None
            finetune = FineTuning(budget, self.dataset(budget.dataset))
        key = content_key(
            kind="tflite", source=source.digest, scheme=cell.scheme.scheme,
            options=options.model_dump(mode="json"),
            calibration=samples_digest(calibration) if calibration is not None else None,
            versions=tool_versions(),
            **({"finetune": finetune.key} if finetune is not None else {}),
        )
        if getattr(options, "recover", None) is not None:  # the loop chooses float_layers: harness/numerics/recover.py
            options = self._recovered(cell, state, options, calibration, key, record, baseline)

        def produce(target: Path) -> None:
            if source.format == "tflite":
                data = scheme.from_tflite(source.path.read_bytes(), options, calibration)
            elif trainer is not None and finetune is not None:
                data = trainer.from_keras(source.path, options, finetune, calibration, self.cache)
            else:
                data = scheme.from_saved_model(saved_model_dir(source, self.cache), options, calibration)
            target.write_bytes(data)

        started = time.perf_counter()
        path, cached = self.cache.get_or_create("tflite", key, ".tflite", produce)
        record["timings_s"]["convert"] = round(time.perf_counter() - started, 3)
        data = path.read_bytes()
        artifact: Artifact = {"path": str(path), "sha256": hashlib.sha256(data).hexdigest(), "cached": cached,
                              "source": str(source.path), "source_info": source.info}
        if self.cache.problems_for(path):
            artifact["rebuilt"] = self.cache.problems_for(path)
        record["artifact"] = artifact
        record["size_bytes"] = len(data)
        record["gzip_bytes"] = len(gzip.compress(data, compresslevel=9, mtime=0))
        record["io_types"] = tensor_types(path)
        record["weights"] = weight_stats(path)
        record["audit"] = audit(path)
        record["claims"] = check_claims(scheme.claims, options, record)  # what the scheme claims, checked
        record["quantization"] = quantization_of(cell.scheme.scheme, scheme, options, data,
                                                 lambda: self._float_model(source))
        if trainer is not None and finetune is not None:  # layers the techniques wrapped, those left untouched (why)
            record["technique"] = trainer.technique(source.path, options, finetune, self.cache)
        if getattr(options, "diagnose", False):  # per-tensor error vs float: harness/numerics/_cell_diagnosis.py
            from harness.numerics._cell_diagnosis import cell_diagnosis

            record["diagnosis"] = cell_diagnosis(path, baseline, calibration, source.format, cell.scheme.scheme,
                                                 lambda: saved_model_dir(source, self.cache))

    def _note_overlap(self, spec: CalibrationSpec, state: _ModelState, record: CellRecord) -> None:
        """A note on the record when the calibration samples are evaluation samples too (checked once per pair)."""
        assert state.eval_data is not None
        pair = (spec, state.eval_data.name, len(state.eval_data))
        if pair not in self._overlaps:
            self._overlaps[pair] = overlap_note(self.dataset(spec.dataset), spec.samples, spec.seed, state.eval_data)
        note = self._overlaps[pair]
        if note is not None:
            record.setdefault("notes", []).append(note)

    def _float_model(self, source: Any) -> bytes:
        """The float .tflite of a source: the file itself, or the float32 scheme's conversion (cached,
        the float32 cell's artifact when it ran)."""
        if source.format == "tflite":
            return source.path.read_bytes()
        float32 = SCHEMES.get(BASELINE)
        key = content_key(kind="tflite", source=source.digest, scheme=BASELINE,
                          options=float32.Options().model_dump(mode="json"), calibration=None,
                          versions=tool_versions())

        def produce(target: Path) -> None:
            target.write_bytes(float32.from_saved_model(saved_model_dir(source, self.cache), float32.Options(), None))

        path, _ = self.cache.get_or_create("tflite", key, ".tflite", produce)
        return path.read_bytes()

    def _recovered(self, cell: Cell, state: _ModelState, options: Any, calibration: Samples | None, key: str,
                   record: CellRecord, baseline: CellRecord | None) -> Any:
        """`recover:` — the float layers chosen by re-evaluating this cell's task (cached under `key`, the eval
        data and the baseline's metric); the cell's artifact is the scheme with those `float_layers`."""
        from harness.numerics import recover

        reference = recover.baseline_metric(options.recover, baseline)

        def evaluate(path: Path) -> dict[str, Any]:
            scratch: CellRecord = {
                "model": cell.model.label, "scheme": cell.scheme.label, "device": cell.device, "status": "ok",
                "artifact": {"path": str(path), "sha256": hashlib.sha256(path.read_bytes()).hexdigest()},
                "timings_s": {}, "metrics": {}, "metrics_na": None}
            self._evaluate(cell, state, scratch, baseline, cross_kernel=False)
            return scratch["metrics"]

        def run(target: Path) -> None:
            self._report(cell.id, "recovering", None)
            scheme, source = SCHEMES.get(cell.scheme.scheme), state.source
            assert source is not None and state.eval_data is not None and baseline is not None
            result = recover.run(scheme, options, source, lambda: saved_model_dir(source, self.cache), calibration,
                                 Path(artifact_of(baseline)["path"]), evaluate, reference, state.eval_data.x)
            target.write_text(json.dumps(result, allow_nan=False))

        assert state.eval_data is not None  # the loader checked the cell has a task and its dataset
        started = time.perf_counter()
        path, _ = self.cache.get_or_create("recovery", content_key(kind="recovery", artifact=key, reference=reference,
                                           data=state.eval_data.fingerprint), ".json", run)
        record["timings_s"]["recover"] = round(time.perf_counter() - started, 3)
        record["recovery"] = json.loads(path.read_text())
        return options.model_copy(update={"float_layers": record["recovery"]["float_tensors"], "recover": None})

    def _batching(self, model: Path, sha256: str, data: Dataset) -> Batching:
        """Whether the model batches (harness.tflite.batching), probed once per artifact."""
        key = content_key(kind="batching", artifact=sha256, probe=PROBE_VERSION,
                          litert=tool_versions()["ai-edge-litert"])
        path, _ = self.cache.get_or_create("batching", key, ".json",
                                           lambda target: target.write_text(model_batching(model, data.x).to_json()))
        return Batching.from_json(path.read_text())

    def _outputs(self, model: Path, sha256: str, data: Dataset,
                 task_spec: TaskSpec) -> tuple[list[np.ndarray], dict[str, Any]]:
        """Every model output on the dataset, one row per sample, cached by (artifact, data, batching,
        runtime version); with how it ran (for the record's `evaluation`)."""
        batching = self._batching(model, sha256, data)
        batch = batch_for(batching, task_spec.batch_size, "batch_size" in task_spec.model_fields_set, model.name)
        key = content_key(kind="outputs", artifact=sha256, data=data.fingerprint, batch=batch,
                          batches=batching.batches, litert=tool_versions()["ai-edge-litert"])

        def run(target: Path) -> None:
            outputs = predict(model, data.x, batch_size=batch, num_threads=os.cpu_count() or 1, batching=batching)
            with open(target, "wb") as handle:
                np.savez(handle, *outputs)

        path, cached = self.cache.get_or_create("outputs", key, ".npz", run)
        with np.load(path) as archive:
            outputs = [archive[f"arr_{i}"] for i in range(len(archive.files))]
        per_sample(outputs, len(data), [name for name, _ in output_info(model)], model.name)
        return outputs, {"cached": cached, "batch_size": min(batch, len(data)), "batching": batching.reason}

    def _evaluate(self, cell: Cell, state: _ModelState, record: CellRecord, baseline: CellRecord | None,
                  cross_kernel: bool = True) -> None:
        self._report(cell.id, "evaluating", None)
        task_spec = cell.model.task or self.loaded.suite.task
        assert task_spec is not None and state.eval_data is not None
        task = TASKS.get(task_spec.kind)
        task_options = self.loaded.task_options[cell.model.label]
        started = time.perf_counter()
        outputs, ran = self._outputs(Path(artifact_of(record)["path"]), artifact_of(record)["sha256"],
                                     state.eval_data, task_spec)
        record["timings_s"]["evaluate"] = round(time.perf_counter() - started, 3)
        record["evaluation"] = {"dataset": state.eval_data.name, "samples": len(state.eval_data),
                                "source": state.eval_data.source, **ran,
                                "kernels": kernels_used(Path(artifact_of(record)["path"]))}
        try:
            record["metrics"].update(task.score(outputs, state.eval_data, task_options))
        except NotApplicable as exc:
            record["metrics_na"] = f"task metrics n/a: {exc}"
        infos = model_outputs(Path(artifact_of(record)["path"]))
        record["outputs"] = describe_outputs(infos, outputs)
        if cell.scheme.label == BASELINE:
            state.baseline_outputs = outputs
        elif baseline is not None and baseline["status"] == "ok":
            reference = state.baseline_outputs
            if reference is None:  # resumed run: the baseline finished in an earlier process
                reference, _ = self._outputs(Path(artifact_of(baseline)["path"]), artifact_of(baseline)["sha256"],
                                             state.eval_data, task_spec)
                state.baseline_outputs = reference
            reference = aligned(reference, [i.name for i in model_outputs(Path(artifact_of(baseline)["path"]))],
                                [i.name for i in infos])
            record["metrics"].update(task.fidelity(outputs, reference, task_options))
            worst, record["outputs"] = output_fidelity(outputs, reference, infos)
            record["metrics"].update(worst)
            if cross_kernel:
                self._cross_kernel(record, state.eval_data, reference, task_spec)
        record["metrics"] = {name: None if value is None else json_number(value) for name, value in record["metrics"].items()}

    def _cross_kernel(self, record: CellRecord, data: Dataset, reference: list[np.ndarray],
                      task_spec: TaskSpec) -> None:
        """The first samples on XNNPACK, the builtin and the reference kernels (harness/numerics/kernels.py),
        cached by (artifact, float artifact's outputs, data, runtime); its own failure is recorded, not the cell's."""
        from harness.numerics import kernels

        model, sha256 = Path(artifact_of(record)["path"]), artifact_of(record)["sha256"]
        head = data.head(kernels.SAMPLES)
        try:
            batching = self._batching(model, sha256, data)
            batch = min(batch_for(batching, task_spec.batch_size, "batch_size" in task_spec.model_fields_set,
                                  model.name), len(head))
            key = content_key(kind="kernel_paths", artifact=sha256, data=head.fingerprint, batch=batch,
                              reference=samples_digest({str(i): r[: len(head)] for i, r in enumerate(reference)}),
                              litert=tool_versions()["ai-edge-litert"])
            path, _ = self.cache.get_or_create("kernel_paths", key, ".json", lambda target: target.write_text(json.dumps(
                kernels.cross_kernel(model, head.x, reference, batch, batching), allow_nan=False)))
            check = json.loads(path.read_text())
        except Exception as exc:  # noqa: BLE001 - the cell's numbers stand; the check's failure is its verdict's
            kernels.failed(record, exc)
            return
        kernels.attach(record, check, len(head))

    def _measure(self, cell: Cell, record: CellRecord) -> None:
        self._report(cell.id, "timing", None)
        started = time.perf_counter()
        device, model = self.device(cell.device), Path(artifact_of(record)["path"])
        state = device_state(device, self.loaded.suite.latency)
        raws, sample = measure_repeats(device, model, self.loaded.suite.latency)
        read_state = getattr(device, "device_state", None)  # devices that report their state (phones, local)
        if state is not None and read_state is not None:
            record["device_state"] = with_after(state, read_state(), raws, self.loaded.suite.latency)
        raw = raws[-1]  # memory, setup, log and delegates of the last repeat
        record["latency_ms"] = latency_stats(raws)
        record["latency_samples_ms"] = sample or None
        memory: dict[str, float | int | str | None] = {k: raw[k] for k in ("peak_rss_mb", "rss_before_model_mb") if k in raw}
        memory.update(raw.get("memory") or {})
        record["memory"] = memory
        # the device's raw result is untyped: its setup keys under LatencySetup's names
        setup = cast(LatencySetup, {k: raw[k] for k in ("core", "threads", "mask", "command", "attempts",
                                                        "model_pushed", "remote_calls") if k in raw})
        described = self._described(cell.device)
        setup["runtime"] = described.get("runtime")
        if described.get("benchmark_sha256"):
            setup["benchmark_binary"] = {"path": described.get("benchmark_binary"), "sha256": described["benchmark_sha256"]}
        record["latency_setup"] = setup
        for key in ("delegates", "op_profile", "acceleration"):
            if raw.get(key) is not None:
                record[key] = raw[key]
        self._keep_log(cell, record, raw.get("log"))
        self._device_numerics(cell, record, device, model)
        self._retime_earlier(cell, record, device, model)
        self._time_vs_float(cell, record, device, model)
        record["timings_s"]["latency"] = round(time.perf_counter() - started, 3)

    def _time_vs_float(self, cell: Cell, record: CellRecord, device: Device, model: Path) -> None:
        """`latency.float_pairs`: the float cell's model timed beside this one in alternating pairs."""
        if record.get("latency_vs_float"):
            self._report(cell.id, "timing beside the float model (pairs)", None)
            settings = self.loaded.suite.latency
            record["latency_vs_float"] = time_vs_float(device, record["latency_vs_float"], model, settings)

    def _device_numerics(self, cell: Cell, record: CellRecord, device: Device, model: Path) -> None:
        """Phones (`latency.device_check: N`): N evaluation samples run on the device, its outputs
        compared with the host's (harness/devices/android/_numerics.py); a check that could not run
        is noted, and its device_* bounds fail."""
        checks, check_numerics = self.loaded.suite.latency.device_check, getattr(device, "check_numerics", None)
        if not checks or check_numerics is None:
            return
        from harness.devices.android._numerics import device_metrics

        task = cell.model.task or self.loaded.suite.task
        assert task is not None
        checking = time.perf_counter()
        numerics = check_numerics(model, self.dataset(task.dataset).head(task.limit).x, checks, self.loaded.suite.latency)
        record["timings_s"]["device_check"] = round(time.perf_counter() - checking, 3)
        record["device_numerics"] = numerics
        record["metrics"].update(device_metrics(numerics))
        if numerics["status"] != "ok":
            note = f"device numerics {numerics['status']}: {numerics['reason']}"
            record["metrics_na"] = f"{record['metrics_na']}; {note}" if record["metrics_na"] else note

    def _retime_earlier(self, cell: Cell, record: CellRecord, device: Device, model: Path) -> None:
        """When this cell's model (or a phone's benchmark_model binary) differs from the one the
        earlier run timed, time both side by side: A = the earlier model on the earlier binary."""
        before = self.earlier.records.get(cell.id)
        if before is None or before.get("status") != "ok" or self.loaded.suite.latency.ab_pairs == 0:
            return
        sha, path, note = earlier_model(before, self.earlier.kept(before))
        binary_sha, binary, binary_note = earlier_binary(before, self.earlier.kept_binary(before))
        now_binary = benchmark_binary(record).get("sha256")
        binary_changed = binary_sha is not None and now_binary is not None and binary_sha != now_binary
        if sha is None or (sha == artifact_of(record)["sha256"] and not binary_changed):
            return
        self._report(cell.id, "re-timing the earlier model (A/B)", None)
        ab: LatencyAB = {"baseline_sha256": sha, "baseline_run": self.earlier.label_of(cell.id)}
        record["latency_ab"] = ab
        if binary_changed and binary_sha is not None:
            ab["baseline_binary_sha256"] = binary_sha
        if path is None or (binary_changed and binary is None):
            ab["unavailable"] = note or binary_note
            return
        suite = self.loaded.suite
        ab["baseline_path"] = str(path)
        ab.update(time_ab(device, path, model, suite.latency, bound=suite.regression.min_paired_ratio,
                          earlier_binary=binary if binary_changed else None))

    def _keep_log(self, cell: Cell, record: CellRecord, text: str | None) -> None:
        """The device's raw log beside the results: logs/<model>__<scheme>__<device>.log."""
        if not text:
            return
        name = "__".join(_SAFE.sub("_", part) for part in (cell.model.label, cell.scheme.label, cell.device))
        path = self.run_dir / "logs" / f"{name}.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        record["latency_log"] = str(path.relative_to(self.run_dir))


class _DeviceWorker:
    """One thread per device: measures the cells handed to it, in order, one at a time."""

    def __init__(self, runner: SuiteRunner, device: str) -> None:
        self.runner, self.device = runner, device
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
                    self.runner._device_work(cell, record)
            except BaseException as exc:  # noqa: BLE001 - a harness bug: re-raised by run()
                self.error = exc
            finally:
                finished.set()


_SAFE = re.compile(r"[^\w.+-]+")
HALT_WAIT_S = 30.0  # how long a stopping run waits for a device's measurement to end once stopped


Dropped = list[tuple[CellRecord, str]]  # (record, why it cannot be kept)


def _still_valid(recorded: list[CellRecord], keys: dict[str, str]) -> tuple[list[CellRecord], Dropped]:
    """Split recorded cells into those a resume keeps and those it drops (with the reason). A cell
    whose float baseline is dropped is dropped too: its fidelity was measured against that baseline."""
    keep, dropped = [], []
    for record in recorded:
        cell = record_id(record)
        if cell not in keys:
            dropped.append((record, "no longer in the suite"))
        elif record.get("cell_key") != keys[cell]:
            reason = "its inputs changed" if record.get("cell_key") else "recorded by an older quantbench"
            dropped.append((record, reason))
        else:
            keep.append(record)
    gone = {cell_id(r["model"], BASELINE, r["device"]) for r, _ in dropped if r["scheme"] == BASELINE}
    orphans = [r for r in keep if r["scheme"] != BASELINE and cell_id(r["model"], BASELINE, r["device"]) in gone]
    dropped += [(r, "its float baseline is re-run") for r in orphans]
    return [r for r in keep if r not in orphans], dropped


def _resume_notes(info: dict[str, Any], sha256: str, dropped: Dropped) -> list[str]:
    notes = []
    if info.get("suite_sha256") and info["suite_sha256"] != sha256:
        notes.append(f"the suite file changed since this run started (sha256 {info['suite_sha256'][:12]} → "
                     f"{sha256[:12]}): cells whose inputs are unchanged are kept, their checks re-applied")
    for record, reason in dropped:
        notes.append(f"{record_id(record)}: not kept ({reason}); moved to superseded.jsonl")
    return notes


def _supersede(run_dir: Path, records: list[CellRecord]) -> None:
    """Keep dropped records beside the run (superseded.jsonl) rather than losing them."""
    if records:
        ResultsWriter(run_dir, name="superseded.jsonl").extend(records)


class _SourceFailed(Exception):
    """The model's source could not be built/loaded; every cell of the model fails with it."""


def _describe(exc: BaseException) -> str:
    """A one-paragraph error, trimmed: an expected error (HarnessError) is its message, as the user
    acts on it; an unexpected one (a harness or library bug) also names its type and innermost frame."""
    from harness.errors import HarnessError

    message = str(exc).strip() or type(exc).__name__
    if len(message) > 2000:
        message = message[:1000] + " … " + message[-900:]
    if isinstance(exc, _SourceFailed):
        return f"model source failed: {message}"
    if isinstance(exc, HarnessError):
        return message
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" (at {Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""
    return f"{type(exc).__name__}: {message}{where}"


def _git_commit(directory: Path) -> str | None:
    try:
        done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=directory, capture_output=True, text=True,
                              timeout=5, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None

