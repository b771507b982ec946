"""Arrays from a NumPy .npz file: one input array, or one per model input (multi-input models)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import Field

from harness.cache import ArtifactCache
from harness.datasets._base import DATASETS, Dataset, DatasetLoader
from harness.datasets._images import ImageOptions, preprocess
from harness.errors import HarnessError
from harness.samples import Samples, sample_count


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


def _labels(archive: np.lib.npyio.NpzFile, options: _NpzOptions, name: str, path: Path, count: int) -> np.ndarray | None:
    """y_key's array as class indices (None when the default key `y` is absent: unlabelled; a y_key
    given but absent is an error naming the keys there): integer-valued (floats only when
    whole), ≥ 0, below `num_classes` when given, one per sample; anything else is an error naming the key."""
    if not options.y_key or (options.y_key not in archive and "y_key" not in options.model_fields_set):
        return None
    raw = _array(archive, options.y_key, name, path)
    where = f"dataset {name!r}: {path} array {options.y_key!r}"
    if raw.dtype.kind not in "biuf":
        raise HarnessError(f"{where}: labels must be integer class indices, not {raw.dtype} values")
    raw = raw.reshape(-1)
    if raw.dtype.kind == "f":
        bad = ~np.isfinite(raw) | (raw != np.round(raw))
        if bad.any():
            first = int(np.argmax(bad))
            raise HarnessError(f"{where}: labels must be integer-valued; {int(bad.sum())} are not "
                               f"(first: index {first}, value {float(raw[first])!r}); `y_key: null` if they are not labels")
    y = raw.astype(np.int64)
    _check_label_range(y, options.num_classes, where, count)
    return y


def _check_label_range(y: np.ndarray, num_classes: int | None, where: str, count: int) -> None:
    if len(y) != count:
        raise HarnessError(f"{where}: {len(y)} labels for {count} samples")
    if len(y) and y.min() < 0:
        raise HarnessError(f"{where}: labels are class indices, ≥ 0 (found {int(y.min())})")
    if num_classes is not None and len(y) and y.max() >= num_classes:
        raise HarnessError(f"{where}: label {int(y.max())} is not below num_classes {num_classes}")


@DATASETS.register("npz", "arrays from an .npz file (x_key, or one array per model input; optional y_key)")
class Npz(DatasetLoader):
    Options = _NpzOptions
    files = ("path",)

    def load(self, name: str, options: _NpzOptions, base_dir: Path, cache: ArtifactCache | None = None) -> Dataset:
        path = base_dir / options.path
        if not path.exists():
            raise HarnessError(f"dataset {name!r}: {path} not found")
        with np.load(path) as archive:
            x = _samples(archive, options, name, path)
            y = _labels(archive, options, name, path, sample_count(x))
        num_classes = options.num_classes or (int(y.max()) + 1 if y is not None and len(y) else None)
        return Dataset(name, x, y, num_classes, str(path))
