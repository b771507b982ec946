"""Whether a cell's calibration samples are also among its evaluation samples.

Told by the files the samples came from when both datasets know them (image folders: the same
photo calibrates and scores, whatever the preprocessing), else by the samples' bytes (the same
arrays: one dataset feeding both, or two declarations of the same data).
"""

from __future__ import annotations

import hashlib

import numpy as np

from harness.datasets._base import Dataset
from harness.samples import FromSignature, Samples, sample_count, take


def row_digests(x: Samples) -> list[bytes]:
    """One digest per sample (of every input's row, in key order; a generated sample: its recipe and row)."""
    if isinstance(x, FromSignature):
        recipe = (x.count, x.seed, x.default_range, x.ranges)
        rows = x.rows if x.rows is not None else range(x.count)
        return [hashlib.sha256(repr((recipe, row)).encode()).digest() for row in rows]
    arrays = [x[key] for key in sorted(x)] if isinstance(x, dict) else [x]
    return [hashlib.sha256(b"".join(np.ascontiguousarray(a[i]).tobytes() for a in arrays)).digest()
            for i in range(sample_count(x))]


def calibration_rows(data: Dataset, samples: int, seed: int) -> tuple[Samples, tuple[str, ...] | None]:
    """The samples a calibration spec draws from `data` (as `Dataset.sample`), and their files if known."""
    index = data.sample_index(samples, seed)
    if index is None:
        return data.x, data.ids
    return take(data.x, index), None if data.ids is None else tuple(data.ids[i] for i in index)


def overlap_note(calibration: Dataset, samples: int, seed: int, evaluation: Dataset) -> str | None:
    """A warning when calibration samples drawn from `calibration` are evaluation samples too, else None."""
    x, ids = calibration_rows(calibration, samples, seed)
    if ids is not None and evaluation.ids is not None:
        files = sorted(set(ids) & set(evaluation.ids))
        count, how = len(files), f"same files, e.g. {files[0]}" if files else ""
    else:
        scored = set(row_digests(evaluation.x))
        count, how = sum(d in scored for d in row_digests(x)), "same arrays"
    if not count:
        return None
    return (f"calibration overlaps evaluation: {count} of the {sample_count(x)} calibration samples "
            f"(dataset {calibration.name!r}) are among the {len(evaluation)} evaluation samples (dataset "
            f"{evaluation.name!r}; {how}), so the scores are optimistic; split the data "
            "(image_folder: `split:` or `files:`)")
