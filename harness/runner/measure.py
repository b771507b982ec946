"""A cell's measurement on its device: latency (repeats, device state), the device's own numerics
(`latency.device_check`), the A/B re-timing of the earlier run's model, and the float pairs."""

from __future__ import annotations

import contextlib
import re
import threading
import time
from pathlib import Path
from typing import Any, cast

from harness import _interrupt
from harness._latency import (
    device_state,
    earlier_binary,
    earlier_model,
    latency_stats,
    measure_repeats,
    time_ab,
    time_vs_float,
    with_after,
)
from harness.config.schema import LatencySpec
from harness.devices import Device
from harness.errors import NotApplicable
from harness.history import EarlierRun
from harness.pipeline import Progress
from harness.plan import Cell
from harness.record import CellRecord, DeviceNumerics, LatencyAB, LatencySetup, artifact_of, benchmark_binary
from harness.runner.devices import RunDevices
from harness.runner.failures import describe
from harness.runner.inputs import SharedInputs
from harness.suite.loader import LoadedSuite
from harness.tasks import TASKS

_SAFE = re.compile(r"[^\w.+-]+")


class Measurement:
    """Times cells on their devices; a local device's measurement holds `host_lock` (never beside host work)."""

    def __init__(self, loaded: LoadedSuite, run_dir: Path, devices: RunDevices, inputs: SharedInputs,
                 earlier: EarlierRun, report: Progress, host_lock: threading.Lock) -> None:
        self.loaded, self.run_dir, self.devices, self.inputs = loaded, run_dir, devices, inputs
        self.earlier, self._report, self._host_lock = earlier, report, host_lock

    def measured(self, cell: Cell, record: CellRecord) -> None:
        """Measure a cell whose host work succeeded; a failure is recorded on the cell."""
        if record["status"] != "ok":
            return
        try:
            with contextlib.nullcontext() if self.devices.is_remote(cell.device) else self._host_lock:
                self._measure(cell, record)
        except NotApplicable as exc:
            record["status"], record["error"] = "n/a", str(exc)
        except Exception as exc:  # noqa: BLE001 - one failing cell must not stop the suite
            _interrupt.cut(exc)  # its measurement was stopped by Ctrl-C/SIGTERM: not done, not failed
            record["status"], record["error"] = "failed", describe(exc)
            self._keep_log(cell, record, getattr(exc, "log", None))

    def settings(self, cell: Cell) -> LatencySpec:
        """The suite's latency settings with the cell's task's workload (the generation task's decode
        steps per timed run) where the suite does not set it."""
        settings, task = self.loaded.suite.latency, cell.model.task or self.loaded.suite.task
        if task is None:
            return settings
        workload = TASKS.get(task.kind).latency_workload(self.loaded.task_options[cell.model.label])
        update = {k: v for k, v in workload.items() if k not in settings.model_fields_set}
        return settings.model_copy(update=update) if update else settings

    def _measure(self, cell: Cell, record: CellRecord) -> None:
        self._report(cell.id, "timing", None)
        started = time.perf_counter()
        device, model = self.devices.get(cell.device), Path(artifact_of(record)["path"])
        settings = self.settings(cell)
        if record.get("generation") is not None and not device.runs_generation:
            raise NotApplicable(f"device {cell.device!r}: generation timing (prefill + decode with a KV cache) runs "
                                "on local devices only for now; benchmark_model on a phone has no prefill/decode loop")
        state = device_state(device, settings)
        raws, sample = measure_repeats(device, model, settings)
        after = device.device_state() if state is not None else None  # devices that report their state
        if state is not None and after is not None:
            record["device_state"] = with_after(state, after, raws, settings)
        if all(raw.get("generation") for raw in raws):
            self._generation_timing(record, raws)
        raw = raws[-1]  # memory, setup, log and delegates of the last repeat
        record["latency_ms"] = latency_stats(raws)
        record["latency_samples_ms"] = sample or None
        memory: dict[str, float | int | str | None] = {k: raw[k] for k in ("peak_rss_mb", "rss_before_model_mb")
                                                       if k in raw}
        memory.update(raw.get("memory") or {})
        record["memory"] = memory
        # the device's raw result is untyped: its setup keys under LatencySetup's names
        setup = cast(LatencySetup, {k: raw[k] for k in ("core", "threads", "mask", "command", "attempts",
                                                        "model_pushed", "remote_calls") if k in raw})
        described = self.devices.described(cell.device)
        setup["runtime"] = described.get("runtime")
        if described.get("benchmark_sha256"):
            setup["benchmark_binary"] = {"path": described.get("benchmark_binary"),
                                         "sha256": described["benchmark_sha256"]}
        record["latency_setup"] = setup
        for key in ("delegates", "op_profile", "acceleration"):
            if raw.get(key) is not None:
                record[key] = raw[key]
        self._keep_log(cell, record, raw.get("log"))
        self._device_numerics(cell, record, device, model)
        self._retime_earlier(cell, record, device, model)
        self._time_vs_float(cell, record, device, model)
        record["timings_s"]["latency"] = round(time.perf_counter() - started, 3)

    def _generation_timing(self, record: CellRecord, raws: list[dict[str, Any]]) -> None:
        """ttft, prefill and decode tokens/s and peak RSS of a generative model's timed runs, as metrics."""
        from harness.tasks.generation import timing_metrics

        record["metrics"].update(timing_metrics(raws))
        generation = record.setdefault("generation", {})
        generation["timed_decode_tokens"] = raws[0]["generation"]["decode_tokens"]
        generation["timed_runs"] = sum(len(raw["generation"]["runs"]) for raw in raws)

    def _time_vs_float(self, cell: Cell, record: CellRecord, device: Device, model: Path) -> None:
        """`latency.float_pairs`: the float cell's model timed beside this one in alternating pairs."""
        if record.get("latency_vs_float"):
            self._report(cell.id, "timing beside the float model (pairs)", None)
            record["latency_vs_float"] = time_vs_float(device, record["latency_vs_float"], model, self.settings(cell))

    def _device_numerics(self, cell: Cell, record: CellRecord, device: Device, model: Path) -> None:
        """Phones (`latency.device_check: N`): N evaluation samples run on the device, its outputs
        compared with the host's (harness/devices/android/_numerics.py); a check that could not run
        is noted, and its device_* bounds fail."""
        checks = self.loaded.suite.latency.device_check
        if not checks:
            return
        from harness.devices.android._numerics import device_metrics

        task = cell.model.task or self.loaded.suite.task
        if task is None or task.dataset is None:
            raise NotApplicable("latency.device_check runs the task's evaluation samples: this task has no dataset")
        checking = time.perf_counter()
        samples = self.inputs.dataset(task.dataset).head(task.limit).x
        numerics = device.check_numerics(model, samples, checks, self.loaded.suite.latency)
        if numerics is None:  # the kind cannot run the model on the device: its bounds fail, unproduced
            return
        record["timings_s"]["device_check"] = round(time.perf_counter() - checking, 3)
        record["device_numerics"] = cast(DeviceNumerics, numerics)  # the device's result is untyped
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
        ab.update(time_ab(device, path, model, self.settings(cell), bound=suite.regression.min_paired_ratio,
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
