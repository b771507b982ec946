"""The simulated phone's delegates: which ops of a model each one takes, and the log lines the
real tool prints for it (a full or partial delegation, a delegate that takes nothing, a failure).

The simulated GPU runs float ops only, XNNPACK float and int8 ones; neither takes the shape ops
or SIN; the simulator has no NNAPI (it fails to apply, as on a device without a driver). Nodes
are taken in execution order, so a run of unsupported ops splits the graph into partitions."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.tflite._flatbuffer import FlatModel
from harness.tflite.audit import classify_ops

_UNSUPPORTED = {"SHAPE", "STRIDED_SLICE", "PACK", "SIN", "CUSTOM"}
_KINDS = {"gpu": {"float"}, "xnnpack": {"float", "int8"}}
_NAMES = {"gpu": ("GPU", "TfLiteGpuDelegateV2"), "xnnpack": ("XNNPACK", "TfLiteXNNPackDelegate"),
          "nnapi": ("NNAPI", "TfLiteNnapiDelegate")}


@dataclass(frozen=True)
class Delegation:
    replaced: int
    total: int
    partitions: int


def delegation(model: Path, delegate: str) -> Delegation:
    """The nodes `delegate` takes in the model's main graph, and in how many partitions."""
    reader = FlatModel(model.read_bytes())
    main = reader.model.Subgraphs(0).OperatorsLength() if reader.model.SubgraphsLength() else 0
    taken = [info.kind in _KINDS[delegate] and not info.hybrid and info.op not in _UNSUPPORTED
             for info in classify_ops(reader)[:main]]
    partitions = sum(1 for i, t in enumerate(taken) if t and (i == 0 or not taken[i - 1]))
    return Delegation(sum(taken), len(taken), partitions)


def delegate_lines(model: Path, delegate: str) -> tuple[list[str], bool]:
    """(log lines with their level prefix, whether the tool fails) for an explicitly asked delegate."""
    label, kernel = _NAMES[delegate]
    if delegate == "nnapi":
        return ["INFO: NNAPI delegate created.", "ERROR: Failed to apply NNAPI delegate."], True
    lines = [f"INFO: Created TensorFlow Lite delegate for {label}." if delegate == "gpu"
             else "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."]
    taken = delegation(model, delegate)
    if taken.replaced == 0:
        return lines + [f"INFO: Though {label} delegate is explicitly applied, the model graph will not be "
                        "executed by the delegate."], False
    lines.append(f"VERBOSE: Replacing {taken.replaced} out of {taken.total} node(s) with delegate ({kernel}) node, "
                 f"yielding {taken.partitions} partitions for the whole graph.")
    coverage = "completely" if taken.replaced == taken.total else "partially"
    lines.append(f"INFO: Explicitly applied {label} delegate, and the model graph will be {coverage} executed by "
                 f"the delegate w/ {taken.partitions} delegate kernels.")
    return lines, False
