"""Normalize old-style float .tflite files so litert-quantizer sees (and can quantize) every op.

Files written by early TFLite converters differ from current ones in three ways that
litert-quantizer does not handle: the opcode lives only in `deprecated_builtin_code` (the
quantizer reads `builtin_code`, sees ADD everywhere and quantizes nothing, or the wrong
ops), weights are float16 constants behind DEQUANTIZE ops (not float weights it can
quantize), and there is no SignatureDef (it calibrates through signatures). This module
detects those traits and rewrites the file with LiteRT's own flatbuffer schema classes:
builtin codes set, float16 constants folded into float32 constants (DEQUANTIZE ops and
the unused float16 tensors and buffers removed), a `serving_default` signature added.
The rewrite must give the original's outputs on a probe input.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from harness.cache import ArtifactCache, content_key, file_digest
from harness.errors import HarnessError

# Bump when the rewrite changes: cached normalized files are keyed by it.
NORMALIZER_VERSION = 1
_PROBE_TOLERANCE = 1e-4
_IDENTIFIER = b"TFL3"


def _schema() -> Any:
    from ai_edge_litert import schema_py_generated

    return schema_py_generated


def _read(data: bytes) -> Any:
    from ai_edge_litert.tools import flatbuffer_utils

    return flatbuffer_utils.read_model_from_bytearray(bytearray(data))


def _stale_opcodes(model: Any) -> list[Any]:
    """Operator codes whose `builtin_code` disagrees with the `deprecated_builtin_code` it replaced."""
    placeholder = _schema().BuiltinOperator.PLACEHOLDER_FOR_GREATER_OP_CODES
    return [code for code in model.operatorCodes or []
            if code.deprecatedBuiltinCode != placeholder and code.builtinCode != code.deprecatedBuiltinCode]


def _builtin(code: Any) -> int:
    return max(code.builtinCode, code.deprecatedBuiltinCode)


def _fp16_dequantize_ops(model: Any, subgraph: Any) -> list[Any]:
    """DEQUANTIZE ops whose input is a float16 constant (a weight stored at half precision)."""
    schema = _schema()
    found = []
    for op in subgraph.operators or []:
        if _builtin(model.operatorCodes[op.opcodeIndex]) != schema.BuiltinOperator.DEQUANTIZE:
            continue
        tensor = subgraph.tensors[op.inputs[0]]
        if tensor.type == schema.TensorType.FLOAT16 and model.buffers[tensor.buffer].data is not None:
            found.append(op)
    return found


def old_style_traits(data: bytes) -> dict[str, int]:
    """What makes a .tflite old-style (empty when it needs no normalization)."""
    model = _read(data)
    traits = {
        "opcodes_from_deprecated_builtin_code": len(_stale_opcodes(model)),
        "fp16_constants_behind_dequantize": sum(len(_fp16_dequantize_ops(model, g)) for g in model.subgraphs),
        "signature_added": int(not model.signatureDefs and len(model.subgraphs) == 1),
    }
    return {name: count for name, count in traits.items() if count}


def _fold_fp16_constants(model: Any, subgraph: Any) -> int:
    """Give each DEQUANTIZE(float16 constant) output a float32 constant and drop the op."""
    schema = _schema()
    folded = _fp16_dequantize_ops(model, subgraph)
    for op in folded:
        source = subgraph.tensors[op.inputs[0]]
        values = np.frombuffer(bytes(model.buffers[source.buffer].data), dtype="<f2").astype("<f4")
        buffer = schema.BufferT()
        buffer.data = np.frombuffer(values.tobytes(), dtype=np.uint8)
        model.buffers.append(buffer)
        target = subgraph.tensors[op.outputs[0]]
        target.buffer = len(model.buffers) - 1
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


def normalize(data: bytes) -> tuple[bytes, dict[str, int]]:
    """The rewritten model and what changed (the input itself and {} when nothing needs to)."""
    traits = old_style_traits(data)
    if not traits:
        return data, {}
    from ai_edge_litert.tools import flatbuffer_utils

    model = _read(data)
    for code in _stale_opcodes(model):
        code.builtinCode = code.deprecatedBuiltinCode
    changes = dict(traits)
    for subgraph in model.subgraphs:
        if _fold_fp16_constants(model, subgraph):
            changes["tensors_removed"] = changes.get("tensors_removed", 0) + _drop_unused_tensors(subgraph)
    _drop_unused_buffers(model)
    if "signature_added" in traits:
        _add_signature(model)
    result = bytes(flatbuffer_utils.convert_object_to_bytearray(model))
    _check_same_outputs(data, result)
    return result, changes


def _probe(rng: np.random.Generator, detail: dict) -> np.ndarray:
    dtype = np.dtype(detail["dtype"])
    if dtype.kind == "f":
        return rng.uniform(-1, 1, size=detail["shape"]).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, size=detail["shape"], endpoint=True).astype(dtype)


def _check_same_outputs(original: bytes, rewritten: bytes) -> None:
    """Both models give the same outputs on one seeded random input."""
    from harness.devices.litert import load_interpreter

    outputs = []
    for model in (original, rewritten):
        interpreter = load_interpreter(model)
        interpreter.allocate_tensors()
        rng = np.random.default_rng(0)
        for detail in interpreter.get_input_details():
            interpreter.set_tensor(detail["index"], _probe(rng, detail))
        interpreter.invoke()
        outputs.append([interpreter.get_tensor(d["index"]).copy() for d in interpreter.get_output_details()])
    for before, after in zip(*outputs, strict=True):
        if before.shape != after.shape or not np.allclose(before, after, rtol=_PROBE_TOLERANCE, atol=_PROBE_TOLERANCE):
            raise HarnessError("normalizing the old-style .tflite changed its outputs; please report this model")


def normalized_tflite(path: Path, cache: ArtifactCache) -> tuple[Path, dict[str, Any]]:
    """The file itself when it is a current .tflite, else its normalized copy (cached) and what changed."""
    data = path.read_bytes()
    if data[4:8] != _IDENTIFIER:  # not a TFLite flatbuffer: the runtime reports what is wrong
        return path, {}
    traits = old_style_traits(data)
    if not traits:
        return path, {}
    key = content_key(kind="tflite-normalized", source=file_digest(path), version=NORMALIZER_VERSION)

    def write(target: Path) -> None:
        rewritten, changes = normalize(data)
        target.write_bytes(rewritten)
        cache.write_json("models", key, {"normalized": {**changes, "original": str(path),
                                                        "original_bytes": len(data),
                                                        "normalized_bytes": len(rewritten)}})

    normalized, _ = cache.get_or_create("models", key, ".tflite", write)
    return normalized, cache.read_json("models", key) or {}
