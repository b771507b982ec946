"""What a produced .tflite really holds: ops by the precision they run in, bytes by dtype and role.

An op runs in the precision of its activations — its non-constant inputs and its outputs:
`float` when any of them is a float type, else `int16` when any is int16, else `int8` (int8
or uint8), else `other` (only int32/int64/bool/string tensors: shapes, indices). A float op
with an integer constant input is `hybrid` too (dynamic-range kernels: float activations, int8
weights). A model is `integer_only` when no op runs in float and every input and output of
the model is an integer tensor — what an Edge TPU, a Hexagon DSP or a microcontroller needs.

Bytes are counted once per buffer: by the dtype of the constant tensor that uses it, and by
role — `weights` (the kernel of a conv/dense op, also behind DEQUANTIZE/DENSIFY), `biases`,
`constants` (every other constant tensor), `metadata` (the model's metadata buffers),
`associated_files` (a zip appended by the TFLite Metadata writer: label maps, vocabularies) and
`structure` (the rest of the file: op lists, tensor names, shapes, quantization parameters).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from harness.record import Audit, FloatGroup, OpCounts
from harness.tflite._flatbuffer import FlatModel, TensorRef, graph_io, is_float_type, layout, op_inputs, op_outputs
from harness.tflite.weights import kernel_inputs, stored_kernel, tensor_producers

KINDS = ("float", "int8", "int16", "other")
_EIGHT_BIT = {"INT8", "UINT8", "INT4"}
_QUANTIZED_CONSTANTS = _EIGHT_BIT | {"INT16"}
# op → input index of its bias (followed back through DEQUANTIZE like the kernels)
BIAS_INPUTS = {"CONV_2D": 2, "DEPTHWISE_CONV_2D": 2, "FULLY_CONNECTED": 2, "CONV_3D": 2, "TRANSPOSE_CONV": 3}
_LISTED = 20  # float-op groups and integer-only culprits kept in the record


@dataclass(frozen=True)
class OpInfo:
    """One op of the model, classified."""

    op: str
    kind: str
    hybrid: bool
    output: str
    reason: str | None


def op_kind(activation_types: set[str]) -> str:
    """The precision an op runs in, from the types of its non-constant inputs and its outputs."""
    if any(is_float_type(t) for t in activation_types):
        return "float"
    if "INT16" in activation_types:
        return "int16"
    return "int8" if activation_types & _EIGHT_BIT else "other"


def _split_inputs(reader: FlatModel, g: int, op: Any) -> tuple[list[TensorRef], list[TensorRef]]:
    """(constant inputs, activation inputs) of an op; omitted optional inputs (-1) are skipped."""
    refs = [reader.ref(g, i) for i in op_inputs(op) if i >= 0]
    constants = [r for r in refs if reader.is_constant(r)]
    return constants, [r for r in refs if not reader.is_constant(r)]


def _reason(name: str, constants: list[TensorRef], activations: list[TensorRef], outputs: list[TensorRef],
            graph: _GraphFacts) -> str | None:
    """Why an op is float, where the file itself shows it (the converter records no reason)."""
    if name == "QUANTIZE" and any(r.index in graph.inputs for r in activations):
        return "quantizes the float model input"
    if name == "DEQUANTIZE" and not activations and constants:
        return f"dequantizes {constants[0].type_name.lower()} constant weights"
    if name == "DEQUANTIZE" and any(r.index in graph.outputs for r in outputs):
        return "dequantizes to the float model output"
    if name == "DEQUANTIZE":
        consumers = sorted({op for r in outputs for op in graph.consumers.get(r.index, [])})
        return f"dequantizes for {', '.join(consumers)}" if consumers else None
    quantized = [r.type_name.lower() for r in constants if r.type_name in _QUANTIZED_CONSTANTS]
    return f"hybrid: float activations, {quantized[0]} weights (dynamic range)" if quantized else None


@dataclass(frozen=True)
class _GraphFacts:
    inputs: set[int]
    outputs: set[int]
    consumers: dict[int, list[str]]  # tensor → names of the ops that read it


def _facts(reader: FlatModel, graph: Any) -> _GraphFacts:
    inputs, outputs = graph_io(graph)
    consumers: dict[int, list[str]] = {}
    for o in range(graph.OperatorsLength()):
        op = graph.Operators(o)
        for index in op_inputs(op):
            consumers.setdefault(index, []).append(reader.op_name(op))
    return _GraphFacts(set(inputs), set(outputs), consumers)


def classify_ops(reader: FlatModel) -> list[OpInfo]:
    """Every op of every subgraph, in order, with the precision it runs in."""
    infos = []
    for g, graph in reader.subgraphs():
        facts = _facts(reader, graph)
        for o in range(graph.OperatorsLength()):
            op = graph.Operators(o)
            name = reader.op_name(op)
            constants, activations = _split_inputs(reader, g, op)
            results = [reader.ref(g, i) for i in op_outputs(op) if i >= 0]
            kind = op_kind({r.type_name for r in activations + results})
            hybrid = kind == "float" and any(r.type_name in _QUANTIZED_CONSTANTS for r in constants)
            reason = _reason(name, constants, activations, results, facts) if kind == "float" else None
            infos.append(OpInfo(name, kind, hybrid, results[0].name if results else "", reason))
    return infos


def _op_table(infos: list[OpInfo]) -> dict[str, OpCounts]:
    """Per op type: count, how many run in each precision, how many are hybrid; most frequent first."""
    table: dict[str, dict[str, int]] = {}
    for info in infos:
        row = table.setdefault(info.op, {"count": 0, **dict.fromkeys(KINDS, 0), "hybrid": 0})
        row["count"] += 1
        row[info.kind] += 1
        row["hybrid"] += int(info.hybrid)
    ordered = sorted(table.items(), key=lambda item: (-item[1]["count"], item[0]))
    return {op: cast(OpCounts, row) for op, row in ordered}  # count, KINDS and hybrid: OpCounts' keys


def _float_groups(infos: list[OpInfo]) -> list[FloatGroup]:
    """The float ops grouped by (op type, reason), with a few output tensor names each."""
    groups: dict[tuple[str, str | None], list[str]] = {}
    for info in infos:
        if info.kind == "float":
            groups.setdefault((info.op, info.reason), []).append(info.output)
    rows: list[FloatGroup] = [{"op": op, "count": len(names), "reason": reason, "outputs": names[:3]}
            for (op, reason), names in groups.items()]
    return sorted(rows, key=lambda row: -row["count"])[:_LISTED]


def _float_io(reader: FlatModel) -> list[str]:
    """The model's float inputs and outputs (subgraph 0: what the caller feeds and reads)."""
    if reader.model.SubgraphsLength() == 0:
        return []
    inputs, outputs = graph_io(reader.model.Subgraphs(0))
    found = []
    for where, indices in (("input", inputs), ("output", outputs)):
        refs = [reader.ref(0, i) for i in indices]
        found += [f"{where} {r.name} is {r.type_name.lower()}" for r in refs if is_float_type(r.type_name)]
    return found


def _buffer_roles(reader: FlatModel) -> dict[int, str]:
    """Buffer index → its role; weights win over biases over other constants."""
    roles: dict[int, str] = {}
    for g, graph in reader.subgraphs():
        for t in range(graph.TensorsLength()):
            roles.setdefault(graph.Tensors(t).Buffer(), "constants")
        producers = tensor_producers(graph)
        for o in range(graph.OperatorsLength()):
            op = graph.Operators(o)
            inputs = op_inputs(op)
            index = BIAS_INPUTS.get(reader.op_name(op), len(inputs))
            if index < len(inputs) and inputs[index] >= 0:
                roles[stored_kernel(reader, g, inputs[index], producers).tensor.Buffer()] = "biases"
    for _, ref, _ in kernel_inputs(reader):
        roles[ref.tensor.Buffer()] = "weights"
    roles.update(dict.fromkeys(reader.metadata_buffers, "metadata"))
    return roles


def _buffer_dtypes(reader: FlatModel) -> dict[int, str]:
    """Buffer index → the dtype of a tensor stored in it."""
    dtypes: dict[int, str] = {}
    for g, graph in reader.subgraphs():
        for t in range(graph.TensorsLength()):
            dtypes.setdefault(graph.Tensors(t).Buffer(), reader.ref(g, t).type_name.lower())
    return dtypes


def byte_counts(reader: FlatModel) -> tuple[dict[str, int], dict[str, int]]:
    """(bytes by dtype of the constant tensors, bytes by role over the whole file)."""
    roles, dtypes = _buffer_roles(reader), _buffer_dtypes(reader)
    by_dtype: Counter[str] = Counter()
    by_role: Counter[str] = Counter(dict.fromkeys(("weights", "biases", "constants", "metadata"), 0))
    for index in range(1, reader.model.BuffersLength()):
        size = reader.buffer_size(index)
        if size and index in roles:
            by_role[roles[index]] += size
            if roles[index] != "metadata":
                by_dtype[dtypes.get(index, "?")] += size
    by_role["associated_files"] = appended_zip_bytes(reader.data)
    by_role["structure"] = len(reader.data) - sum(by_role.values())
    return dict(by_dtype.most_common()), dict(by_role)


def appended_zip_bytes(data: bytes) -> int:
    """Bytes of a zip appended to the file (TFLite Metadata's associated files: label maps, vocabularies)."""
    import io
    import zipfile

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            offsets = [info.header_offset for info in archive.infolist()]
    except (zipfile.BadZipFile, OSError, ValueError):
        return 0
    return len(data) - min(offsets) if offsets and min(offsets) > 0 else 0


def audit_bytes(data: bytes) -> Audit:
    """The audit of a model held in memory (see the module docstring for what each field means)."""
    reader = FlatModel(data)
    infos = classify_ops(reader)
    kinds = Counter(info.kind for info in infos)
    float_groups = _float_groups(infos)
    float_io = _float_io(reader)
    by_dtype, by_role = byte_counts(reader)
    breakers = [f"{g['op']} ×{g['count']} runs in float" + (f" ({g['reason']})" if g["reason"] else "")
                for g in float_groups] + float_io
    return {
        "op_count": len(infos),
        "ops_by_kind": {kind: kinds.get(kind, 0) for kind in KINDS},
        "hybrid_ops": sum(info.hybrid for info in infos),
        "ops": _op_table(infos),
        "stayed_float": float_groups if kinds.get("int8") or kinds.get("int16") else [],
        "integer_only": not kinds.get("float") and not float_io,
        "integer_only_breakers": breakers[:_LISTED],
        "bytes_by_dtype": by_dtype,
        "bytes_by_role": by_role,
        "file_bytes": len(data),
        "buffer_layout": layout(data),
    }


def audit(tflite_path: str | Path) -> Audit:
    """The audit of a .tflite file: ops by precision, bytes by dtype and role, integer-only or not."""
    return audit_bytes(Path(tflite_path).read_bytes())
