"""Device numerics (`latency: {device_check: N}`): the phone's outputs vs the host's, same .tflite, same inputs.

After a cell is timed, the first N evaluation samples are cut into the model's input shape (one sample
per invocation for a batch-1 model), converted to each input tensor's dtype (quantized with its scale
and zero point) and written as raw little-endian bytes. Per invocation the phone runs

    benchmark_model ...the cell's flags... --warmup_runs=0 --num_runs=1 --min_secs=0
        --input_layer=a,b --input_layer_shape=1,4:1,2
        --input_layer_value_files=a:WORK/qb_in0.raw,b:WORK/qb_in1.raw --output_filepath=WORK/qb_out.raw

(benchmark_model takes one set of input files per process, so there is one invocation per sample),
and the output file — every output tensor's raw bytes, in the interpreter's order, concatenated — is
pulled back, split, dequantized and compared, output by output over all samples, with the host's
LiteRT outputs on the same bytes, using harness.fidelity (the same five numbers).

A binary that writes no output file (older than these flags) gives status "skipped" with the reason.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness.errors import HarnessError
from harness.fidelity import OutputInfo, json_number, output_fidelity
from harness.samples import Samples, sample_count
from harness.tflite.runtime import bind_inputs, dequantize_output, fit_samples, load_interpreter, quantize_input


@dataclass(frozen=True)
class Invocation:
    """One run on the phone: an array per model input (tensor dtype and shape) and the real samples in it."""

    inputs: list[np.ndarray]
    samples: int


def flag_name(name: str, position: int) -> str:
    """An input's name in --input_layer: the tensor's, unless it holds a ',' the lists cannot carry
    (the tool matches inputs by position and only warns about a different name)."""
    return name if name and "," not in name else f"input_{position}"


def io_flags(names: Sequence[str], arrays: Sequence[np.ndarray], remote_inputs: Sequence[str],
             remote_output: str) -> list[str]:
    """benchmark_model's flags for given input files and the output file; ':' in a name is escaped '::'."""
    files = ",".join(f"{name.replace(':', '::')}:{path}" for name, path in zip(names, remote_inputs))
    return [f"--input_layer={','.join(names)}",
            f"--input_layer_shape={':'.join(','.join(str(d) for d in a.shape) for a in arrays)}",
            f"--input_layer_value_files={files}", f"--output_filepath={remote_output}"]


def raw_bytes(array: np.ndarray) -> bytes:
    """An array's values as the tool reads them: C order, little-endian."""
    return np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<")).tobytes()


def invocations(model: Path, x: Samples, count: int) -> tuple[list[Invocation], list[str]]:
    """The first `count` samples of `x` cut into the model's (static) input shapes, and the inputs' names."""
    interpreter = load_interpreter(model)
    details = interpreter.get_input_details()
    arrays = [fit_samples(a, tuple(int(d) for d in detail["shape"][1:]), model.name)
              for a, detail in zip(bind_inputs(x, interpreter, model.name), details)]
    total = min(count, sample_count({str(i): a for i, a in enumerate(arrays)}))
    batch = max(1, int(details[0]["shape"][0]))
    runs = []
    for start in range(0, total, batch):
        real = min(batch, total - start)
        chunk = [np.concatenate([a[start:start + real]] + [a[start + real - 1:start + real]] * (batch - real))
                 for a in arrays]
        runs.append(Invocation([quantize_input(c, d) for c, d in zip(chunk, details)], real))
    names = [flag_name(str(d["name"]), i) for i, d in enumerate(details)]
    return runs, names


def host_outputs(model: Path, runs: Sequence[Invocation]) -> tuple[list[list[np.ndarray]], list[dict]]:
    """The host's raw output tensors per invocation (one thread, LiteRT) and the output details."""
    interpreter = load_interpreter(model, num_threads=1)
    for array, detail in zip(runs[0].inputs, interpreter.get_input_details()):
        interpreter.resize_tensor_input(detail["index"], list(array.shape), strict=False)
    interpreter.allocate_tensors()
    inputs, outputs = interpreter.get_input_details(), interpreter.get_output_details()
    results = []
    for run in runs:
        for array, detail in zip(run.inputs, inputs):
            interpreter.set_tensor(detail["index"], array)
        interpreter.invoke()
        results.append([np.array(interpreter.get_tensor(d["index"])) for d in outputs])
    return results, outputs


def split_output_file(data: bytes, like: Sequence[np.ndarray]) -> list[np.ndarray]:
    """The output file cut into tensors shaped and typed like the host's outputs of the same invocation."""
    sizes = [a.size * a.dtype.itemsize for a in like]
    if len(data) != sum(sizes):
        raise HarnessError(f"the output file has {len(data)} bytes; the model's outputs take {sum(sizes)} "
                           f"({', '.join(str(s) for s in sizes)})")
    tensors, offset = [], 0
    for array, size in zip(like, sizes):
        chunk = np.frombuffer(data[offset:offset + size], array.dtype.newbyteorder("<"))
        tensors.append(chunk.astype(array.dtype).reshape(array.shape))
        offset += size
    return tensors


def _stacked(per_run: Sequence[Sequence[np.ndarray]], runs: Sequence[Invocation], details: Sequence[dict],
             batch: int) -> list[np.ndarray]:
    """Per output, the dequantized tensors of every invocation joined (padding samples dropped)."""
    joined = []
    for position, detail in enumerate(details):
        parts = [dequantize_output(outs[position], detail) for outs in per_run]
        parts = [p[:run.samples] if p.ndim and p.shape[0] == batch else p for p, run in zip(parts, runs)]
        joined.append(np.concatenate([p.reshape(-1) for p in parts]))
    return joined


def compare(device: Sequence[Sequence[np.ndarray]], host: Sequence[Sequence[np.ndarray]],
            runs: Sequence[Invocation], details: Sequence[dict], infos: Sequence[OutputInfo]) -> dict[str, Any]:
    """The record's `device_numerics` of a completed check: every output's five numbers and the worst."""
    batch = int(runs[0].inputs[0].shape[0]) if runs[0].inputs[0].ndim else 1
    worst, entries = output_fidelity(_stacked(device, runs, details, batch), _stacked(host, runs, details, batch),
                                     infos)
    for entry, outputs in zip(entries, host[0]):
        entry["shape"] = list(outputs.shape)  # per invocation (the numbers are over all of them)
    return {"status": "ok", "reason": None, "samples": sum(r.samples for r in runs), "invocations": len(runs),
            "outputs": entries, "worst": worst}


def skipped(reason: str, status: str = "skipped") -> dict[str, Any]:
    """A `device_numerics` without numbers: why (status "skipped", or "failed")."""
    return {"status": status, "reason": reason, "samples": 0, "invocations": 0, "outputs": [], "worst": {}}


def check_device(model: Path, x: Samples, count: int, run_sample: Callable[[Invocation, list[str]], bytes | None],
                 infos: Sequence[OutputInfo]) -> dict[str, Any]:
    """Run the samples through `run_sample` (the phone) and on the host; compare."""
    runs, names = invocations(model, x, count)
    if not runs:
        return skipped("the evaluation data has no samples")
    host, details = host_outputs(model, runs)
    device = []
    for run, expected in zip(runs, host):
        data = run_sample(run, names)
        if data is None:
            return skipped("benchmark_model wrote no --output_filepath file: the binary predates "
                           "--input_layer_value_files/--output_filepath (use a newer benchmark_model)")
        device.append(split_output_file(data, expected))
    return compare(device, host, runs, details, infos)


def device_metrics(numerics: dict[str, Any]) -> dict[str, Any]:
    """`device_<name>` threshold metrics of a completed check (none when skipped or failed)."""
    if numerics.get("status") != "ok":
        return {}
    return {f"device_{name}": json_number(float(value)) for name, value in numerics["worst"].items()}
