"""The cross-kernel check: a cell's model on each of the host's kernel paths vs the float model.

A kernel can be wrong for one op and one quantization (LiteRT's builtin FULLY_CONNECTED with
blockwise int4 weights and a fused RELU: about 23 dB on XNNPACK, about 1 dB on the builtin kernels,
0 dB on the reference kernels), so a device whose runtime lacks the XNNPACK path ships garbage that
evaluation on XNNPACK never sees. The cell's first `SAMPLES` evaluation samples run on XNNPACK (the
deployed path: evaluation, latency, the local device), the builtin and the reference kernels; each
path's worst-output SNR vs the float cell's outputs goes to the record's `kernel_paths`, and
`kernel_gap_db` is the deployed path's SNR minus the worst other path's (SNRs above `CEILING_DB`
count as `CEILING_DB`: float rounding differences between exact-enough kernels are no gap).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from harness.fidelity import compare_outputs, json_number
from harness.record import CellRecord
from harness.samples import Samples
from harness.tflite.runtime import KERNEL_PATHS, Kernels, UnresolvedOp, predict

if TYPE_CHECKING:
    from harness.tflite.batching import Batching

SAMPLES = 32
CEILING_DB = 60.0
DEPLOYED: Kernels = "xnnpack"


def worst_snr(outputs: Sequence[np.ndarray], reference: Sequence[np.ndarray]) -> float:
    """The lowest SNR (dB) over the outputs vs the float outputs in the same order (NaN if any is NaN)."""
    values = [compare_outputs(a, b)["snr_db"] for a, b in zip(outputs, reference, strict=True)]
    return math.nan if any(math.isnan(v) for v in values) else min(values)


def path_snr(model: Path, x: Samples, reference: Sequence[np.ndarray], kernels: Kernels, batch: int,
             batching: Batching | None) -> float:
    """The model's worst-output SNR vs `reference` on one kernel path."""
    outputs = predict(model, x, batch_size=batch, batching=batching, kernels=kernels)
    return worst_snr(outputs, [r[: len(outputs[0])] for r in reference])


def kernel_gap(paths: dict[str, float], deployed: str = DEPLOYED) -> float | None:
    """The deployed path's SNR minus the worst other path's, both capped at CEILING_DB (NaN when any is
    NaN); None without the deployed path or another one."""
    others = [v for k, v in paths.items() if k != deployed]
    if deployed not in paths or not others:
        return None
    values = [paths[deployed], *others]
    if any(math.isnan(v) for v in values):
        return math.nan
    return min(paths[deployed], CEILING_DB) - min(min(others), CEILING_DB)


def cross_kernel(model: Path, x: Samples, reference: Sequence[np.ndarray], batch: int,
                 batching: Batching | None = None) -> dict[str, Any]:
    """`kernel_paths` ({path: worst-output SNR dB}, JSON-safe), `unavailable` ({path: why it could not
    run}) and `kernel_gap_db` (None: no gap to compute) of the model on `x` (already its first samples)."""
    paths: dict[str, float] = {}
    unavailable: dict[str, str] = {}
    for kernels in KERNEL_PATHS:
        try:
            paths[kernels] = path_snr(model, x, reference, kernels, batch, batching)
        except UnresolvedOp as exc:
            unavailable[kernels] = str(exc)
        except (RuntimeError, ValueError) as exc:  # LiteRT's own failure on that path: said, not hidden
            unavailable[kernels] = f"{kernels} kernels failed: {exc}"
    gap = kernel_gap(paths)
    return {"kernel_paths": {k: json_number(v) for k, v in paths.items()}, "unavailable": unavailable,
            "kernel_gap_db": None if gap is None else json_number(gap)}


def attach(record: CellRecord, check: dict[str, Any], samples: int) -> None:
    """The cross-kernel check's result in the record: `kernel_paths`, `evaluation.kernel_samples`,
    `evaluation.kernel_paths_na` (paths that could not run, why) and the metric `kernel_gap_db`."""
    record["kernel_paths"] = check["kernel_paths"]
    evaluation = record.setdefault("evaluation", {})
    evaluation["kernel_samples"] = samples
    if check["unavailable"]:
        evaluation["kernel_paths_na"] = check["unavailable"]
    if check["kernel_gap_db"] is not None:
        record.setdefault("metrics", {})["kernel_gap_db"] = check["kernel_gap_db"]


def failed(record: CellRecord, exc: BaseException) -> None:
    """The check itself failed (the cell did not): said in the record, and its `kernel_gap_db` checks fail."""
    record["kernel_paths"] = {}
    record.setdefault("evaluation", {})["kernel_check_error"] = f"{type(exc).__name__}: {exc}"
