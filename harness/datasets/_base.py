"""The in-memory dataset every loader returns, and the loader registry."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict

from harness.cache import ArtifactCache
from harness.registry import Registry
from harness.samples import FromSignature, Samples, sample_count, take


class LoaderOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class Dataset:
    """Samples as float32 `x` (N, ...), or a dict of such arrays for multi-input models (keyed by the
    model's input names), and labels `y` (None when unlabelled).

    `y` holds class indices for classification, or an object array of per-sample targets
    (transcripts, box annotations) for other tasks."""

    name: str
    x: Samples
    y: np.ndarray | None
    num_classes: int | None
    source: str
    fingerprint: str = field(default="")
    ids: tuple[str, ...] | None = None  # the file each sample came from (image folders): overlaps are told by it

    def __post_init__(self) -> None:
        if not self.fingerprint:
            if isinstance(self.x, FromSignature):
                arrays = [np.frombuffer(self.x.digest().encode(), np.uint8)]
            elif isinstance(self.x, dict):
                arrays = [item for key in sorted(self.x) for item in (np.asarray(key), self.x[key])]
            else:
                arrays = [self.x]
            object.__setattr__(self, "fingerprint", fingerprint_arrays(*arrays, self.y))

    def __len__(self) -> int:
        return sample_count(self.x)

    def head(self, limit: int | None) -> Dataset:
        """The first `limit` samples (all when None)."""
        if limit is None or limit >= len(self):
            return self
        y = None if self.y is None else self.y[:limit]
        ids = None if self.ids is None else self.ids[:limit]
        return Dataset(self.name, take(self.x, slice(0, limit)), y, self.num_classes, f"{self.source} (first {limit})",
                       ids=ids)

    def sample_index(self, count: int, seed: int) -> np.ndarray | None:
        """The rows `sample` draws (None: all of them)."""
        if count >= len(self):
            return None
        return np.sort(np.random.default_rng(seed).choice(len(self), size=count, replace=False))

    def sample(self, count: int, seed: int) -> Samples:
        """`count` samples drawn without replacement with a fixed seed (all if fewer)."""
        index = self.sample_index(count, seed)
        return self.x if index is None else take(self.x, index)


def fingerprint_arrays(*arrays: np.ndarray | None) -> str:
    """Content hash of arrays (shape, dtype and bytes)."""
    digest = hashlib.sha256()
    for array in arrays:
        if array is None:
            digest.update(b"none")
            continue
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        if array.dtype.hasobject:  # transcripts, annotations: hash their JSON form
            digest.update(json.dumps(array.tolist(), sort_keys=True, default=str).encode())
            continue
        array = np.ascontiguousarray(array)
        digest.update(array.data.cast("B"))
    return digest.hexdigest()


class DatasetLoader:
    """Loads a dataset: subclass it and register the subclass with `@DATASETS.register(kind, summary)`.

    Relative paths in its options are relative to `base_dir` (the suite's folder); a loader that
    generates its data (synthesized speech, composed scenes) keeps it in `cache` (None: the default
    cache, `$QUANTBENCH_CACHE`)."""

    Options: ClassVar[type[LoaderOptions]] = LoaderOptions
    # its options that name a file or folder (relative to the suite's folder): `bench validate` checks each exists
    files: ClassVar[tuple[str, ...]] = ()

    def load(self, name: str, options: Any, base_dir: Path, cache: ArtifactCache | None = None) -> Dataset:
        raise NotImplementedError


DATASETS: Registry[DatasetLoader] = Registry("dataset kind", "harness.datasets", base=DatasetLoader)
