"""The one place that reads (and writes) .tflite flatbuffers, whatever the buffer layout.

A buffer's bytes live either inline (`Buffer.data`) or, in the layout current converters and
metadata tools write for large models, after the flatbuffer (`Buffer.offset`/`Buffer.size`,
offsets from the start of the file; TFLite treats offsets of 0 and 1 as "no offset"). Readers
here always resolve both, so the normalizer, the weight statistics and the audit see the same
bytes. Everything goes through the schema classes that ship with LiteRT
(`ai_edge_litert.schema_py_generated`) and its `flatbuffer_utils`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import numpy as np

from harness.errors import HarnessError

Layout = Literal["inline", "offset", "mixed", "none"]
IDENTIFIER = b"TFL3"
_ALIGN = 16  # what the converter aligns buffers after the flatbuffer to
_FLOATS = {"FLOAT32", "FLOAT16", "FLOAT64", "BFLOAT16", "COMPLEX64", "COMPLEX128"}
_NUMPY = {
    "FLOAT32": np.float32, "FLOAT16": np.float16, "FLOAT64": np.float64, "INT8": np.int8, "UINT8": np.uint8,
    "INT16": np.int16, "UINT16": np.uint16, "INT32": np.int32, "UINT32": np.uint32, "INT64": np.int64,
    "UINT64": np.uint64, "BOOL": np.bool_, "INT4": np.uint8,
}


def schema() -> Any:
    from ai_edge_litert import schema_py_generated

    return schema_py_generated


def enum_names(enum: type) -> dict[int, str]:
    """Value → name of a flatc-generated enum class."""
    return {value: name for name, value in vars(enum).items() if not name.startswith("_") and isinstance(value, int)}


def is_float_type(type_name: str) -> bool:
    return type_name in _FLOATS


def numpy_dtype(type_name: str) -> np.dtype:
    """The little-endian numpy dtype of a TensorType name whose elements are whole bytes."""
    if type_name not in _NUMPY or type_name == "INT4":
        raise HarnessError(f"no numpy dtype for {type_name} tensors")
    return np.dtype(_NUMPY[type_name]).newbyteorder("<")


def is_tflite(data: bytes) -> bool:
    return data[4:8] == IDENTIFIER


def check_tflite_file(model: Path) -> None:
    """`model` is a readable file starting like a TFLite flatbuffer (its TFL3 identifier), else one
    HarnessError naming it (the runtime would report a flatbuffer ValueError from deep inside)."""
    if not model.exists():
        raise HarnessError(f"{model}: no such file")
    if not model.is_file():
        raise HarnessError(f"{model}: not a file (give a .tflite model file)")
    try:
        with open(model, "rb") as handle:
            head = handle.read(8)
    except OSError as exc:
        raise HarnessError(f"cannot read {model}: {exc.strerror}") from None
    if not is_tflite(head):
        raise HarnessError(f"{model}: not a TFLite model (no TFL3 flatbuffer identifier)")


def _has_offset(offset: int) -> bool:
    return offset > 1  # TFLite's rule (0: inline, 1: the converter's placeholder for an empty buffer)


def _check_bounds(data: bytes, offset: int, size: int) -> None:
    if offset + size > len(data):
        raise HarnessError(f"a buffer at offset {offset} (+{size} bytes) lies beyond the file ({len(data)} bytes)")


def resolve(data: bytes, offset: int, size: int, inline: bytes | None) -> bytes | None:
    """A buffer's bytes from either layout (None when it holds none)."""
    if _has_offset(offset):
        _check_bounds(data, offset, size)
        return bytes(data[offset:offset + size])
    return inline if inline else None


def layout(data: bytes) -> Layout:
    """How the file stores its non-empty buffers."""
    model = schema().Model.GetRootAs(data, 0)
    kinds: set[Layout] = set()
    for index in range(model.BuffersLength()):
        buffer = model.Buffers(index)
        if _has_offset(buffer.Offset()) and buffer.Size():
            kinds.add("offset")
        elif buffer.DataLength():
            kinds.add("inline")
    return "mixed" if len(kinds) == 2 else (kinds.pop() if kinds else "none")


def read_object(data: bytes) -> Any:
    """The model as LiteRT's object API (`ModelT`), every buffer's bytes inline in `buffer.data`."""
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(data))
    for buffer in model.buffers or []:  # resolved with the same rule as the read-only view below
        raw = resolve(data, buffer.offset, buffer.size, None)
        if raw is not None:
            buffer.data = np.frombuffer(raw, dtype=np.uint8)
        buffer.offset = buffer.size = 0
    for op in (op for g in model.subgraphs or [] for op in g.operators or []):
        if op.largeCustomOptionsOffset:  # custom options after the flatbuffer (as LiteRT's own reader does)
            options = resolve(data, op.largeCustomOptionsOffset, op.largeCustomOptionsSize, None) or b""
            op.customOptions = list(options)
            op.largeCustomOptionsOffset = op.largeCustomOptionsSize = 0
    return _mutable_lists(model)


def _mutable_lists(model: Any) -> Any:
    """Index arrays (op inputs, shapes) as mutable lists, as LiteRT's own reader leaves them."""
    from ai_edge_litert.tools import flatbuffer_utils

    buffers, model.buffers = model.buffers, None
    flatbuffer_utils._ndarrays_to_lists(model)  # noqa: SLF001 - LiteRT's helper for exactly this
    model.buffers = buffers
    return model


def write_object(model: Any, buffer_layout: Literal["inline", "offset"] = "inline") -> bytes:
    """Serialize a `ModelT`: buffers inline, or after the flatbuffer at 16-byte aligned offsets."""
    from ai_edge_litert.tools import flatbuffer_utils

    if buffer_layout == "inline":
        return bytes(flatbuffer_utils.convert_object_to_bytearray(model))
    payloads = [bytes(b.data) if b.data is not None and len(b.data) else b"" for b in model.buffers]
    for buffer, payload in zip(model.buffers, payloads, strict=True):
        buffer.data, buffer.offset, buffer.size = None, (2 if payload else 0), len(payload)  # placeholders
    head = bytes(flatbuffer_utils.convert_object_to_bytearray(model))  # fixed-width fields: same size below
    tail, position = bytearray(), _aligned(len(head))
    for buffer, payload in zip(model.buffers, payloads, strict=True):
        if payload:
            tail += bytes(position - len(head) - len(tail)) + payload
            buffer.offset, position = position, _aligned(position + len(payload))
    final = bytes(flatbuffer_utils.convert_object_to_bytearray(model))
    assert len(final) == len(head), "offsets changed the flatbuffer's size"
    head = final
    for buffer, payload in zip(model.buffers, payloads, strict=True):  # leave the object as it was
        buffer.data, buffer.offset, buffer.size = (np.frombuffer(payload, np.uint8) if payload else None), 0, 0
    return head + bytes(tail)


def _aligned(position: int) -> int:
    return (position + _ALIGN - 1) // _ALIGN * _ALIGN


@dataclass(frozen=True)
class TensorRef:
    """One tensor of one subgraph, with what the reader knows about it."""

    subgraph: int
    index: int
    tensor: Any  # schema_py_generated.Tensor (read-only view)
    type_name: str

    @property
    def name(self) -> str:
        raw = self.tensor.Name()
        return raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw or "")

    @property
    def shape(self) -> list[int]:
        return [int(d) for d in self.tensor.ShapeAsNumpy()] if self.tensor.ShapeLength() else []


class FlatModel:
    """A read-only view of a .tflite (no copy of its buffers): opcodes, tensors, constants."""

    def __init__(self, data: bytes) -> None:
        if not is_tflite(data):
            raise HarnessError("not a TFLite flatbuffer (no TFL3 identifier)")
        self.data = data
        self.schema = schema()
        self.model = self.schema.Model.GetRootAs(data, 0)
        self.types = enum_names(self.schema.TensorType)
        operators = enum_names(self.schema.BuiltinOperator)
        self.opcodes = [self._opcode_name(i, operators) for i in range(self.model.OperatorCodesLength())]

    def _opcode_name(self, index: int, operators: dict[int, str]) -> str:
        code = self.model.OperatorCodes(index)
        # old files keep the code in `deprecated_builtin_code` (an int8); the larger of the two is right
        number = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        custom = code.CustomCode()
        return custom.decode() if custom else operators.get(number, str(number))

    def buffer_bytes(self, index: int) -> bytes | None:
        """The bytes of buffer `index`, inline or after the flatbuffer (None when empty)."""
        if index <= 0 or index >= self.model.BuffersLength():
            return None
        buffer = self.model.Buffers(index)
        inline = buffer.DataAsNumpy().tobytes() if buffer.DataLength() else None
        return resolve(self.data, buffer.Offset(), buffer.Size(), inline)

    def buffer_size(self, index: int) -> int:
        """How many bytes buffer `index` holds, in either layout, without copying them."""
        if index <= 0 or index >= self.model.BuffersLength():
            return 0
        buffer = self.model.Buffers(index)
        if not _has_offset(buffer.Offset()):
            return buffer.DataLength()
        _check_bounds(self.data, buffer.Offset(), buffer.Size())
        return buffer.Size()

    def subgraphs(self) -> Iterator[tuple[int, Any]]:
        for g in range(self.model.SubgraphsLength()):
            yield g, self.model.Subgraphs(g)

    def ref(self, g: int, index: int) -> TensorRef:
        tensor = self.model.Subgraphs(g).Tensors(index)
        return TensorRef(g, index, tensor, self.types.get(tensor.Type(), "?"))

    def op_name(self, op: Any) -> str:
        return self.opcodes[op.OpcodeIndex()]

    def is_constant(self, ref: TensorRef) -> bool:
        return self.buffer_size(ref.tensor.Buffer()) > 0

    def constant(self, ref: TensorRef) -> np.ndarray | None:
        """A constant tensor's values, flat (None when it has no data in the file or an unknown type)."""
        raw = self.buffer_bytes(ref.tensor.Buffer())
        dtype = _NUMPY.get(ref.type_name)
        if raw is None or dtype is None:
            return None
        values: np.ndarray = np.frombuffer(raw, dtype=dtype)
        if ref.type_name == "INT4":  # two's-complement nibbles, low nibble first
            low, high = (values & 0x0F).astype(np.int8), (values >> 4).astype(np.int8)
            values = np.stack([low, high], axis=1).reshape(-1)
            values = np.where(values > 7, values - 16, values).astype(np.int8)
        return values

    @cached_property
    def metadata_buffers(self) -> dict[int, str]:
        """Buffer index → metadata name (min_runtime_version, TFLITE_METADATA, ...)."""
        entries = (self.model.Metadata(i) for i in range(self.model.MetadataLength()))
        return {m.Buffer(): (m.Name() or b"").decode(errors="replace") for m in entries}


def op_inputs(op: Any) -> list[int]:
    return [int(i) for i in op.InputsAsNumpy()] if op.InputsLength() else []


def op_outputs(op: Any) -> list[int]:
    return [int(i) for i in op.OutputsAsNumpy()] if op.OutputsLength() else []


def graph_io(graph: Any) -> tuple[list[int], list[int]]:
    inputs = [int(i) for i in graph.InputsAsNumpy()] if graph.InputsLength() else []
    outputs = [int(i) for i in graph.OutputsAsNumpy()] if graph.OutputsLength() else []
    return inputs, outputs
