"""A model whose every intermediate tensor can be read after `invoke`, whatever runs it.

`experimental_preserve_all_tensors` keeps intermediate tensors only for ops the interpreter runs
itself; inside a delegate's partition (XNNPACK, which also runs MediaPipe's custom ops) they are
never written. A tensor that is a model output is written by whoever computes it, so here every
op output of the main subgraph is appended to its outputs: diagnose then reads each tensor under
the same op resolver (and kernels) as evaluation.
"""

from __future__ import annotations

from harness.tflite._flatbuffer import read_object, write_object


def every_op_output(data: bytes) -> bytes:
    """The model with every op output of subgraph 0 also a model output (its own outputs first)."""
    model = read_object(data)
    graph = model.subgraphs[0]
    outputs = list(graph.outputs or [])
    listed = set(outputs)
    for op in graph.operators or []:
        for index in op.outputs or []:
            if index >= 0 and index not in listed:
                outputs.append(index)
                listed.add(index)
    graph.outputs = outputs
    return write_object(model)
