"""The cells of a suite, in run order, and the key that says when a recorded cell is still valid."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.cache import content_key, file_digest
from harness.config.schema import ModelSpec, SchemeSpec
from harness.devices._base import find_profile
from harness.models.paths import resolve_model_path
from harness.record import cell_id
from harness.schemes import BASELINE
from harness.suite.loader import LoadedSuite


@dataclass(frozen=True)
class Cell:
    model: ModelSpec
    scheme: SchemeSpec
    device: str

    @property
    def id(self) -> str:
        return cell_id(self.model.label, self.scheme.label, self.device)


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


def cell_key(loaded: LoadedSuite, cell: Cell) -> str:
    """A hash of everything in the suite that decides a cell's result: the model entry (and its
    file's bytes), the scheme entry, task, calibration, fine-tuning, the datasets they name,
    the latency settings and the device profile. Thresholds are not part of it: checks are
    re-applied to recorded cells, so a changed bound never needs a re-run."""
    return content_key(kind="cell", version=1, model=_model_part(loaded, cell.model), scheme=_scheme_part(loaded, cell),
                       datasets=_datasets_part(loaded, cell), latency=loaded.suite.latency.model_dump(mode="json"),
                       device=cell.device, profile=_profile_part(loaded, cell.device))


def _dump(value: Any) -> Any:
    return value.model_dump(mode="json") if value is not None else None


def _model_part(loaded: LoadedSuite, model: ModelSpec) -> dict[str, Any]:
    task = model.task or loaded.suite.task
    part = {"spec": _dump(model), "builder": _dump(loaded.builder_options.get(model.label)), "task": _dump(task),
            "task_options": _dump(loaded.task_options.get(model.label))}
    if model.path is not None:
        path = resolve_model_path(model.path, loaded.base_dir)
        part["file"] = file_digest(path) if path.exists() else None
    return part


def _scheme_part(loaded: LoadedSuite, cell: Cell) -> dict[str, Any]:
    return {"spec": _dump(cell.scheme), "options": _dump(loaded.scheme_options.get(cell.scheme.label)),
            "calibration": _dump(loaded.calibration_for(cell.model, cell.scheme)),
            "finetune": _dump(loaded.finetune_for(cell.model, cell.scheme))}


def _datasets_part(loaded: LoadedSuite, cell: Cell) -> dict[str, Any]:
    model, suite = cell.model, loaded.suite
    task, calibration = model.task or suite.task, loaded.calibration_for(model, cell.scheme)
    finetune = loaded.finetune_for(model, cell.scheme)
    names = {n for n in (task.dataset if task else None, calibration.dataset if calibration else None,
                         model.train.dataset if model.train else None, finetune.dataset if finetune else None) if n}
    return {name: _dump(suite.datasets[name]) for name in sorted(names) if name in suite.datasets}


def _profile_part(loaded: LoadedSuite, device: str) -> str | None:
    path: Path | None = find_profile(device, loaded.base_dir)
    return file_digest(path) if path is not None else None
