"""A cell's host work: the model's source, the conversion (and `recover:`), the evaluation on the
host with LiteRT, and the numerics against the float model's outputs."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np

from harness import _interrupt
from harness._latency import float_reference
from harness.cache import ArtifactCache, content_key
from harness.claims import check_claims
from harness.config.schema import CalibrationSpec, ModelSpec, TaskSpec
from harness.datasets import Dataset
from harness.datasets.overlap import overlap_note
from harness.errors import NotApplicable
from harness.executors import local_node
from harness.fidelity import aligned, describe_outputs, json_number, output_fidelity
from harness.models.source import SourceModel, resolve_source, saved_model_dir
from harness.pipeline import Progress
from harness.plan import Cell, cell_key
from harness.record import Artifact, CalibrationInfo, CellRecord, EvaluationInfo, GenerationRecord, artifact_of
from harness.runner.failures import SourceFailed, describe
from harness.runner.inputs import SharedInputs
from harness.samples import Samples, sample_count, samples_digest
from harness.schemes import BASELINE, SCHEMES
from harness.schemes._intent import quantization_of
from harness.schemes.training import FineTuning, TrainingScheme
from harness.suite.loader import LoadedSuite
from harness.tasks import TASKS
from harness.tflite.audit import audit
from harness.tflite.batching import PROBE_VERSION, Batching, batch_for, model_batching, per_sample
from harness.tflite.runtime import kernels_used, model_outputs, output_info, predict, tensor_types
from harness.tflite.weights import weight_stats
from harness.versions import tool_versions


@dataclass
class ModelState:
    """What the cells of one model share: its source, evaluation data and float outputs."""

    source: SourceModel | None = None
    error: str | None = None
    not_applicable: bool = False  # the source cannot run here at all (an op no resolver has): cells are n/a
    eval_data: Dataset | None = None
    baseline_outputs: list[np.ndarray] | None = None


def new_record(loaded: LoadedSuite, cell: Cell) -> CellRecord:
    """A cell's record before any work: status ok, nothing measured."""
    return cast(CellRecord, {
        "model": cell.model.label, "scheme": cell.scheme.label, "scheme_kind": cell.scheme.scheme,
        "scheme_options": cell.scheme.options, "device": cell.device, "status": "ok", "error": None,
        "size_bytes": None, "gzip_bytes": None, "weights": None, "metrics": {}, "metrics_na": None,
        "latency_ms": None, "latency_samples_ms": None, "memory": None, "verdicts": [],
        "artifact": None, "timings_s": {}, "cell_key": cell_key(loaded, cell), "executed_on": local_node(),
    })


class HostWork:
    """Source, conversion and evaluation of cells; `report` says which stage a cell is in."""

    def __init__(self, loaded: LoadedSuite, cache: ArtifactCache, inputs: SharedInputs, report: Progress) -> None:
        self.loaded, self.cache, self.inputs, self._report = loaded, cache, inputs, report
        self._overlaps: dict[tuple[CalibrationSpec, str, int], str | None] = {}  # calibration vs evaluation

    def prepare_model(self, spec: ModelSpec) -> ModelState:
        state = ModelState()
        try:
            train_data = self.inputs.dataset(spec.train.dataset) if spec.train else None
            task = spec.task or self.loaded.suite.task
            assert task is not None  # the loader checked this
            prefill = getattr(TASKS.get(task.kind), "prefill", None)  # a generative source's prompt length
            state.source = resolve_source(
                spec, self.loaded.builder_options.get(spec.label), self.loaded.base_dir, self.cache, train_data,
                prefill(self.loaded.task_options[spec.label]) if prefill is not None else None)
            if task.dataset is not None:  # the loader checked every task but `generation` has one
                state.eval_data = self.inputs.dataset(task.dataset).head(task.limit)
        except Exception as exc:  # noqa: BLE001 - recorded on every cell of the model
            _interrupt.cut(exc)
            state.error, state.not_applicable = describe(exc), isinstance(exc, NotApplicable)
        return state

    def run(self, cell: Cell, state: ModelState, baseline: CellRecord | None) -> CellRecord:
        """Convert and evaluate one cell; `baseline` is its float cell after host work (status, artifact)."""
        record = new_record(self.loaded, cell)
        try:
            if state.error:
                raise NotApplicable(state.error) if state.not_applicable else SourceFailed(state.error)
            self._produce(cell, state, record, baseline)
            self._evaluate(cell, state, record, baseline)
            if cell.scheme.label != BASELINE and (paired := float_reference(baseline, self.loaded.suite.latency)):
                record["latency_vs_float"] = paired
        except NotApplicable as exc:
            record["status"], record["error"] = "n/a", str(exc)
        except Exception as exc:  # noqa: BLE001 - one failing cell must not stop the suite
            _interrupt.cut(exc)
            record["status"], record["error"] = "failed", describe(exc)
        return record

    def _produce(self, cell: Cell, state: ModelState, record: CellRecord, baseline: CellRecord | None = None) -> None:
        self._report(cell.id, "converting", None)
        source = state.source
        assert source is not None
        scheme = SCHEMES.get(cell.scheme.scheme)
        if source.format == "torch" and isinstance(scheme, TrainingScheme) and scheme.needs_training:
            raise NotApplicable("training-time techniques (TFMOT) need a Keras model; a torch model has none")
        options = self.loaded.scheme_options.get(cell.scheme.label) or scheme.Options()
        calibrated = scheme.calibrates(options)
        calibration_spec = self.loaded.calibration_for(cell.model, cell.scheme) if calibrated else None
        calibration = self.inputs.calibration(calibration_spec) if calibration_spec is not None else None
        if calibrated and calibration is None:
            raise NotApplicable("no calibration dataset configured")
        if calibration_spec is not None and calibration is not None:
            record["calibration"] = cast(CalibrationInfo, {**calibration_spec.model_dump(),
                                                           "drawn": sample_count(calibration)})
            self._note_overlap(calibration_spec, state, record)
        finetune = None
        trainer = scheme if isinstance(scheme, TrainingScheme) and scheme.needs_training else None
        if trainer is not None and not source.float_tflite:
            budget = self.loaded.finetune_for(cell.model, cell.scheme)  # the loader checked there is one
            assert budget is not None and budget.dataset is not None
            finetune = FineTuning(budget, self.inputs.dataset(budget.dataset))
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
            if source.program is not None and scheme.quantizes_torch:  # PT2E: quantized in torch (schemes/pt2e.py)
                data = scheme.from_torch(source.program, source.path, options, calibration)
            elif source.float_tflite:
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
                              "source": str(source.program or source.path), "source_info": source.info}
        if self.cache.problems_for(path):
            artifact["rebuilt"] = self.cache.problems_for(path)
        record["artifact"] = artifact
        record["size_bytes"] = len(data)
        record["gzip_bytes"] = gzip_size(data, artifact["sha256"], self.cache)
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

            record["diagnosis"] = cell_diagnosis(path, baseline, calibration,
                                                 "tflite" if source.float_tflite else source.format, cell.scheme.scheme,
                                                 lambda: saved_model_dir(source, self.cache))

    def _float_model(self, source: Any) -> bytes:
        """The float .tflite of a source: the file itself, or the float32 scheme's conversion (cached,
        the float32 cell's artifact when it ran)."""
        if source.float_tflite:
            return source.path.read_bytes()
        float32 = SCHEMES.get(BASELINE)
        key = content_key(kind="tflite", source=source.digest, scheme=BASELINE,
                          options=float32.Options().model_dump(mode="json"), calibration=None,
                          versions=tool_versions())

        def produce(target: Path) -> None:
            target.write_bytes(float32.from_saved_model(saved_model_dir(source, self.cache), float32.Options(), None))

        path, _ = self.cache.get_or_create("tflite", key, ".tflite", produce)
        return path.read_bytes()

    def _note_overlap(self, spec: CalibrationSpec, state: ModelState, record: CellRecord) -> None:
        """A note on the record when the calibration samples are evaluation samples too (checked once per pair)."""
        assert state.eval_data is not None
        pair = (spec, state.eval_data.name, len(state.eval_data))
        if pair not in self._overlaps:
            self._overlaps[pair] = overlap_note(self.inputs.dataset(spec.dataset), spec.samples, spec.seed,
                                                state.eval_data)
        note = self._overlaps[pair]
        if note is not None:
            record.setdefault("notes", []).append(note)

    def _recovered(self, cell: Cell, state: ModelState, options: Any, calibration: Samples | None, key: str,
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

    def _evaluate(self, cell: Cell, state: ModelState, record: CellRecord, baseline: CellRecord | None,
                  cross_kernel: bool = True) -> None:
        self._report(cell.id, "evaluating", None)
        task_spec = cell.model.task or self.loaded.suite.task
        assert task_spec is not None
        task = TASKS.get(task_spec.kind)
        task_options = self.loaded.task_options[cell.model.label]
        if task.runs_model:
            self._evaluate_generation(cell, state, record, baseline, task, task_options)
            return
        assert state.eval_data is not None
        started = time.perf_counter()
        outputs, ran = self._outputs(Path(artifact_of(record)["path"]), artifact_of(record)["sha256"],
                                     state.eval_data, task_spec)
        record["timings_s"]["evaluate"] = round(time.perf_counter() - started, 3)
        record["evaluation"] = cast(EvaluationInfo, {"dataset": state.eval_data.name, "samples": len(state.eval_data),
                                                     "source": state.eval_data.source, **ran,
                                                     "kernels": kernels_used(Path(artifact_of(record)["path"]))})
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
        if cross_kernel and state.source is not None and state.source.format != "tflite":
            self._conversion(cell, state, record, outputs, [info.name for info in infos], baseline)
        record["metrics"] = {name: None if value is None else json_number(value)
                             for name, value in record["metrics"].items()}

    def _generated(self, record: CellRecord, task: Any, options: Any) -> tuple[np.ndarray, dict[str, Any]]:
        """A generative cell's teacher-forced logits (harness.tasks.generation), cached by (artifact, task
        options, runtime version), with what was run."""
        model, sha256 = Path(artifact_of(record)["path"]), artifact_of(record)["sha256"]
        key = content_key(kind="generation", artifact=sha256, options=options.model_dump(mode="json"),
                          litert=tool_versions()["ai-edge-litert"])

        def run(target: Path) -> None:
            logits, info = task.generate(model, options)
            with open(target, "wb") as handle:
                np.savez(handle, logits=logits, info=np.array(json.dumps(info)))

        path, cached = self.cache.get_or_create("outputs", key, ".npz", run)
        with np.load(path) as archive:
            return archive["logits"], {**json.loads(str(archive["info"])), "cached": cached}

    def _evaluate_generation(self, cell: Cell, state: ModelState, record: CellRecord, baseline: CellRecord | None,
                             task: Any, options: Any) -> None:
        """A task that runs the model itself (`runs_model`): its outputs, its score, and its fidelity vs the
        float32 cell's outputs on the same tokens (the generation task's logits)."""
        from harness.tasks.generation import mean_snr_db

        started = time.perf_counter()
        logits, info = self._generated(record, task, options)
        record["timings_s"]["evaluate"] = round(time.perf_counter() - started, 3)
        record["evaluation"] = {"cached": info.pop("cached"), "kernels": kernels_used(Path(artifact_of(record)["path"]))}
        record["generation"] = cast(GenerationRecord, info)  # the task's GenerationRecord, read back from JSON
        try:
            record["metrics"].update(task.score([logits], None, options))
        except NotApplicable as exc:
            record["metrics_na"] = f"task metrics n/a: {exc}"
        if cell.scheme.label != BASELINE and baseline is not None and baseline["status"] == "ok":
            reference, _ = self._generated(baseline, task, options)
            record["metrics"].update(task.fidelity([logits], [reference], options))
            record["generation"]["logit_snr"] = "worst position"
            record["generation"]["logit_snr_db_mean"] = mean_snr_db(logits, reference)
        record["metrics"] = {name: None if value is None else json_number(value)
                             for name, value in record["metrics"].items()}

    def _conversion(self, cell: Cell, state: ModelState, record: CellRecord, outputs: list[np.ndarray],
                    names: list[str], baseline: CellRecord | None) -> None:
        """`conversion`: the float .tflite (and this cell's) vs the framework model on the evaluation inputs
        (harness/models/conversion.py); a comparison that cannot be made is recorded, the cell stands."""
        from harness.models.conversion import compared, conversion_record

        source, data = state.source, state.eval_data
        float_record = record if cell.scheme.label == BASELINE else baseline
        if float_record is None or float_record["status"] != "ok" or state.baseline_outputs is None:
            return
        assert source is not None and data is not None
        float_path = Path(artifact_of(float_record)["path"])
        try:
            reference = self._framework_outputs(source, data, float_path, artifact_of(float_record)["sha256"])
            float_numbers = compared(state.baseline_outputs, [i.name for i in model_outputs(float_path)], reference)
            cell_numbers = None if float_record is record else compared(outputs, names, reference)
            record["conversion"] = conversion_record(source, len(data), float_numbers, cell_numbers)
        except Exception as exc:  # noqa: BLE001 - the cell's own numbers stand; the comparison's failure is said
            _interrupt.cut(exc)
            record["conversion"] = {"framework": source.format, "error": describe(exc)}

    def _framework_outputs(self, source: SourceModel, data: Dataset, float_path: Path,
                           float_sha256: str) -> dict[str, np.ndarray]:
        """The framework model's outputs on the evaluation data by output name, cached by (source, float
        .tflite, data, versions)."""
        from harness.models.conversion import framework_outputs

        key = content_key(kind="framework_outputs", source=source.digest, float_model=float_sha256,
                          data=data.fingerprint, versions=tool_versions())

        def run(target: Path) -> None:
            found = framework_outputs(source, data.x, float_path, lambda: saved_model_dir(source, self.cache))
            with open(target, "wb") as handle:
                np.savez(handle, *found.values(), names=np.array(list(found), dtype=str))

        path, _ = self.cache.get_or_create("framework_outputs", key, ".npz", run)
        with np.load(path) as archive:
            names = [str(n) for n in archive["names"]]
            return {name: archive[f"arr_{i}"] for i, name in enumerate(names)}

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


GZIP_LEVEL = 9  # the compressed size a model adds to a download (APK, app bundle, model delivery)


def gzip_size(data: bytes, sha256: str, cache: ArtifactCache) -> int:
    """`data`'s size gzipped at GZIP_LEVEL, kept in the artifact cache under its sha256 and the level (sealed
    as every entry), so a warm re-run does not compress every model again (level 9 is slow on large models)."""

    def produce(target: Path) -> None:
        target.write_text(json.dumps({"gzip_bytes": len(gzip.compress(data, compresslevel=GZIP_LEVEL, mtime=0))}))

    path, _ = cache.get_or_create("gzip", content_key(sha256=sha256, level=GZIP_LEVEL), ".json", produce)
    return int(json.loads(path.read_text())["gzip_bytes"])
