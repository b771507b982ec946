"""Arrays from a NumPy .npz file."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from harness.cache import ArtifactCache
from harness.datasets._base import DATASETS, Dataset, LoaderOptions
from harness.errors import HarnessError


class _NpzOptions(LoaderOptions):
    path: str
    x_key: str = "x"
    y_key: str | None = "y"
    num_classes: int | None = None
    scale: float = 1.0


@DATASETS.register("npz", "arrays from an .npz file (x_key, optional y_key)")
class Npz:
    Options = _NpzOptions

    def load(self, name: str, options: _NpzOptions, base_dir: Path, cache: ArtifactCache | None = None) -> Dataset:
        path = base_dir / options.path
        if not path.exists():
            raise HarnessError(f"dataset {name!r}: {path} not found")
        with np.load(path) as archive:
            if options.x_key not in archive:
                raise HarnessError(f"dataset {name!r}: {path} has no array {options.x_key!r} (has {list(archive)})")
            x = archive[options.x_key].astype(np.float32) * options.scale
            y = None
            if options.y_key and options.y_key in archive:
                y = archive[options.y_key].astype(np.int64).reshape(-1)
        num_classes = options.num_classes or (int(y.max()) + 1 if y is not None and len(y) else None)
        return Dataset(name, x, y, num_classes, str(path))
