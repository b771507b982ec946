"""Host-side LiteRT execution: batched inference with (de)quantized inputs and outputs."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from harness.errors import HarnessError, NotApplicable
from harness.samples import FromSignature, Samples, sample_count

if TYPE_CHECKING:
    from harness.fidelity import OutputInfo
    from harness.tflite.batching import Batching


# what LiteRT says when an op has no kernel in the resolver (nor a delegate that takes it)
_UNRESOLVED = (re.compile(r"unresolved custom op: (?P<op>[^\s.]+)"),
               re.compile(r"Didn't find op for builtin opcode '(?P<op>\w+)' version '(?P<version>\d+)'"))


class UnresolvedOp(NotApplicable, HarnessError):
    """The model has an op LiteRT's op resolver cannot run (a custom op nobody registered): a cell records
    it as `n/a` (or its model source as failed), a command prints it in one line (exit 2)."""


# The host's kernel paths: the op resolver each runs on. `xnnpack` (what evaluation, latency and a
# local device use): the XNNPACK delegate where it takes an op, LiteRT's builtin kernels for the rest;
# `builtin`: LiteRT's optimized builtin kernels alone; `reference`: its reference kernels.
Kernels = Literal["xnnpack", "builtin", "reference"]
KERNEL_PATHS: tuple[Kernels, ...] = ("xnnpack", "builtin", "reference")


def _resolver(kernels: Kernels) -> Any:
    from ai_edge_litert.interpreter import OpResolverType

    return {"xnnpack": OpResolverType.AUTO, "builtin": OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
            "reference": OpResolverType.BUILTIN_REF}[kernels]


def load_interpreter(model: Path | bytes, num_threads: int = 1, name: str | None = None,
                     builtin_kernels_only: bool = False, kernels: Kernels = "xnnpack") -> Any:
    """A LiteRT interpreter for a .tflite path or its bytes, with the one op resolver used everywhere
    (evaluation, latency, normalization, diagnose, recover, device numerics' host side): LiteRT's
    builtin ops plus its default XNNPACK delegate, which also runs MediaPipe's custom ops
    Convolution2DTransposeBias, MaxPoolingWithArgmax2D and MaxUnpooling2D. Its tensors are allocated
    once at the declared shapes, so an op that cannot be resolved raises `UnresolvedOp` naming it here.
    `builtin_kernels_only` (diagnose): no delegate, every intermediate tensor kept; a model with an op
    only the delegate implements raises `UnresolvedOp` then (see `diagnose.observed_interpreter`).
    `kernels` (the cross-kernel check, harness.numerics.kernels): another of `KERNEL_PATHS`."""
    from ai_edge_litert.interpreter import Interpreter

    source = {"model_content": model} if isinstance(model, bytes) else {"model_path": str(model)}
    resolver = _resolver("builtin" if builtin_kernels_only else kernels)
    interpreter = Interpreter(**source, num_threads=num_threads, experimental_op_resolver_type=resolver,
                              experimental_preserve_all_tensors=builtin_kernels_only)
    try:
        interpreter.allocate_tensors()
    except RuntimeError as exc:
        _raise_unresolved(exc, name or (model.name if isinstance(model, Path) else "the model"))
        # any other failure at the declared shapes is the caller's to report (it resizes before allocating)
    return interpreter


def _raise_unresolved(exc: RuntimeError, model_name: str) -> None:
    """`UnresolvedOp` (one line, naming the op) when LiteRT's error is an op it cannot resolve."""
    for pattern in _UNRESOLVED:
        found = pattern.search(str(exc))
        if found:
            version = f" version {found['version']}" if "version" in pattern.groupindex else ""
            kind = "builtin" if version else "custom"
            raise UnresolvedOp(f"{model_name}: LiteRT cannot resolve {kind} op {found['op']}{version}: neither its "
                               "builtin kernels nor its XNNPACK delegate implement it, so this model cannot run") from None


def quantize_input(values: np.ndarray, detail: dict) -> np.ndarray:
    """Float values → the tensor's dtype, using its scale and zero point when it is quantized."""
    dtype = np.dtype(detail["dtype"])
    if dtype.kind == "f":
        return values.astype(dtype)
    scale, zero_point = detail["quantization"]
    if scale == 0:
        raise HarnessError(f"input {detail['name']!r} is {dtype} without quantization parameters")
    info = np.iinfo(dtype)
    return np.clip(np.round(values / scale + zero_point), info.min, info.max).astype(dtype)


def dequantize_output(values: np.ndarray, detail: dict) -> np.ndarray:
    """A tensor's values as float32, dequantized with its scale and zero point when quantized."""
    if np.dtype(detail["dtype"]).kind == "f":
        return values.astype(np.float32)
    scale, zero_point = detail["quantization"]
    if scale == 0:
        return values.astype(np.float32)
    return ((values.astype(np.float32) - zero_point) * scale).astype(np.float32)


def fit_samples(x: np.ndarray, input_shape: tuple[int, ...], model_name: str) -> np.ndarray:
    """Reshape dataset samples to the model's per-sample input shape when only the layout differs."""
    target = tuple(int(d) for d in input_shape)
    if x.shape[1:] == target:
        return x
    if all(d > 0 for d in target) and int(np.prod(x.shape[1:])) == int(np.prod(target)):
        return x.reshape((len(x), *target))
    raise HarnessError(f"{model_name}: dataset samples have shape {x.shape[1:]}, the model takes {target}")


def _signature_keys(interpreter: Any, kind: str) -> dict[int, str]:
    """Tensor index → signature key (`inputs` or `outputs`) of the model's first SignatureDef, if any."""
    signatures = interpreter.get_signature_list()
    if not signatures:
        return {}
    runner = interpreter.get_signature_runner(next(iter(signatures)))
    details = runner.get_input_details() if kind == "inputs" else runner.get_output_details()
    return {int(detail["index"]): key for key, detail in details.items()}


def tensor_names(interpreter: Any, kind: str) -> list[str]:
    """Each input's or output's name, in the interpreter's order: its signature key (what Keras and the
    SavedModel call it) when the model has a SignatureDef, else the tensor's name."""
    keys = _signature_keys(interpreter, kind)
    details = interpreter.get_input_details() if kind == "inputs" else interpreter.get_output_details()
    return [keys.get(int(d["index"]), d["name"]) for d in details]


def output_info(model: Path) -> list[tuple[str, str]]:
    """(name, dtype) of every output, in the order `predict` returns them."""
    interpreter = load_interpreter(model)
    dtypes = [np.dtype(d["dtype"]).name for d in interpreter.get_output_details()]
    return list(zip(tensor_names(interpreter, "outputs"), dtypes))


def model_outputs(model: Path) -> list[OutputInfo]:
    """Name and dtype of every output of a .tflite, in the order `predict` returns them."""
    from harness.fidelity import OutputInfo  # the record's types (pydantic): not for the measurement process

    return [OutputInfo(name, dtype) for name, dtype in output_info(model)]


def sample_shape(detail: dict, model_name: str, name: str) -> tuple[int, ...]:
    """An input's per-sample shape from its signature; a dynamic dimension past the batch cannot be generated."""
    shape = tuple(int(d) for d in detail["shape_signature"][1:])
    if any(d < 0 for d in shape):
        raise HarnessError(f"{model_name}: input {name!r} has shape {[-1, *shape]}: declare its `shape` "
                           "in the synthetic dataset's `inputs`")
    return shape


def bind_inputs(x: Samples, interpreter: Any, model_name: str) -> list[np.ndarray]:
    """The dataset's samples for each model input, in the interpreter's input order: an array for a
    single-input model, or a dict keyed by input names (signature keys or tensor names)."""
    details = interpreter.get_input_details()
    if isinstance(x, FromSignature):
        names = tensor_names(interpreter, "inputs")
        x = x.generate([(name, sample_shape(detail, model_name, name)) for name, detail in zip(names, details)])
    if not isinstance(x, dict):
        if len(details) != 1:
            listed = ", ".join(tensor_names(interpreter, "inputs"))
            raise HarnessError(f"{model_name}: {len(details)} inputs ({listed}); the dataset gives one array: give "
                               "one array per input name (npz keys or `inputs:`)")
        return [x]
    if len(details) == 1 and len(x) == 1:
        return list(x.values())
    bound = []
    for name, detail in zip(tensor_names(interpreter, "inputs"), details):
        key = name if name in x else detail["name"]
        if key not in x:
            raise HarnessError(f"{model_name}: no samples for input {name!r}: the dataset has "
                               f"{sorted(x)}, the model takes {tensor_names(interpreter, 'inputs')}")
        bound.append(x[key])
    return bound


def prepared_inputs(x: Samples, interpreter: Any, model_name: str) -> list[np.ndarray]:
    """The dataset's samples bound to the model's inputs (interpreter order), each in its per-sample shape."""
    arrays = bind_inputs(x, interpreter, model_name)
    return [fit_samples(a, tuple(abs(int(d)) for d in detail["shape_signature"][1:]), model_name)
            for a, detail in zip(arrays, interpreter.get_input_details())]


def resize_inputs(interpreter: Any, arrays: list[np.ndarray], batch: int) -> None:
    """Every input resized to `batch` samples of its per-sample shape, tensors allocated."""
    for array, detail in zip(arrays, interpreter.get_input_details()):
        interpreter.resize_tensor_input(detail["index"], [batch, *array.shape[1:]], strict=False)
    interpreter.allocate_tensors()


def invoke_batch(interpreter: Any, batch: list[np.ndarray], model_name: str) -> list[np.ndarray]:
    """One invoke on a batch (one array per input, all of the size the inputs were resized to): every
    output dequantized. An output that does not lead with the batch size would mix or fold samples: error."""
    size = len(batch[0])
    for array, detail in zip(batch, interpreter.get_input_details()):
        interpreter.set_tensor(detail["index"], quantize_input(array, detail))
    interpreter.invoke()
    outputs = [dequantize_output(interpreter.get_tensor(d["index"]), d) for d in interpreter.get_output_details()]
    for index, output in enumerate(outputs):
        if output.ndim == 0 or output.shape[0] != size:
            name = tensor_names(interpreter, "outputs")[index]
            raise HarnessError(f"{model_name}: output {name!r} has shape {list(output.shape)} for a batch of "
                               f"{size}: its samples are not separable (the batch is folded)")
    return outputs


def predict(model: Path, x: Samples, batch_size: int = 256, num_threads: int = 1,
            batching: Batching | None = None, exact: bool = False, kernels: Kernels = "xnnpack") -> list[np.ndarray]:
    """Run the model on every sample of `x` (an array, or a dict of arrays keyed by input name); return
    every output, dequantized, in the interpreter's order, each leading with the sample count (never folded).

    Samples run in batches of `batch_size` when the model batches (`batching`: harness.tflite.batching,
    probed here when not given), else one at a time; `exact`: the batch
    size was asked for, and a model that cannot take it is an error. `kernels`: the kernel path it runs on."""
    from harness.tflite.batching import batch_for, probe

    interpreter = load_interpreter(model, num_threads, kernels=kernels)
    arrays = prepared_inputs(x, interpreter, model.name)
    count = sample_count({str(i): a for i, a in enumerate(arrays)})
    batching = batching or probe(interpreter, arrays, model.name)
    batch = min(batch_for(batching, batch_size, exact, model.name), count)
    resize_inputs(interpreter, arrays, batch)
    chunks: list[list[np.ndarray]] = [[] for _ in interpreter.get_output_details()]
    for start in range(0, count, batch):
        real = min(batch, count - start)
        outputs = invoke_batch(interpreter, [_padded(a[start : start + batch], batch) for a in arrays], model.name)
        for collected, output in zip(chunks, outputs):
            collected.append(output[:real])
    return [np.concatenate(collected) for collected in chunks]


def _padded(chunk: np.ndarray, batch: int) -> np.ndarray:
    """The last batch padded with copies of its last sample (instead of re-allocating)."""
    if len(chunk) == batch:
        return chunk
    return np.concatenate([chunk, np.repeat(chunk[-1:], batch - len(chunk), axis=0)])


def tensor_types(model: Path) -> dict[str, list[str]]:
    """dtypes of the model's inputs and outputs (for the record: int8 I/O is visible)."""
    interpreter = load_interpreter(model)
    return {
        "inputs": [np.dtype(d["dtype"]).name for d in interpreter.get_input_details()],
        "outputs": [np.dtype(d["dtype"]).name for d in interpreter.get_output_details()],
    }


def delegated_nodes(interpreter: Any) -> tuple[int, int, int]:
    """(nodes of the model's main graph, nodes a delegate took, the delegate's partitions) of an
    allocated interpreter. LiteRT appends one DELEGATE node per partition and keeps the nodes it
    replaced in the graph: a partition's nodes are those computing its outputs back to its inputs."""
    details = interpreter._get_ops_details()  # noqa: SLF001 - the only view of the graph after delegation
    partitions = [d for d in details if d["op_name"] == "DELEGATE"]
    ops = [d for d in details if d["op_name"] != "DELEGATE"]
    producer = {int(t): i for i, op in enumerate(ops) for t in op["outputs"] if t >= 0}
    taken: set[int] = set()
    for partition in partitions:
        boundary = {int(t) for t in partition["inputs"]}
        pending = [int(t) for t in partition["outputs"]]
        while pending:
            tensor = pending.pop()
            node = producer.get(tensor)
            if tensor in boundary or node is None or node in taken:
                continue
            taken.add(node)
            pending.extend(int(t) for t in ops[node]["inputs"] if t >= 0)
    return len(ops), len(taken), len(partitions)


def kernels_used(model: Path | bytes, num_threads: int = 1) -> str:
    """Which kernels the host's evaluation path (`xnnpack`) runs the model on: `xnnpack` (the delegate
    took every node), `xnnpack+builtin` (some) or `builtin` (none: XNNPACK takes no op of it)."""
    nodes, taken, _ = delegated_nodes(load_interpreter(model, num_threads))
    return "xnnpack" if nodes and taken == nodes else ("xnnpack+builtin" if taken else "builtin")


def _compiled_fully_accelerated(model: Path) -> bool:
    """LiteRT's own answer (CompiledModel on the CPU accelerator, XNNPACK): did it take every op?"""
    from ai_edge_litert.compiled_model import CompiledModel
    from ai_edge_litert.hardware_accelerator import HardwareAccelerator

    return bool(CompiledModel.from_file(str(model), hardware_accel=HardwareAccelerator.CPU).is_fully_accelerated())


def acceleration(model: Path, num_threads: int = 1) -> dict[str, Any]:
    """How much of the model the host's XNNPACK path takes (harness.record.Acceleration): the
    interpreter's nodes, those the XNNPACK delegate took and its partitions, and LiteRT CompiledModel's
    `is_fully_accelerated()`. When the two disagree, `fully_delegated` is false and `note` says so."""
    nodes, taken, partitions = delegated_nodes(load_interpreter(model, num_threads))
    counted = bool(nodes) and taken == nodes
    result: dict[str, Any] = {"delegate": "XNNPACK", "nodes": nodes, "delegated_nodes": taken,
                              "partitions": partitions, "ratio": taken / nodes if nodes else None}
    try:
        result["fully_accelerated"] = _compiled_fully_accelerated(model)
    except Exception as exc:  # noqa: BLE001 - the node count still answers
        result.update(fully_accelerated=None, note=f"CompiledModel.is_fully_accelerated() failed: {exc}")
    compiled = result["fully_accelerated"]
    if compiled is not None and compiled != counted:
        result["note"] = (f"CompiledModel says fully accelerated: {compiled}, the interpreter's XNNPACK delegate "
                          f"took {taken} of {nodes} nodes: not counted as fully delegated")
    result["fully_delegated"] = counted and compiled is not False
    return result
