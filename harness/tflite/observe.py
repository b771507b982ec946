"""A model whose every intermediate activation can be read after `invoke`, whatever runs it.

`experimental_preserve_all_tensors` keeps intermediate tensors only for ops the interpreter runs
itself; inside a delegate's partition (XNNPACK, which also runs MediaPipe's custom ops) they are
never written. A tensor that is a model output is written by whoever computes it, so here every
op output of the main subgraph that depends on the model's inputs is appended to its outputs:
diagnose then reads each one under the same op resolver (and kernels) as evaluation. Outputs of ops
computed from constants alone (DEQUANTIZE of float16 weights) are not: XNNPACK folds them when it
loads the model and never writes them, even as model outputs.
"""

from __future__ import annotations

from typing import Any

from harness.tflite._flatbuffer import read_object, write_object


def _constant_tensors(model: Any, graph: Any) -> set[int]:
    """Tensors with data in the file, and the outputs of ops whose inputs are all such tensors."""
    constant = {i for i, t in enumerate(graph.tensors or [])
                if model.buffers[t.buffer].data is not None and len(model.buffers[t.buffer].data)}
    for op in graph.operators or []:  # execution order: an op's inputs are settled before it
        if all(i in constant for i in op.inputs or [] if i >= 0):
            constant.update(i for i in op.outputs or [] if i >= 0)
    return constant


def every_activation_output(data: bytes) -> bytes:
    """The model with every op output of subgraph 0 that depends on its inputs also a model output
    (its own outputs first)."""
    model = read_object(data)
    graph = model.subgraphs[0]
    constant = _constant_tensors(model, graph)
    outputs = list(graph.outputs or [])
    listed = set(outputs)
    for op in graph.operators or []:
        for index in op.outputs or []:
            if index >= 0 and index not in listed and index not in constant:
                outputs.append(index)
                listed.add(index)
    graph.outputs = outputs
    return write_object(model)
