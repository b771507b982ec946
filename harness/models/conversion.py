"""The framework model's own outputs (Keras / SavedModel / torch) on the evaluation inputs, and a converted
.tflite's outputs compared with them: the record's `conversion` (a conversion that loses accuracy is visible
before any quantization)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from harness.errors import HarnessError
from harness.fidelity import compare_outputs, json_number, worst
from harness.models.source import SourceModel
from harness.record import Conversion
from harness.samples import Samples
from harness.versions import tool_versions


def bound_samples(samples: Samples, float_model: Path) -> dict[str, np.ndarray]:
    """The samples bound to the float .tflite's inputs, by signature name (a synthetic dataset generated
    for its input signature), each in the model's per-sample shape."""
    from harness.tflite.runtime import load_interpreter, prepared_inputs, tensor_names

    interpreter = load_interpreter(float_model)
    arrays = prepared_inputs(samples, interpreter, float_model.name)
    return dict(zip(tensor_names(interpreter, "inputs"), arrays))


def converter_of(source: SourceModel) -> tuple[str, dict[str, str]]:
    """The converter that made a framework source's float .tflite, and the versions that matter."""
    if source.format == "torch":
        return str(source.info.get("converter", "litert-torch")), dict(source.info.get("versions", {}))
    versions = tool_versions()
    return "TFLiteConverter", {name: versions[name] for name in ("tensorflow", "keras")}


def _padded(rows: np.ndarray, batch: int) -> np.ndarray:
    return rows if len(rows) == batch else np.concatenate([rows, np.repeat(rows[:1], batch - len(rows), axis=0)])


def saved_model_outputs(saved_model: Path, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The SavedModel's serving signature on the samples (by input name), every output by name; a signature
    of a fixed batch runs in batches of that size."""
    import tensorflow as tf

    signature = tf.saved_model.load(str(saved_model)).signatures["serving_default"]
    specs = signature.structured_input_signature[1]
    missing = sorted(set(specs) - set(arrays))
    if missing:
        raise HarnessError(f"the SavedModel's inputs {missing} have no samples (the .tflite's are {sorted(arrays)})")
    fixed = {spec.shape[0] for spec in specs.values() if spec.shape.rank and spec.shape[0] is not None}
    batch, total = (fixed.pop() if len(fixed) == 1 else 256), len(next(iter(arrays.values())))
    collected: dict[str, list[np.ndarray]] = {}
    for start in range(0, total, batch):
        count = min(batch, total - start)
        feeds = {name: tf.constant(_padded(arrays[name][start : start + count], batch if fixed else count),
                                   dtype=spec.dtype) for name, spec in specs.items()}
        for name, tensor in signature(**feeds).items():
            collected.setdefault(name, []).append(np.asarray(tensor, dtype=np.float32)[:count])
    return {name: np.concatenate(parts) for name, parts in collected.items()}


def framework_outputs(source: SourceModel, samples: Samples, float_model: Path,
                      saved_model: Callable[[], Path]) -> dict[str, np.ndarray]:
    """The framework model's outputs on the samples, by the float .tflite's output names."""
    arrays = bound_samples(samples, float_model)
    if source.format == "torch":
        from harness.models.torch_source import program_outputs

        assert source.program is not None
        return program_outputs(source.program, arrays)
    return saved_model_outputs(saved_model(), arrays)


def compared(outputs: Sequence[np.ndarray], names: Sequence[str], reference: dict[str, np.ndarray]) -> dict[str, float]:
    """The worst output's numbers of a .tflite's outputs (in `names` order) vs the framework's by name
    (by position when the names differ and the counts agree)."""
    if len(outputs) != len(reference):
        raise HarnessError(f"the .tflite has {len(outputs)} outputs, the framework model {len(reference)}")
    by_name = reference if set(names) == set(reference) else dict(zip(names, reference.values()))
    numbers = []
    for name, output in zip(names, outputs):
        expected = by_name[name]
        if expected.shape != output.shape and expected.size == output.size:
            expected = expected.reshape(output.shape)
        numbers.append(compare_outputs(output, expected))
    return worst(numbers)


def conversion_record(source: SourceModel, samples: int, float_numbers: dict[str, float],
                      cell_numbers: dict[str, float] | None = None) -> Conversion:
    """The record's `conversion`: the float .tflite vs the framework model (and this cell's .tflite vs it)."""
    converter, versions = converter_of(source)
    record: Conversion = {"framework": source.format, "converter": converter, "versions": versions,
                          "samples": samples, "snr_db": json_number(float_numbers["snr_db"]),
                          "max_abs_error": json_number(float_numbers["max_abs_error"])}
    if cell_numbers is not None:
        record["cell_snr_db"] = json_number(cell_numbers["snr_db"])
        record["cell_max_abs_error"] = json_number(cell_numbers["max_abs_error"])
    return record
