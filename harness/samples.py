"""A model's input samples, whatever their source: one array, one per input name, or generated from
the model's own input signature (FromSignature). Below every layer that feeds a model (the LiteRT
runtime, schemes' calibration, tasks, datasets, which produce them)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from harness.errors import HarnessError


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
