"""Whether a model's batch dimension can change, inferred from the model itself.

LiteRT lets any input be resized, but a model that reshapes with a fixed batch of 1 (MediaPipe's iris
landmark, palm and face detectors) then folds N samples into one row — outputs like [1, 17253] for 81
samples — and every number computed from them is silently wrong. `probe` decides from the model:

- its signature: `shape_signature` -1 in dim 0 of every input declares a dynamic batch (noted in the
  reason; a declared batch can still fold, so the probe decides);
- a probe: two distinct samples run one at a time, then as one batch of 2. The model batches when every
  output of the batch leads with 2 and matches the two singles' per sample (to float rounding, or one
  quantization step).

`predict` (harness.tflite.runtime) runs a model that does not batch one sample at a time; a batch size the
suite asks for (`batch_size:` in the task) that the model cannot take is an error (`batch_for`). The runner
caches the probe per artifact (content hash, `PROBE_VERSION`, LiteRT version).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness.errors import HarnessError
from harness.samples import Samples
from harness.tflite.runtime import invoke_batch, load_interpreter, prepared_inputs, resize_inputs, tensor_names

PROBE_VERSION = 1  # in the cache key of probe results: bump when the probe's rules change

_RELATIVE_TOLERANCE = 1e-3  # of the output's largest magnitude: kernels may round a batch differently


@dataclass(frozen=True)
class Batching:
    """Whether resizing a model's batch dimension keeps its samples apart, and how that was decided."""

    batches: bool
    reason: str

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Batching:
        data = json.loads(text)
        return cls(bool(data["batches"]), str(data["reason"]))


def declared(interpreter: Any) -> str:
    """What the inputs' `shape_signature` says about dim 0."""
    dims = [int(d["shape_signature"][0]) if len(d["shape_signature"]) else None
            for d in interpreter.get_input_details()]
    if all(d == -1 for d in dims):
        return "the signature declares a dynamic batch (-1)"
    return f"the signature declares batch {', '.join('none' if d is None else str(d) for d in dims)}"


def probe(interpreter: Any, arrays: list[np.ndarray], model_name: str) -> Batching:
    """Run two samples singly and as a batch of 2 (see the module's docstring); leaves the interpreter
    resized to 2 or 1. A model that cannot even run one sample at a time is an error."""
    signature = declared(interpreter)  # before any resize (which rewrites `shape_signature`)
    first, second = _probe_samples(arrays)
    singles = [_single(interpreter, sample, model_name) for sample in (first, second)]
    problem = _pair_problem(interpreter, first, second, singles, model_name)
    if problem is not None:
        return Batching(False, f"{signature}; {problem}")
    return Batching(True, f"{signature}; a batch of 2 gives the outputs of the 2 samples run singly")


def model_batching(model: Path, x: Samples) -> Batching:
    """`probe` of a .tflite on the first samples of `x` (the runner caches it per artifact)."""
    interpreter = load_interpreter(model)
    return probe(interpreter, prepared_inputs(x, interpreter, model.name), model.name)


def batch_for(batching: Batching, requested: int, exact: bool, model_name: str) -> int:
    """The batch size to run: `requested` when the model batches, else 1; `exact` (the suite set
    `batch_size`) makes a size the model cannot take an error."""
    if batching.batches or requested == 1:
        return requested
    if exact:
        raise HarnessError(f"{model_name}: the task's `batch_size: {requested}` cannot be used: the model does not "
                           f"batch ({batching.reason}); remove `batch_size` to run it one sample at a time")
    return 1


def per_sample(outputs: list[np.ndarray], count: int, names: list[str], model_name: str) -> None:
    """Every output must lead with the sample count (one row per sample, never folded)."""
    for output, name in zip(outputs, names):
        if output.ndim == 0 or output.shape[0] != count:
            raise HarnessError(f"{model_name}: output {name!r} has shape {list(output.shape)} for {count} samples "
                               "(not one row per sample)")


def _probe_samples(arrays: list[np.ndarray]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Sample 0 and the first sample that differs from it (so mixed samples show), else sample 0 reversed."""
    other = next((i for i in range(1, len(arrays[0])) if any(not np.array_equal(a[i], a[0]) for a in arrays)), None)
    first = [a[:1] for a in arrays]
    if other is not None:
        return first, [a[other : other + 1] for a in arrays]
    return first, [np.flip(a, axis=tuple(range(1, a.ndim))) for a in first]


def _single(interpreter: Any, sample: list[np.ndarray], model_name: str) -> list[np.ndarray]:
    """The outputs of one sample run alone; a model that cannot is an error."""
    try:
        resize_inputs(interpreter, sample, 1)
        return invoke_batch(interpreter, sample, model_name)
    except (RuntimeError, ValueError) as exc:
        raise HarnessError(f"{model_name}: cannot run one sample: {_first_line(exc)}") from exc


def _pair_problem(interpreter: Any, first: list[np.ndarray], second: list[np.ndarray],
                  singles: list[list[np.ndarray]], model_name: str) -> str | None:
    """Why a batch of the two samples does not give their single outputs (None: it does)."""
    try:
        resize_inputs(interpreter, first, 2)
        pair = invoke_batch(interpreter, [np.concatenate(parts) for parts in zip(first, second)], model_name)
    except HarnessError as exc:
        return str(exc).removeprefix(f"{model_name}: ")
    except (RuntimeError, ValueError) as exc:
        return f"a batch of 2 does not run: {_first_line(exc)}"
    details = interpreter.get_output_details()
    for index, detail in enumerate(details):
        for row, single in enumerate(singles):
            worst = _mismatch(pair[index][row], single[index][0], detail)
            if worst is not None:
                name = tensor_names(interpreter, "outputs")[index]
                return (f"output {name!r} of sample {row + 1} in a batch of 2 differs from the sample run alone "
                        f"(max |difference| {worst:.3g}): the batch mixes samples")
    return None


def _mismatch(batched: np.ndarray, alone: np.ndarray, detail: dict) -> float | None:
    """The largest difference when it exceeds rounding (one quantization step, or 1e-3 of the output's
    largest magnitude), else None; NaN and infinities must sit in the same places."""
    scale = float(detail["quantization"][0]) if np.dtype(detail["dtype"]).kind != "f" else 0.0
    finite = alone[np.isfinite(alone)]
    tolerance = max(scale, _RELATIVE_TOLERANCE * float(np.max(np.abs(finite), initial=0.0)), 1e-6)
    if np.all(np.isclose(batched, alone, rtol=0, atol=tolerance, equal_nan=True)):
        return None
    with np.errstate(invalid="ignore"):
        difference = np.abs(batched.astype(np.float64) - alone.astype(np.float64))
    return float(np.nanmax(difference)) if np.any(np.isfinite(difference)) else float("inf")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
