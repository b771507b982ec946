"""Arrays from a NumPy .npz file: one input array, or one per model input (multi-input models)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import Field

from harness.cache import ArtifactCache
from harness.datasets._base import DATASETS, Dataset, Samples
from harness.datasets._images import ImageOptions, preprocess
from harness.errors import HarnessError


class _NpzOptions(ImageOptions):
    path: str
    x_key: str = "x"
    y_key: str | None = "y"
    inputs: dict[str, str] | list[str] | None = Field(None, description=(
        "multi-input models: model input name → array key, or a list of keys that are the input names"))
    num_classes: int | None = None
    pixel_max: float = Field(255.0, gt=0, description="the raw value `range` maps to its high end")


def _images(x: np.ndarray, options: _NpzOptions, name: str) -> np.ndarray:
    """Arrays as stored (`scale: 1`) unless image options ask otherwise; non-image arrays pass through."""
    image_keys = {"image_size", "channels", "range", "scale", "mean", "std", "layout"}
    if not image_keys & options.model_fields_set:
        return x
    if x.ndim == 3 and options.channels is not None:
        x = x[..., np.newaxis]
    return preprocess(x, options, options.pixel_max, name, default_range=None)


def _array(archive: np.lib.npyio.NpzFile, key: str, name: str, path: Path) -> np.ndarray:
    if key not in archive:
        raise HarnessError(f"dataset {name!r}: {path} has no array {key!r} (has {list(archive)})")
    return archive[key]


def _samples(archive: np.lib.npyio.NpzFile, options: _NpzOptions, name: str, path: Path) -> Samples:
    """x_key's array, or {input name: array} from `inputs:`."""
    if options.inputs is None:
        return _images(_array(archive, options.x_key, name, path).astype(np.float32), options, name)
    keys = options.inputs if isinstance(options.inputs, dict) else {key: key for key in options.inputs}
    return {input_name: _images(_array(archive, key, name, path).astype(np.float32), options, name)
            for input_name, key in keys.items()}


def _labels(archive: np.lib.npyio.NpzFile, options: _NpzOptions, name: str, path: Path) -> np.ndarray | None:
    """y_key's array; None when the default key `y` is absent (unlabelled), an error when a y_key given is."""
    if not options.y_key or (options.y_key not in archive and "y_key" not in options.model_fields_set):
        return None
    return _array(archive, options.y_key, name, path).astype(np.int64).reshape(-1)


@DATASETS.register("npz", "arrays from an .npz file (x_key, or one array per model input; optional y_key)")
class Npz:
    Options = _NpzOptions

    def load(self, name: str, options: _NpzOptions, base_dir: Path, cache: ArtifactCache | None = None) -> Dataset:
        path = base_dir / options.path
        if not path.exists():
            raise HarnessError(f"dataset {name!r}: {path} not found")
        with np.load(path) as archive:
            x = _samples(archive, options, name, path)
            y = _labels(archive, options, name, path)
        num_classes = options.num_classes or (int(y.max()) + 1 if y is not None and len(y) else None)
        return Dataset(name, x, y, num_classes, str(path))
