"""Run a suite: every model × device × scheme cell, recorded as it finishes."""

from __future__ import annotations

import contextlib
import fnmatch
import gzip
import hashlib
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness.cache import ArtifactCache, content_key
from harness.datasets import DATASETS, Dataset
from harness.devices import Device, load_device
from harness.devices.cpus import cpu_model
from harness.devices.litert import predict, tensor_types
from harness.errors import HarnessError, NotApplicable
from harness.models.source import SourceModel, resolve_source, saved_model_dir
from harness.results import (
    ResultsWriter,
    cell_id,
    read_results,
    read_run_info,
    record_id,
    utc_now,
    write_run_info,
)
from harness.schemes import BASELINE, SCHEMES
from harness.schemes.training import FineTuning
from harness.stats import summarize
from harness.suite.loader import LoadedSuite
from harness.suite.schema import CalibrationSpec, ModelSpec, SchemeSpec
from harness.tasks import TASKS
from harness.tflite_stats import weight_stats
from harness.verdicts import bounds_for, check
from harness.versions import tool_versions

# Progress callback: (cell id, stage) — stage is a short word, or "done" with the record.
Progress = Callable[[str, str, dict[str, Any] | None], None]


@dataclass(frozen=True)
class Cell:
    model: ModelSpec
    scheme: SchemeSpec
    device: str

    @property
    def id(self) -> str:
        return cell_id(self.model.label, self.scheme.label, self.device)


@dataclass
class RunOutcome:
    run_dir: Path
    records: list[dict[str, Any]]
    skipped: int = 0

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


def plan_cells(loaded: LoadedSuite, only: list[str] | None = None, devices: list[str] | None = None) -> list[Cell]:
    """All cells in run order: per model and device, the float baseline first.

    `only` globs match `model/scheme` or `model/scheme@device`; a selected model's baseline
    always runs too, since every other cell is compared with it. `devices` replaces the
    suite's device list.
    """
    suite = loaded.suite
    schemes = list(suite.schemes)
    if not any(s.label == BASELINE for s in schemes):
        schemes.insert(0, SchemeSpec(scheme=BASELINE))
    schemes.sort(key=lambda s: s.label != BASELINE)
    cells = []
    for model in suite.models:
        for device in devices or suite.devices:
            group = [Cell(model, scheme, device) for scheme in schemes
                     if scheme.label == BASELINE or model.schemes is None
                     or any(fnmatch.fnmatchcase(scheme.label, p) for p in model.schemes)]
            if only:
                chosen = [c for c in group if _selected(c, only)]
                if not chosen:
                    continue
                group = [c for c in group if c.scheme.label == BASELINE or c in chosen]
            cells.extend(group)
    return cells


def _selected(cell: Cell, patterns: list[str]) -> bool:
    names = (f"{cell.model.label}/{cell.scheme.label}", cell.id)
    return any(fnmatch.fnmatchcase(n, p) for p in patterns for n in names)


@dataclass
class _ModelState:
    """What the cells of one model share: its source, evaluation data and float outputs."""

    source: SourceModel | None = None
    error: str | None = None
    eval_data: Dataset | None = None
    baseline_outputs: list[np.ndarray] | None = None


class SuiteRunner:
    def __init__(self, loaded: LoadedSuite, run_dir: Path, cache: ArtifactCache,
                 progress: Progress | None = None) -> None:
        self.loaded, self.run_dir, self.cache = loaded, run_dir, cache
        self.progress = progress or (lambda cell, stage, record: None)
        self._datasets: dict[str, Dataset] = {}
        self._calibration: dict[CalibrationSpec, np.ndarray] = {}
        self._devices: dict[str, Device] = {}
        self._device_info: dict[str, dict[str, Any]] = {}  # describe() of each device, read once per run
        self._host_lock = threading.Lock()  # host work, and a local device's measurement
        self._lock = threading.Lock()  # records, the results file, progress callbacks
        self._records: dict[str, dict[str, Any]] = {}
        self._writer: ResultsWriter | None = None

    # -- shared inputs ------------------------------------------------------------------
    def dataset(self, name: str) -> Dataset:
        if name not in self._datasets:
            spec = self.loaded.suite.datasets[name]
            loader = DATASETS.get(spec.kind)
            self._datasets[name] = loader.load(name, self.loaded.dataset_options[name], self.loaded.base_dir,
                                               self.cache)
        return self._datasets[name]

    def calibration(self, spec: CalibrationSpec) -> np.ndarray:
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
            state.error = _describe(exc)
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
        for name in names:
            check = getattr(self.device(name), "check", None)
            if check is not None:
                check()
        try:
            return self._run(cells, argv, names)
        finally:
            self._close_devices(names)

    def _run(self, cells: list[Cell], argv: list[str], names: list[str]) -> RunOutcome:
        done = {record_id(r): r for r in read_results(self.run_dir)}
        info = self._run_info(argv, names)
        write_run_info(self.run_dir, info)
        self._writer = ResultsWriter(self.run_dir)
        self._records = dict(done)
        host_done: dict[str, dict[str, Any]] = {}  # cell id -> status/artifact after host work
        states: dict[str, _ModelState] = {}
        workers: dict[str, _DeviceWorker] = {}
        skipped = 0
        try:
            for cell in cells:
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
                host_done[cell.id] = {"status": record["status"], "artifact": record["artifact"]}
                if cell.device not in workers:
                    workers[cell.device] = _DeviceWorker(self, cell.device)
                finished = workers[cell.device].submit(cell, record)
                if not getattr(self.device(cell.device), "remote", False):
                    finished.wait()
            for worker in workers.values():
                worker.finish()
            for worker in workers.values():
                worker.join()
        except BaseException:
            for worker in workers.values():
                worker.cancel()
            raise
        failures = [w.error for w in workers.values() if w.error is not None]
        if failures:
            raise failures[0]
        info["finished_at"] = utc_now()
        info["status"] = "finished"
        write_run_info(self.run_dir, info)
        ordered = [self._records[c.id] for c in cells if c.id in self._records]
        return RunOutcome(self.run_dir, ordered, skipped)

    def _report(self, cell: str, stage: str, record: dict[str, Any] | None) -> None:
        with self._lock:
            self.progress(cell, stage, record)

    def _close_devices(self, names: list[str]) -> None:
        """Remove pushed files and disconnect (also when the run stops early)."""
        for name in names:
            close = getattr(self._devices.get(name), "close", None)
            if close is not None:
                try:
                    close()
                except Exception:  # noqa: BLE001 - cleanup must not lose the finished run
                    pass

    def _run_info(self, argv: list[str], devices: list[str]) -> dict[str, Any]:
        earlier = read_run_info(self.run_dir)
        return {
            "suite": self.loaded.name,
            "suite_path": str(self.loaded.path.resolve()),  # `bench report` may run elsewhere
            "suite_sha256": self.loaded.sha256,
            "started_at": earlier.get("started_at", utc_now()),
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
        }

    def _described(self, name: str) -> dict[str, Any]:
        if name not in self._device_info:
            self._device_info[name] = self.device(name).describe()
        return self._device_info[name]

    def _new_record(self, cell: Cell) -> dict[str, Any]:
        return {
            "model": cell.model.label, "scheme": cell.scheme.label, "scheme_kind": cell.scheme.scheme,
            "scheme_options": cell.scheme.options, "device": cell.device, "status": "ok", "error": None,
            "size_bytes": None, "gzip_bytes": None, "weights": None, "metrics": {}, "metrics_na": None,
            "latency_ms": None, "latency_samples_ms": None, "memory": None, "verdicts": [],
            "artifact": None, "timings_s": {},
        }

    def _host_work(self, cell: Cell, state: _ModelState, baseline: dict[str, Any] | None) -> dict[str, Any]:
        """Convert and evaluate one cell; `baseline` is its float cell after host work (status, artifact)."""
        record = self._new_record(cell)
        try:
            if state.error:
                raise _SourceFailed(state.error)
            self._produce(cell, state, record)
            self._evaluate(cell, state, record, baseline)
        except NotApplicable as exc:
            record.update(status="n/a", error=str(exc))
        except Exception as exc:  # noqa: BLE001 - one failing cell must not stop the suite
            record.update(status="failed", error=_describe(exc))
        return record

    def _device_work(self, cell: Cell, record: dict[str, Any]) -> None:
        """On the device's worker: measure (if host work succeeded), check, append the record."""
        if record["status"] == "ok":
            device = self.device(cell.device)
            try:
                with contextlib.nullcontext() if getattr(device, "remote", False) else self._host_lock:
                    self._measure(cell, record)
            except NotApplicable as exc:
                record.update(status="n/a", error=str(exc))
            except Exception as exc:  # noqa: BLE001 - one failing cell must not stop the suite
                record.update(status="failed", error=_describe(exc))
                self._keep_log(cell, record, getattr(exc, "log", None))
        with self._lock:
            baseline = self._records.get(cell_id(cell.model.label, BASELINE, cell.device))
        self._finish(cell, record, baseline)
        assert self._writer is not None
        with self._lock:
            self._writer.append(record)
            self._records[cell.id] = record
            self.progress(cell.id, "done", record)

    def _finish(self, cell: Cell, record: dict[str, Any], baseline: dict[str, Any] | None) -> None:
        """Threshold checks against the (finished) float baseline record, and the finish time."""
        if record["status"] == "ok":
            is_baseline = cell.scheme.label == BASELINE
            reference = record if is_baseline else baseline
            record["verdicts"] = check(record, reference, bounds_for(self.loaded.suite.thresholds,
                                                                     cell.model.label, cell.scheme.label))
            if not is_baseline and (baseline is None or baseline["status"] != "ok"):
                record["metrics_na"] = (record["metrics_na"] or "") + " no float baseline to compare with"
        record["finished_at"] = utc_now()

    def _produce(self, cell: Cell, state: _ModelState, record: dict[str, Any]) -> None:
        self._report(cell.id, "converting", None)
        source = state.source
        assert source is not None
        scheme = SCHEMES.get(cell.scheme.scheme)
        options = self.loaded.scheme_options.get(cell.scheme.label) or scheme.Options()
        calibration_spec = self.loaded.calibration_for(cell.model, cell.scheme) if scheme.needs_calibration else None
        calibration = self.calibration(calibration_spec) if calibration_spec is not None else None
        if scheme.needs_calibration and calibration is None:
            raise NotApplicable("no calibration dataset configured")
        if calibration_spec is not None:
            record["calibration"] = {**calibration_spec.model_dump(), "drawn": len(calibration)}
        finetune = None
        if getattr(scheme, "needs_training", False) and source.format != "tflite":
            budget = self.loaded.finetune_for(cell.model, cell.scheme)  # the loader checked there is one
            assert budget is not None and budget.dataset is not None
            finetune = FineTuning(budget, self.dataset(budget.dataset))
        key = content_key(
            kind="tflite", source=source.digest, scheme=cell.scheme.scheme,
            options=options.model_dump(mode="json"),
            calibration=hashlib.sha256(calibration.tobytes()).hexdigest() if calibration is not None else None,
            versions=tool_versions(),
            **({"finetune": finetune.key} if finetune is not None else {}),
        )

        def produce(target: Path) -> None:
            if source.format == "tflite":
                data = scheme.from_tflite(source.path.read_bytes(), options, calibration)
            elif finetune is not None:
                data = scheme.from_keras(source.path, options, finetune, calibration, self.cache)
            else:
                data = scheme.from_saved_model(saved_model_dir(source, self.cache), options, calibration)
            target.write_bytes(data)

        started = time.perf_counter()
        path, cached = self.cache.get_or_create("tflite", key, ".tflite", produce)
        record["timings_s"]["convert"] = round(time.perf_counter() - started, 3)
        data = path.read_bytes()
        record["artifact"] = {"path": str(path), "sha256": hashlib.sha256(data).hexdigest(), "cached": cached,
                              "source": str(source.path), "source_info": source.info}
        record["size_bytes"] = len(data)
        record["gzip_bytes"] = len(gzip.compress(data, compresslevel=9, mtime=0))
        record["io_types"] = tensor_types(path)
        record["weights"] = weight_stats(path)
        if finetune is not None:  # layers the training-time techniques wrapped, and those left untouched (why)
            record["technique"] = scheme.technique(source.path, options, finetune, self.cache)

    def _outputs(self, model: Path, sha256: str, data: Dataset, batch_size: int) -> tuple[list[np.ndarray], bool]:
        """Every model output on the dataset, cached by (artifact, data, runtime version)."""
        key = content_key(kind="outputs", artifact=sha256, data=data.fingerprint, batch=batch_size,
                          litert=tool_versions()["ai-edge-litert"])

        def run(target: Path) -> None:
            outputs = predict(model, data.x, batch_size=batch_size, num_threads=os.cpu_count() or 1)
            with open(target, "wb") as handle:
                np.savez(handle, *outputs)

        path, cached = self.cache.get_or_create("outputs", key, ".npz", run)
        with np.load(path) as archive:
            return [archive[f"arr_{i}"] for i in range(len(archive.files))], cached

    def _evaluate(self, cell: Cell, state: _ModelState, record: dict[str, Any], baseline: dict | None) -> None:
        self._report(cell.id, "evaluating", None)
        task_spec = cell.model.task or self.loaded.suite.task
        assert task_spec is not None and state.eval_data is not None
        task = TASKS.get(task_spec.kind)
        task_options = self.loaded.task_options[cell.model.label]
        started = time.perf_counter()
        outputs, cached = self._outputs(Path(record["artifact"]["path"]), record["artifact"]["sha256"],
                                        state.eval_data, task_spec.batch_size)
        record["timings_s"]["evaluate"] = round(time.perf_counter() - started, 3)
        record["evaluation"] = {"dataset": state.eval_data.name, "samples": len(state.eval_data),
                                "source": state.eval_data.source, "cached": cached}
        try:
            record["metrics"].update(task.score(outputs, state.eval_data, task_options))
        except NotApplicable as exc:
            record["metrics_na"] = f"task metrics n/a: {exc}"
        if cell.scheme.label == BASELINE:
            state.baseline_outputs = outputs
        elif baseline is not None and baseline["status"] == "ok":
            reference = state.baseline_outputs
            if reference is None:  # resumed run: the baseline finished in an earlier process
                reference, _ = self._outputs(Path(baseline["artifact"]["path"]), baseline["artifact"]["sha256"],
                                             state.eval_data, task_spec.batch_size)
                state.baseline_outputs = reference
            record["metrics"].update(task.fidelity(outputs, reference, task_options))

    def _measure(self, cell: Cell, record: dict[str, Any]) -> None:
        self._report(cell.id, "timing", None)
        started = time.perf_counter()
        raw = self.device(cell.device).measure_latency(Path(record["artifact"]["path"]), self.loaded.suite.latency)
        record["timings_s"]["latency"] = round(time.perf_counter() - started, 3)
        record["latency_ms"] = latency_stats(raw)
        record["latency_samples_ms"] = raw.get("samples")
        record["memory"] = {k: raw[k] for k in ("peak_rss_mb", "rss_before_model_mb") if k in raw}
        record["memory"].update(raw.get("memory") or {})
        record["latency_setup"] = {k: raw[k] for k in ("core", "threads", "mask", "command", "attempts",
                                                       "model_pushed", "remote_calls") if k in raw}
        record["latency_setup"]["runtime"] = self._described(cell.device).get("runtime")
        for key in ("delegates", "op_profile"):
            if raw.get(key) is not None:
                record[key] = raw[key]
        self._keep_log(cell, record, raw.get("log"))

    def _keep_log(self, cell: Cell, record: dict[str, Any], text: str | None) -> None:
        """The device's raw log beside the results: logs/<model>__<scheme>__<device>.log."""
        if not text:
            return
        name = "__".join(_SAFE.sub("_", part) for part in (cell.model.label, cell.scheme.label, cell.device))
        path = self.run_dir / "logs" / f"{name}.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        record["latency_log"] = str(path.relative_to(self.run_dir))


def latency_stats(raw: dict[str, Any]) -> dict[str, Any]:
    """Latency statistics (ms) from a device result: per-run `samples` (local) or ready `stats`
    (benchmark_model logs: mean, and median/std/min/max/count as the log has them)."""
    if raw.get("samples"):
        stats: dict[str, Any] = summarize(raw["samples"])
    elif raw.get("stats"):
        stats = dict(raw["stats"])
    else:
        raise HarnessError("the device returned neither latency samples nor statistics")
    stats.update(init=raw.get("init"), first=raw.get("first"), warmup_mean=raw.get("warmup_mean"))
    return stats


class _DeviceWorker:
    """One thread per device: measures the cells handed to it, in order, one at a time."""

    def __init__(self, runner: SuiteRunner, device: str) -> None:
        self.runner, self.device = runner, device
        self.error: BaseException | None = None
        self._queue: queue.Queue[tuple[Cell, dict[str, Any], threading.Event] | None] = queue.Queue()
        self._cancelled = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"measure-{device}", daemon=True)
        self._thread.start()

    def submit(self, cell: Cell, record: dict[str, Any]) -> threading.Event:
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

    def join(self) -> None:
        self._thread.join()

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


class _SourceFailed(Exception):
    """The model's source could not be built/loaded; every cell of the model fails with it."""


def _describe(exc: BaseException) -> str:
    """A one-paragraph error: type and message, trimmed, with the innermost frame."""
    message = str(exc).strip() or type(exc).__name__
    if len(message) > 2000:
        message = message[:1000] + " … " + message[-900:]
    if isinstance(exc, _SourceFailed):
        return f"model source failed: {message}"
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

