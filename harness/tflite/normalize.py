"""Normalize float .tflite sources so litert-quantizer sees (and can quantize) every op, and
verify that what becomes the float32 baseline really is float.

Files written by early TFLite converters differ from current ones in four ways that
litert-quantizer does not handle: the opcode lives only in `deprecated_builtin_code` (the
quantizer reads `builtin_code`, sees ADD everywhere and quantizes nothing, or the wrong
ops), weights are float16 (or weight-only int8) constants behind DEQUANTIZE ops (not float
weights it can quantize), weights are sparse constants behind DENSIFY (MediaPipe's
`*_sparse` and pose detection models: sparse float16 → DENSIFY → DEQUANTIZE), and there is
no SignatureDef (it calibrates through signatures). This module detects those traits and
rewrites the file with LiteRT's own flatbuffer schema classes: builtin codes set, sparse
constants densified (`harness.tflite.sparsity`, DENSIFY ops removed), constants behind
DEQUANTIZE folded into float32 constants (DEQUANTIZE ops and the unused tensors and buffers
removed), a `serving_default` signature added. Buffers are read inline or by offset (`harness.tflite._flatbuffer`);
the rewrite stores them inline and must give the original's outputs on a probe input.

After normalization the baseline must hold no float16 or integer weight constants, no
DEQUANTIZE of a constant and no op running in int8/int16 (`not_float`); a model quantized
upstream cannot be made float and is refused as the float baseline unless the suite says
`baseline: as_is` for it.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any, Literal

import numpy as np

from harness.cache import ArtifactCache, content_key, file_digest
from harness.errors import HarnessError
from harness.tflite._flatbuffer import FlatModel, is_tflite, numpy_dtype, read_object, schema, write_object
from harness.tflite.sparsity import densify

# Bump when the rewrite changes: cached normalized files are keyed by it.
NORMALIZER_VERSION = 3
_PROBE_TOLERANCE = 1e-4
_QUANTIZED_TYPES = ("INT8", "UINT8", "INT16")
_NOT_FLOAT_CONSTANTS = {"FLOAT16", "INT8", "UINT8", "INT16", "INT4"}
_NAMED = 5  # tensors named in a refusal

BaselinePolicy = Literal["float", "as_is"]


def _schema() -> Any:
    return schema()


def _read(data: bytes) -> Any:
    return read_object(data)


def _stale_opcodes(model: Any) -> list[Any]:
    """Operator codes whose `builtin_code` disagrees with the `deprecated_builtin_code` it replaced."""
    placeholder = _schema().BuiltinOperator.PLACEHOLDER_FOR_GREATER_OP_CODES
    # the runtime reads max(builtin_code, deprecated_builtin_code): writers that leave the deprecated
    # field 0 (litert-quantizer) are current, not stale
    return [code for code in model.operatorCodes or []
            if code.deprecatedBuiltinCode != placeholder and code.builtinCode < code.deprecatedBuiltinCode]


def _builtin(code: Any) -> int:
    return max(code.builtinCode, code.deprecatedBuiltinCode)


def _type_name(type_value: int) -> str:
    return {v: k for k, v in vars(_schema().TensorType).items() if isinstance(v, int)}.get(type_value, "?")


def _has_data(model: Any, tensor: Any) -> bool:
    data = model.buffers[tensor.buffer].data
    return data is not None and len(data) > 0


def _quantized(tensor: Any) -> bool:
    q = tensor.quantization
    return q is not None and q.scale is not None and len(q.scale) > 0


def _constant_dequantize_ops(model: Any, subgraph: Any) -> dict[str, list[Any]]:
    """DEQUANTIZE ops of a constant, by the constant's storage: `fp16` (weights at half precision)
    or `int` (weight-only int8/uint8/int16 weights with their scales)."""
    found: dict[str, list[Any]] = {"fp16": [], "int": []}
    for op in subgraph.operators or []:
        if _builtin(model.operatorCodes[op.opcodeIndex]) != _schema().BuiltinOperator.DEQUANTIZE:
            continue
        tensor = subgraph.tensors[op.inputs[0]]
        if not _has_data(model, tensor):
            continue
        kind = _type_name(tensor.type)
        if kind == "FLOAT16":
            found["fp16"].append(op)
        elif kind in _QUANTIZED_TYPES and _quantized(tensor):
            found["int"].append(op)
    return found


def _dequantized(model: Any, tensor: Any) -> np.ndarray:
    """A constant's float32 values, as DEQUANTIZE computes them: scale × (q − zero point), per channel."""
    raw = bytes(model.buffers[tensor.buffer].data)
    kind = _type_name(tensor.type)
    if kind == "FLOAT16":
        return np.frombuffer(raw, dtype="<f2").astype("<f4")
    values = np.frombuffer(raw, dtype={"INT8": "<i1", "UINT8": "<u1", "INT16": "<i2"}[kind]).astype(np.float32)
    q = tensor.quantization
    scale = np.asarray(q.scale, np.float32)
    zero = np.asarray(q.zeroPoint if q.zeroPoint is not None and len(q.zeroPoint) else [0], np.float32)
    if scale.size > 1:  # per channel along `quantized_dimension`
        shape = [1] * len(tensor.shape)
        shape[q.quantizedDimension] = scale.size
        values = values.reshape(tensor.shape)
        scale, zero = scale.reshape(shape), zero.reshape(shape) if zero.size > 1 else zero
    return ((values - zero) * scale).astype("<f4").reshape(-1)


def _sparse_constants(model: Any, subgraph: Any) -> list[Any]:
    """Constant tensors stored in the TFLite sparsity format (only their nonzero values)."""
    return [t for t in subgraph.tensors or [] if t.sparsity is not None and _has_data(model, t)]


def old_style_traits(data: bytes) -> dict[str, int]:
    """What makes a .tflite old-style (empty when it needs no normalization)."""
    model = _read(data)
    dequantized = [_constant_dequantize_ops(model, g) for g in model.subgraphs]
    traits = {
        "opcodes_from_deprecated_builtin_code": len(_stale_opcodes(model)),
        "sparse_constants_densified": sum(len(_sparse_constants(model, g)) for g in model.subgraphs),
        "fp16_constants_behind_dequantize": sum(len(found["fp16"]) for found in dequantized),
        "int_constants_behind_dequantize": sum(len(found["int"]) for found in dequantized),
        "signature_added": int(not model.signatureDefs and len(model.subgraphs) == 1),
    }
    return {name: count for name, count in traits.items() if count}


def _new_buffer(model: Any, values: np.ndarray) -> int:
    """Append a buffer holding `values` (little-endian bytes); its index."""
    buffer = _schema().BufferT()
    buffer.data = np.frombuffer(values.tobytes(), dtype=np.uint8)
    model.buffers.append(buffer)
    return len(model.buffers) - 1


def _densify_constants(model: Any, subgraph: Any) -> int:
    """Store every sparse constant densely (same dtype), then give each DENSIFY(constant) output its
    input's buffer and drop the op: the DEQUANTIZE after a float16 one then folds like any other."""
    sparse = _sparse_constants(model, subgraph)
    for tensor in sparse:
        dtype = numpy_dtype(_type_name(tensor.type))
        values = np.frombuffer(bytes(model.buffers[tensor.buffer].data), dtype=dtype)
        tensor.buffer = _new_buffer(model, densify(values, list(tensor.shape), tensor.sparsity))
        tensor.sparsity = None
    densify_code = _schema().BuiltinOperator.DENSIFY
    folded = [op for op in subgraph.operators or [] if _builtin(model.operatorCodes[op.opcodeIndex]) == densify_code
              and _has_data(model, subgraph.tensors[op.inputs[0]])]
    for op in folded:
        source, target = subgraph.tensors[op.inputs[0]], subgraph.tensors[op.outputs[0]]
        target.buffer, target.type = source.buffer, source.type
    dropped = {id(op) for op in folded}
    subgraph.operators = [op for op in subgraph.operators if id(op) not in dropped]
    return len(sparse) + len(folded)


def _fold_constant_dequantize(model: Any, subgraph: Any) -> int:
    """Give each DEQUANTIZE(constant) output a float32 constant and drop the op."""
    schema = _schema()
    found = _constant_dequantize_ops(model, subgraph)
    folded = found["fp16"] + found["int"]
    for op in folded:
        target = subgraph.tensors[op.outputs[0]]
        target.buffer = _new_buffer(model, _dequantized(model, subgraph.tensors[op.inputs[0]]))
        target.type = schema.TensorType.FLOAT32
    dropped = {id(op) for op in folded}
    subgraph.operators = [op for op in subgraph.operators if id(op) not in dropped]
    return len(folded)


def _drop_unused_tensors(subgraph: Any) -> int:
    """Remove tensors no op, input or output refers to; renumber the references."""
    used: set[int] = set(subgraph.inputs or []) | set(subgraph.outputs or [])
    for op in subgraph.operators:
        for refs in (op.inputs, op.outputs, op.intermediates):
            used.update(i for i in refs or [] if i >= 0)
    keep = sorted(used)
    new_index = {old: new for new, old in enumerate(keep)}
    removed = len(subgraph.tensors) - len(keep)
    subgraph.tensors = [subgraph.tensors[i] for i in keep]

    def renumber(refs: list[int] | None) -> list[int]:
        return [new_index[i] if i >= 0 else i for i in refs or []]  # -1: an omitted optional input

    for op in subgraph.operators:
        op.inputs, op.outputs = renumber(op.inputs), renumber(op.outputs)
        if op.intermediates:
            op.intermediates = renumber(op.intermediates)
    subgraph.inputs, subgraph.outputs = renumber(subgraph.inputs), renumber(subgraph.outputs)
    return removed


def _drop_unused_buffers(model: Any) -> None:
    """Keep buffer 0 (the empty sentinel) and the buffers tensors or metadata refer to."""
    used = {0} | {t.buffer for g in model.subgraphs for t in g.tensors} | {m.buffer for m in model.metadata or []}
    keep = sorted(used)
    new_index = {old: new for new, old in enumerate(keep)}
    model.buffers = [model.buffers[i] for i in keep]
    for subgraph in model.subgraphs:
        for tensor in subgraph.tensors:
            tensor.buffer = new_index[tensor.buffer]
    for metadata in model.metadata or []:
        metadata.buffer = new_index[metadata.buffer]


def _add_signature(model: Any) -> None:
    schema = _schema()
    subgraph = model.subgraphs[0]

    def tensor_map(index: int) -> Any:
        entry = schema.TensorMapT()
        name = subgraph.tensors[index].name
        entry.name = name.decode() if isinstance(name, bytes) else name
        entry.tensorIndex = index
        return entry

    signature = schema.SignatureDefT()
    signature.signatureKey = "serving_default"
    signature.subgraphIndex = 0
    signature.inputs = [tensor_map(i) for i in subgraph.inputs]
    signature.outputs = [tensor_map(i) for i in subgraph.outputs]
    model.signatureDefs = [signature]


def normalize(data: bytes, name: str = "the model") -> tuple[bytes, dict[str, int]]:
    """The rewritten model and what changed (the input itself and {} when nothing needs to)."""
    traits = old_style_traits(data)
    if not traits:
        return data, {}
    model = _read(data)
    for code in _stale_opcodes(model):
        code.builtinCode = code.deprecatedBuiltinCode
    changes = dict(traits)
    for subgraph in model.subgraphs:
        if _densify_constants(model, subgraph) + _fold_constant_dequantize(model, subgraph):
            changes["tensors_removed"] = changes.get("tensors_removed", 0) + _drop_unused_tensors(subgraph)
    _drop_unused_buffers(model)
    if "signature_added" in traits:
        _add_signature(model)
    result = write_object(model)
    _check_same_outputs(data, result, name)
    return result, changes


def _probe(rng: np.random.Generator, detail: dict) -> np.ndarray:
    dtype = np.dtype(detail["dtype"])
    if dtype.kind == "f":
        return rng.uniform(-1, 1, size=detail["shape"]).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, size=detail["shape"], endpoint=True).astype(dtype)


def _check_same_outputs(original: bytes, rewritten: bytes, name: str) -> None:
    """Both models give the same outputs on one seeded random input."""
    from harness.tflite.runtime import load_interpreter

    outputs = []
    for model in (original, rewritten):
        interpreter = load_interpreter(model, name=name)
        rng = np.random.default_rng(0)
        for detail in interpreter.get_input_details():
            interpreter.set_tensor(detail["index"], _probe(rng, detail))
        interpreter.invoke()
        outputs.append([interpreter.get_tensor(d["index"]).copy() for d in interpreter.get_output_details()])
    for before, after in zip(*outputs, strict=True):
        if before.shape != after.shape or not np.allclose(before, after, rtol=_PROBE_TOLERANCE, atol=_PROBE_TOLERANCE):
            raise HarnessError("normalizing the old-style .tflite changed its outputs; please report this model")


def not_float(data: bytes) -> dict[str, Any]:
    """What keeps a model from being a float baseline (empty when it is float): constants stored
    as float16 or integers (`{dtype: [tensor names]}`), DEQUANTIZE ops of a constant, and ops that
    run in int8/int16 (`{"int8": {op: count}}`)."""
    from harness.tflite.audit import classify_ops

    reader = FlatModel(data)
    constants: dict[str, list[str]] = {}
    for g, graph in reader.subgraphs():
        for t in range(graph.TensorsLength()):
            ref = reader.ref(g, t)
            if ref.type_name in _NOT_FLOAT_CONSTANTS and reader.is_constant(ref):
                constants.setdefault(ref.type_name.lower(), []).append(ref.name)
    ops = classify_ops(reader)
    integer_ops: dict[str, Counter[str]] = {}
    for info in ops:
        if info.kind in ("int8", "int16"):
            integer_ops.setdefault(info.kind, Counter())[info.op] += 1
    dequantize = sum(1 for info in ops if info.op == "DEQUANTIZE" and (info.reason or "").endswith("constant weights"))
    found = {"constants": constants, "dequantized_constants": dequantize,
             "integer_ops": {kind: dict(counts.most_common()) for kind, counts in integer_ops.items()}}
    return {name: value for name, value in found.items() if value}


def describe_not_float(path: Path, found: dict[str, Any]) -> str:
    """One paragraph naming what is not float: tensors by dtype (a few names each) and ops by precision."""
    parts = []
    for kind, counts in found.get("integer_ops", {}).items():
        parts.append(f"{sum(counts.values())} ops run in {kind} (" +
                     ", ".join(f"{op} ×{n}" for op, n in counts.items()) + ")")
    for dtype, names in found.get("constants", {}).items():
        shown = ", ".join(names[:_NAMED]) + (f", … ({len(names) - _NAMED} more)" if len(names) > _NAMED else "")
        parts.append(f"{len(names)} {dtype} constants ({shown})")
    if found.get("dequantized_constants"):
        parts.append(f"{found['dequantized_constants']} DEQUANTIZE ops of a constant")
    return f"{path.name} is not a float model (quantized upstream): " + "; ".join(parts)


def _checked(path: Path, data: bytes, baseline: BaselinePolicy) -> dict[str, Any]:
    """The baseline facts for the record; a model that is not float is refused unless `as_is`."""
    found = not_float(data)
    if not found:
        return {"baseline": {"float": True}}
    message = describe_not_float(path, found)
    if baseline != "as_is":
        raise HarnessError(f"{message}. It cannot be the float32 baseline: give the float model, or set "
                           f"`baseline: as_is` on this model entry to compare every scheme with it as it is")
    return {"baseline": {"float": False, "as_is": True, "not_float": found, "note": message}}


def normalized_tflite(path: Path, cache: ArtifactCache,
                      baseline: BaselinePolicy = "float") -> tuple[Path, dict[str, Any]]:
    """The file itself when it is a current .tflite, else its normalized copy (cached), with what
    changed and whether the result is float (`baseline`). A model that stays not float after
    normalization raises HarnessError naming what is not, unless `baseline` is `as_is`."""
    data = path.read_bytes()
    if not is_tflite(data):  # not a TFLite flatbuffer: the runtime reports what is wrong
        return path, {}
    traits = old_style_traits(data)
    if not traits:
        return path, _checked(path, data, baseline)
    key = content_key(kind="tflite-normalized", source=file_digest(path), version=NORMALIZER_VERSION)

    def write(target: Path) -> None:
        rewritten, changes = normalize(data, path.name)
        target.write_bytes(rewritten)
        cache.write_json("models", key, {"normalized": {**changes, "original": str(path),
                                                        "original_bytes": len(data),
                                                        "normalized_bytes": len(rewritten)}})

    normalized, _ = cache.get_or_create("models", key, ".tflite", write)
    info = cache.read_json("models", key) or {}
    return normalized, {**info, **_checked(path, normalized.read_bytes(), baseline)}
