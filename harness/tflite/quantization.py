"""What quantization really did: per op, read back from the produced .tflite, against what was asked.

Every op's weights (its kernel, followed back through DEQUANTIZE/DENSIFY) are read as their
stored type and bits (`int8`, `int4` — TensorType INT4 —, `int2`, `float16`, ...), their
granularity (`tensorwise`: one scale, `channelwise`: a scale per output channel, `blockwise`:
BlockwiseQuantization details with their block size) and the op's activations as the precision it
runs in (harness.tflite.audit: float, int8, int16). A scheme states what it asks (an `Ask` per
targeted op); `quantization_record` compares: an op is quantized *as asked* when its weights
have the asked bits (and granularity and block size when asked), its buffer holds no more bits
per weight than that (`stored_bits` is recorded when it does), and its activations the asked
precision. Targeted ops whose weights stayed float (or, for static recipes, whose activations
did) are `left_float`, with the quantizer's reason where it gives one; other mismatches are
`not_as_asked`. `coverage` is the share of targeted ops quantized as asked: the metric
`recipe_coverage`. A silent no-op (a recipe the quantizer skips for an op without a word) shows
as a coverage below 1 naming the ops.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

from harness.record import Quantization
from harness.tflite._flatbuffer import (
    FlatModel,
    TensorRef,
    is_float_type,
    op_inputs,
    op_outputs,
)
from harness.tflite.audit import op_kind
from harness.tflite.weights import WEIGHT_OPS, stored_kernel, tensor_producers

Granularity = Literal["tensorwise", "channelwise", "blockwise"]
# ops with a constant weight input (input index) beyond the kernel ops of harness.tflite.weights
_MORE_WEIGHT_OPS = {"BATCH_MATMUL": 1, "EMBEDDING_LOOKUP": 1}
_BITS = {"INT2": 2, "INT4": 4, "UINT4": 4, "INT8": 8, "UINT8": 8, "INT16": 16, "FLOAT16": 16, "BFLOAT16": 16,
         "FLOAT32": 32, "INT32": 32, "FLOAT64": 64}
_INSERTED = {"QUANTIZE", "DEQUANTIZE"}
_LISTED = 50  # left_float / not_as_asked entries kept in the record


@dataclass(frozen=True)
class OpQuant:
    """One op as the file holds it."""

    op: str
    outputs: tuple[str, ...]
    weights: str | None  # the stored kernel's dtype, lower case; None: the op has no constant weights
    bits: int | None
    granularity: Granularity | None  # None: weights not quantized (float) or no weights
    block_size: int | None
    activations: str  # float | int8 | int16 | other
    elements: int = 0  # weights in the kernel
    results: str = "float"  # the precision of its outputs alone (`other`: shapes, indices)
    stored_bits: int | None = None  # bits per weight the kernel's buffer really holds (None: not measured)

    @property
    def name(self) -> str:
        return self.outputs[0] if self.outputs else ""

    @property
    def weights_quantized(self) -> bool:
        return self.weights is not None and not is_float_type(self.weights.upper())

    @property
    def packed(self) -> bool:
        """The buffer holds no more bits per weight than the type says (LiteRT reads INT4 as packed nibbles)."""
        return self.stored_bits is None or self.bits is None or self.stored_bits <= self.bits

    def row(self) -> dict[str, Any]:
        row = {"op": self.op, "output": self.name, "weights": self.weights, "bits": self.bits,
               "granularity": self.granularity, "block_size": self.block_size, "activations": self.activations}
        return row if self.packed else {**row, "stored_bits": self.stored_bits}

    def describe(self) -> str:
        weights = "no weights" if self.weights is None else f"{self.weights} weights"
        if self.granularity is not None:
            weights += f" {self.granularity}" + (f"-{self.block_size}" if self.block_size else "")
        if not self.packed:
            weights += f" stored with {self.stored_bits} bits per weight"
        return f"{weights}, {self.activations} activations"


@dataclass(frozen=True)
class Ask:
    """What a scheme asks of one op: weight bits (None: weights untouched), granularity and block
    size (None: any), activation precision (`float` for weight-only and dynamic recipes)."""

    weights_bits: int | None
    weights_float: bool = False  # float16 casting
    granularity: Granularity | None = None
    block_size: int | None = None
    activations: str = "float"
    algorithm: str | None = None
    dynamic: bool = False  # float activations quantized on the fly (integer compute), not weight-only

    @property
    def static(self) -> bool:
        return self.activations != "float"

    def describe(self) -> str:
        parts = []
        if self.weights_bits is not None:
            kind = "float" if self.weights_float else "int"
            parts.append(f"{kind}{self.weights_bits} weights" + (f" {self.granularity}" if self.granularity else "")
                         + (f"-{self.block_size}" if self.block_size else ""))
        parts.append("dynamic activations" if self.dynamic else f"{self.activations} activations")
        return ", ".join(parts) + (f" ({self.algorithm})" if self.algorithm else "")

    def met_by(self, op: OpQuant) -> bool:
        """The op is quantized as asked."""
        return self._weights_met(op) and (op.activations == self.activations or op.activations == "other")

    def _weights_met(self, op: OpQuant) -> bool:
        if self.weights_bits is None or op.weights is None:
            return True
        if not op.packed:
            return False
        if self.weights_float:
            return op.weights.startswith("float") and op.bits == self.weights_bits
        return (op.weights_quantized and op.bits == self.weights_bits
                and self.granularity in (None, op.granularity) and self.block_size in (None, op.block_size))

    def applies_to(self, op: OpQuant) -> bool:
        """Whether asking this of `op` (as read from the float model) can change it: weights asked of
        an op with constant weights, activations of an op that computes on real numbers (not only on
        shapes and indices)."""
        return (self.weights_bits is not None and op.weights is not None) or (
            self.static and op.results != "other")


@dataclass(frozen=True)
class Target:
    """A targeted op of the float model: what was asked, and the quantizer's reason if it refuses."""

    op: OpQuant
    ask: Ask
    refusal: str | None = None


def _granularity(ref: TensorRef) -> tuple[Granularity | None, int | None]:
    quantization = ref.tensor.Quantization()
    if quantization is None:
        return None, None
    from harness.tflite._flatbuffer import schema

    if quantization.DetailsType() == schema().QuantizationDetails.BlockwiseQuantization:
        details = schema().BlockwiseQuantization()
        table = quantization.Details()
        details.Init(table.Bytes, table.Pos)
        return "blockwise", int(details.BlockSize())
    scales = quantization.ScaleLength()
    if scales == 0:
        return None, None
    return ("channelwise" if scales > 1 else "tensorwise"), None


def _weight_index(name: str) -> int | None:
    return WEIGHT_OPS[name][0] if name in WEIGHT_OPS else _MORE_WEIGHT_OPS.get(name)


def _kernel(reader: FlatModel, g: int, op: Any, producers: dict[int, Any]) -> TensorRef | None:
    """The constant weight tensor an op reads (through DEQUANTIZE/DENSIFY), None without one."""
    index = _weight_index(reader.op_name(op))
    inputs = op_inputs(op)
    if index is None or index >= len(inputs) or inputs[index] < 0:
        return None
    ref = stored_kernel(reader, g, inputs[index], producers)
    return ref if reader.is_constant(ref) else None


def _activation_kind(reader: FlatModel, g: int, op: Any, skip: int | None) -> str:
    """The precision the op computes in (its non-constant inputs and outputs), the weight input aside."""
    inputs = [i for k, i in enumerate(op_inputs(op)) if i >= 0 and k != skip]
    refs = [reader.ref(g, i) for i in inputs] + [reader.ref(g, i) for i in op_outputs(op) if i >= 0]
    return op_kind({r.type_name for r in refs if not reader.is_constant(r)})


def read_ops(data: bytes) -> list[OpQuant]:
    """Every op of every subgraph, in order, with its weights and activations as stored."""
    reader = FlatModel(data)
    ops = []
    for g, graph in reader.subgraphs():
        producers = tensor_producers(graph)
        for o in range(graph.OperatorsLength()):
            op = graph.Operators(o)
            ops.append(_op_quant(reader, g, op, producers))
    return ops


def _op_quant(reader: FlatModel, g: int, op: Any, producers: dict[int, Any]) -> OpQuant:
    name = reader.op_name(op)
    kernel = _kernel(reader, g, op, producers)
    outputs = tuple(reader.ref(g, i).name for i in op_outputs(op) if i >= 0)
    activations = _activation_kind(reader, g, op, _weight_index(name))
    results = op_kind({reader.ref(g, i).type_name for i in op_outputs(op) if i >= 0})
    if kernel is None:
        return OpQuant(name, outputs, None, None, None, None, activations, 0, results)
    granularity, block = _granularity(kernel)
    quantized = not is_float_type(kernel.type_name)
    elements = math.prod(kernel.shape)
    size = reader.buffer_size(kernel.tensor.Buffer())
    stored = round(size * 8 / elements) if elements and kernel.tensor.Sparsity() is None else None
    return OpQuant(name, outputs, kernel.type_name.lower(), _BITS.get(kernel.type_name),
                   granularity if quantized else None, block if quantized else None, activations, elements, results,
                   stored)


def original_ops(ops: Sequence[OpQuant]) -> list[OpQuant]:
    """The ops a quantizer works on: QUANTIZE/DEQUANTIZE are what it inserts."""
    return [op for op in ops if op.op not in _INSERTED]


def _producer_index(ops: Sequence[OpQuant], produced_data: bytes) -> Callable[[OpQuant], OpQuant | None]:
    """Finds a float model's op in the produced model: the op of the same type writing one of its
    output names, or the op behind a QUANTIZE/DEQUANTIZE that now writes the name."""
    by_output = {name: op for op in ops for name in op.outputs}
    inputs_of = _first_inputs(produced_data)

    def find(float_op: OpQuant) -> OpQuant | None:
        for name in float_op.outputs:
            found, hops = by_output.get(name), 0
            while found is not None and found.op in _INSERTED and float_op.op not in _INSERTED and hops < 4:
                found, hops = by_output.get(inputs_of.get(found.name, "")), hops + 1
            if found is not None and found.op == float_op.op:
                return found
        return None

    return find


def _first_inputs(data: bytes) -> dict[str, str]:
    """First output name → first input name of every QUANTIZE/DEQUANTIZE op."""
    reader = FlatModel(data)
    links = {}
    for g, graph in reader.subgraphs():
        for o in range(graph.OperatorsLength()):
            op = graph.Operators(o)
            ins, outs = op_inputs(op), op_outputs(op)
            if reader.op_name(op) in _INSERTED and ins and outs:
                links[reader.ref(g, outs[0]).name] = reader.ref(g, ins[0]).name
    return links


def quantization_record(produced: bytes, targets: Sequence[Target], rules: Sequence[str],
                        note: str | None = None) -> Quantization:
    """The record's `quantization`: per op as read back, the targeted ops, those left float or
    quantized otherwise than asked, and `coverage` (None when nothing was targeted: `note` says why)."""
    ops = read_ops(produced)
    find = _producer_index(ops, produced)
    left, other, met = [], [], 0
    for target in targets:
        got = find(target.op)
        if got is not None and target.ask.met_by(got):
            met += 1
        elif got is None or _stayed_float(target.ask, got):
            left.append(_entry(target, got))
        else:
            other.append({**_entry(target, got), "got": got.describe()})
    coverage = met / len(targets) if targets else None
    record = {"rules": list(rules), "ops": [op.row() for op in original_ops(ops)], "targeted": len(targets),
              "as_asked": met, "coverage": coverage, "left_float": left[:_LISTED], "not_as_asked": other[:_LISTED],
              "note": note if coverage is not None or note else "the scheme targeted no op of this model"}
    return cast(Quantization, record)


def _stayed_float(ask: Ask, got: OpQuant) -> bool:
    weights_float = ask.weights_bits is not None and got.weights is not None and not got.weights_quantized \
        and not ask.weights_float
    return weights_float or (ask.static and got.activations == "float")


def _entry(target: Target, got: OpQuant | None) -> dict[str, Any]:
    reason = target.refusal if got is not None else "the op is not in the produced model"
    return {"op": target.op.op, "output": target.op.name, "asked": target.ask.describe(), "reason": reason}


def targets_for(ops: Sequence[OpQuant], ask: Ask | None) -> list[Target]:
    """One ask for every op it can change (a scheme that asks the same of every op)."""
    if ask is None:
        return []
    return [Target(op, ask) for op in original_ops(ops) if ask.applies_to(op)]


def missed_ops(record: Quantization, listed: int = 8) -> str:
    """`CONV_2D conv1 (left float: reason), ...` — a quantization record's targeted ops not quantized as asked."""
    entries = [(e, "left float") for e in record.get("left_float") or []]
    entries += [(e, f"got {e.get('got')}") for e in record.get("not_as_asked") or []]
    shown = [f"{e['op']} {e['output']} ({what}" + (f": {e['reason']}" if e.get("reason") else "") + ")"
             for e, what in entries[:listed]]
    more = len(entries) - listed
    return "; ".join(shown) + (f"; and {more} more" if more > 0 else "")
