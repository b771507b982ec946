"""`float_layers` names checked against the model they are to keep float in.

A name that matches nothing would leave the model plain int8 while the suite says some layers
are float: both routes match names against op output tensor names, so every name must match
one, or the cell fails naming the unmatched names and the closest names the model has.
- litert-quantizer (`.tflite` sources): a `no_quantize` rule per name, matched as a regex
  against each op's scope (its output tensor names, each followed by ";"), `scope_pattern`.
- TFLiteConverter (QuantizationDebugger `denylisted_nodes`): an op's output tensor name, exactly.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence

from harness.errors import HarnessError
from harness.tflite._flatbuffer import FlatModel, op_outputs

CANDIDATES = 3


def scope_pattern(name: str) -> str:
    """The regex of litert-quantizer's `no_quantize` rule for the op producing tensor `name`."""
    return f"(^|;){re.escape(name)};"


def op_output_names(model: bytes) -> list[list[str]]:
    """Per op (every subgraph, in order), the names of its output tensors."""
    reader = FlatModel(model)
    names = []
    for g, graph in reader.subgraphs():
        for k in range(graph.OperatorsLength()):
            names.append([reader.ref(g, i).name for i in op_outputs(graph.Operators(k)) if i >= 0])
    return names


def check_scope_names(names: Sequence[str], model: bytes) -> None:
    """Every name matches some op's scope as litert-quantizer matches it (`.tflite` sources)."""
    ops = op_output_names(model)
    scopes = [";".join(outputs) + ";" for outputs in ops if outputs]
    unmatched = [n for n in names if not any(re.search(scope_pattern(n), s) for s in scopes)]
    _fail_on(unmatched, sorted({part for outputs in ops for name in outputs for part in (name, *name.split(";"))}))


def check_tensor_names(names: Sequence[str], model: bytes) -> None:
    """Every name is some op's output tensor name (TFLiteConverter's `denylisted_nodes`)."""
    known = {name for outputs in op_output_names(model) for name in outputs}
    _fail_on([n for n in names if n not in known], sorted(known))


def _fail_on(unmatched: list[str], known: list[str]) -> None:
    if not unmatched:
        return
    hints = "; ".join(f"{name!r}: {_close(name, known)}" for name in unmatched)
    raise HarnessError(f"float_layers: {len(unmatched)} name(s) match no op output tensor of the model, so "
                       f"nothing would be kept float for them ({hints}); `bench diagnose` lists the tensor names")


def _close(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=CANDIDATES, cutoff=0.4)
    return f"closest {', '.join(repr(c) for c in close)}" if close else "nothing close"
