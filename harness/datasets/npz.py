"""Arrays from a NumPy .npz file: one input array, or one per model input (multi-input models)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import Field

from harness.cache import ArtifactCache
from harness.datasets._base import DATASETS, Dataset, LoaderOptions, Samples
from harness.errors import HarnessError


class _NpzOptions(LoaderOptions):
    path: str
    x_key: str = "x"
    y_key: str | None = "y"
    inputs: dict[str, str] | list[str] | None = Field(None, description=(
        "multi-input models: model input name → array key, or a list of keys that are the input names"))
    num_classes: int | None = None
    scale: float = 1.0


def _array(archive: np.lib.npyio.NpzFile, key: str, name: str, path: Path) -> np.ndarray:
    if key not in archive:
        raise HarnessError(f"dataset {name!r}: {path} has no array {key!r} (has {list(archive)})")
    return archive[key]


def _samples(archive: np.lib.npyio.NpzFile, options: _NpzOptions, name: str, path: Path) -> Samples:
    """x_key's array, or {input name: array} from `inputs:`."""
    if options.inputs is None:
        return _array(archive, options.x_key, name, path).astype(np.float32) * options.scale
    keys = options.inputs if isinstance(options.inputs, dict) else {key: key for key in options.inputs}
    return {input_name: _array(archive, key, name, path).astype(np.float32) * options.scale
            for input_name, key in keys.items()}


@DATASETS.register("npz", "arrays from an .npz file (x_key, or one array per model input; optional y_key)")
class Npz:
    Options = _NpzOptions

    def load(self, name: str, options: _NpzOptions, base_dir: Path, cache: ArtifactCache | None = None) -> Dataset:
        path = base_dir / options.path
        if not path.exists():
            raise HarnessError(f"dataset {name!r}: {path} not found")
        with np.load(path) as archive:
            x = _samples(archive, options, name, path)
            y = None
            if options.y_key and options.y_key in archive:
                y = archive[options.y_key].astype(np.int64).reshape(-1)
        num_classes = options.num_classes or (int(y.max()) + 1 if y is not None and len(y) else None)
        return Dataset(name, x, y, num_classes, str(path))
