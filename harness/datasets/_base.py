"""The in-memory dataset every loader returns, and the loader registry."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict

from harness.cache import ArtifactCache
from harness.errors import HarnessError
from harness.registry import Registry


@dataclass(frozen=True)
class FromSignature:
    """Seeded uniform samples for every input of whichever model runs them, shaped by its input
    signature (`generate`); each input's values come from its declared range, else the default one.
    Input `name`'s values depend only on the seed, its name and its shape, so a float model and its
    optimized versions get the same inputs."""

    count: int
    seed: int
    default_range: tuple[float, float]
    ranges: tuple[tuple[str, float, float], ...] = ()
    rows: tuple[int, ...] | None = None  # a selection (head, calibration sample) of the `count` rows

    def __len__(self) -> int:
        return self.count if self.rows is None else len(self.rows)

    def select(self, index: slice | np.ndarray) -> FromSignature:
        rows = np.arange(self.count)[list(self.rows) if self.rows is not None else slice(None)][index]
        return FromSignature(self.count, self.seed, self.default_range, self.ranges, tuple(int(r) for r in rows))

    def generate(self, inputs: list[tuple[str, tuple[int, ...]]]) -> dict[str, np.ndarray]:
        """{input name: (N, *shape) float32} for the model's (name, per-sample shape) inputs."""
        ranges = {name: (low, high) for name, low, high in self.ranges}
        unknown = sorted(set(ranges) - {name for name, _ in inputs})
        if unknown:
            raise HarnessError(f"synthetic inputs {unknown} are not inputs of the model "
                               f"(it takes {[name for name, _ in inputs]})")
        arrays = {}
        for name, shape in inputs:
            rng = np.random.default_rng([self.seed, int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "big")])
            low, high = ranges.get(name, self.default_range)
            array = rng.uniform(low, high, size=(self.count, *shape)).astype(np.float32)
            arrays[name] = array if self.rows is None else array[list(self.rows)]
        return arrays

    def digest(self) -> str:
        return hashlib.sha256(repr(self).encode()).hexdigest()


# A dataset's samples: one array (N, ...) for a single-input model, or one per model input, keyed by
# the input's name (signature key, else tensor name), every array with the same N; or FromSignature,
# generated for each model from its input signature.
Samples = np.ndarray | dict[str, np.ndarray] | FromSignature
Arrays = np.ndarray | dict[str, np.ndarray]  # Samples as arrays (a FromSignature generated for its model)


def sample_count(x: Samples) -> int:
    """N: the samples in an array or in every array of a dict."""
    if isinstance(x, FromSignature):
        return len(x)
    if isinstance(x, dict):
        counts = {len(a) for a in x.values()}
        if len(counts) != 1:
            raise HarnessError(f"the inputs have different sample counts: {({k: len(a) for k, a in x.items()})}")
        return counts.pop()
    return len(x)


def take(x: Samples, index: slice | np.ndarray) -> Samples:
    """The same samples of every input."""
    if isinstance(x, FromSignature):
        return x.select(index)
    return {k: a[index] for k, a in x.items()} if isinstance(x, dict) else x[index]


def samples_digest(x: Samples) -> str:
    """sha256 of the samples' bytes (of every input's, in key order, with its name, for a dict)."""
    if isinstance(x, FromSignature):
        return x.digest()
    if not isinstance(x, dict):
        return hashlib.sha256(np.ascontiguousarray(x).tobytes()).hexdigest()
    digest = hashlib.sha256()
    for key in sorted(x):
        digest.update(key.encode() + b"\0" + np.ascontiguousarray(x[key]).tobytes())
    return digest.hexdigest()


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


class DatasetLoader(Protocol):
    """Loads a dataset. Relative paths in its options are relative to `base_dir` (the suite's
    folder); a loader that generates its data (synthesized speech, composed scenes) keeps it in
    `cache` (None: the default cache, `$QUANTBENCH_CACHE`)."""

    @property
    def Options(self) -> type[LoaderOptions]: ...

    def load(self, name: str, options: Any, base_dir: Path, cache: ArtifactCache | None = None) -> Dataset: ...


DATASETS: Registry[DatasetLoader] = Registry("dataset kind", "harness.datasets")
