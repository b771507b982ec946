"""Fashion-MNIST and MNIST in IDX format (the files the Debian package and the original sites ship).

Pixels 0–1 by default; the image options of `harness.datasets._images` (`range`, `scale`,
`mean`/`std`, `channels`, `image_size`, `layout`) give what a model expects.
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Literal

import numpy as np

from harness.cache import ArtifactCache
from harness.datasets._base import DATASETS, Dataset, DatasetLoader
from harness.datasets._images import ImageOptions, preprocess
from harness.errors import HarnessError

_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def read_idx(path: Path) -> np.ndarray:
    """Read one IDX file (optionally gzip-compressed) into an array."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        data = handle.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise HarnessError(f"{path}: not an unsigned-byte IDX file")
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    offset = 4 + 4 * ndim
    if len(data) - offset != int(np.prod(dims)):
        raise HarnessError(f"{path}: truncated IDX file (header says {dims})")
    return np.frombuffer(data, dtype=np.uint8, offset=offset).reshape(dims)


def _find(directory: Path, stem: str) -> Path | None:
    for candidate in (directory / f"{stem}.gz", directory / stem):
        if candidate.exists():
            return candidate
    return None


class _IdxOptions(ImageOptions):
    split: Literal["train", "test"] = "test"
    dir: str | None = None


class _IdxLoader(DatasetLoader):
    Options = _IdxOptions
    files = ("dir",)
    default_dir: Path
    how_to_get: str

    def load(self, name: str, options: _IdxOptions, base_dir: Path, cache: ArtifactCache | None = None) -> Dataset:
        directory = base_dir / options.dir if options.dir else self.default_dir
        image_stem, label_stem = _FILES[options.split]
        images, labels = _find(directory, image_stem), _find(directory, label_stem)
        if images is None or labels is None:
            raise HarnessError(
                f"dataset {name!r}: {image_stem}[.gz] / {label_stem}[.gz] not found in {directory}; "
                f"{self.how_to_get}"
            )
        x = preprocess(read_idx(images)[..., np.newaxis], options, 255.0, name)
        y = read_idx(labels).astype(np.int64)
        return Dataset(name, x, y, 10, f"{directory} ({options.split})")


@DATASETS.register("fashion_mnist", "Fashion-MNIST IDX files (default: Debian package dataset-fashion-mnist)")
class FashionMnist(_IdxLoader):
    default_dir = Path("/usr/share/datasets/fashion-mnist")
    how_to_get = "install it with `apt-get install dataset-fashion-mnist` or set `dir:` to a folder with the IDX files"


@DATASETS.register("mnist", "MNIST IDX files in `dir` (train/t10k images and labels, .gz or not)")
class Mnist(_IdxLoader):
    default_dir = Path.home() / ".cache" / "quantbench" / "datasets" / "mnist"
    how_to_get = "download the four IDX files of MNIST into that folder or set `dir:`"
