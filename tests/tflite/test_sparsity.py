"""Densifying sparse constants, checked against LiteRT's own DENSIFY kernel: random matrices are stored in
the TFLite sparsity format (CSR rows, sparse rows and columns, column-major traversal, 2-D blocks) in a
one-op model, and `densify` must give exactly what LiteRT computes; the normalizer then removes DENSIFY."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.errors import HarnessError
from harness.tflite._flatbuffer import FlatModel, read_object, schema, write_object
from harness.tflite.normalize import normalize, not_float, old_style_traits
from harness.tflite.sparsity import densify


def _vector(values: list[int]) -> object:
    vector = schema().Int32VectorT()
    vector.values = list(values)
    return vector


def _dimension(dense_size: int | None = None, segments: list[int] | None = None,
               indices: list[int] | None = None) -> object:
    entry = schema().DimensionMetadataT()
    if segments is None:
        entry.format, entry.denseSize = schema().DimensionType.DENSE, dense_size
        return entry
    entry.format = schema().DimensionType.SPARSE_CSR
    entry.arraySegmentsType = entry.arrayIndicesType = schema().SparseIndexVector.Int32Vector
    entry.arraySegments, entry.arrayIndices = _vector(segments), _vector(indices or [])
    return entry


def _csr(mask: np.ndarray) -> tuple[list[int], list[int]]:
    """Segments and indices of a 2-D boolean mask, row by row."""
    segments = [0, *np.cumsum(mask.sum(axis=1)).tolist()]
    return segments, [int(i) for row in mask for i in np.flatnonzero(row)]


def encode(matrix: np.ndarray, layout: str, block: tuple[int, int] = (1, 1)) -> tuple[np.ndarray, object]:
    """A 2-D matrix's stored values and sparsity parameters: `rows` (dense rows, CSR columns), `both`
    (CSR rows, then CSR columns), `columns` (traversal order [1, 0]) or `blocks` (CSR over blocks)."""
    sparsity = schema().SparsityParametersT()
    if layout == "columns":
        matrix = matrix.T
    if layout in ("rows", "columns"):
        segments, indices = _csr(matrix != 0)
        sparsity.traversalOrder = [1, 0] if layout == "columns" else [0, 1]
        sparsity.dimMetadata = [_dimension(matrix.shape[0]), _dimension(segments=segments, indices=indices)]
        return matrix[matrix != 0], sparsity
    if layout == "both":
        rows = np.flatnonzero((matrix != 0).any(axis=1))
        segments, indices = _csr(matrix[rows] != 0)
        sparsity.traversalOrder = [0, 1]
        sparsity.dimMetadata = [_dimension(segments=[0, len(rows)], indices=rows.tolist()),
                                _dimension(segments=segments, indices=indices)]
        return matrix[matrix != 0], sparsity
    (rows, cols), (br, bc) = matrix.shape, block
    tiles = matrix.reshape(rows // br, br, cols // bc, bc).transpose(0, 2, 1, 3)  # [block row, block col, br, bc]
    kept = (tiles != 0).any(axis=(2, 3))
    segments, indices = _csr(kept)
    sparsity.traversalOrder, sparsity.blockMap = [0, 1, 2, 3], [0, 1]
    sparsity.dimMetadata = [_dimension(rows // br), _dimension(segments=segments, indices=indices),
                            _dimension(br), _dimension(bc)]
    return tiles[kept].reshape(-1), sparsity


def _tensor(name: str, shape: list[int], buffer: int, sparsity: object | None = None) -> object:
    tensor = schema().TensorT()
    tensor.name, tensor.shape, tensor.type, tensor.buffer = name, shape, schema().TensorType.FLOAT32, buffer
    tensor.sparsity = sparsity
    return tensor


def _opcode(code: int) -> object:
    entry = schema().OperatorCodeT()
    entry.builtinCode, entry.deprecatedBuiltinCode, entry.version = code, min(code, 127), 1
    return entry


def _operator(opcode: int, inputs: list[int], outputs: list[int]) -> object:
    op = schema().OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = opcode, inputs, outputs
    return op


def densify_model(values: np.ndarray, sparsity: object, shape: list[int]) -> bytes:
    """output = input + DENSIFY(sparse constant): LiteRT computes the dense matrix itself."""
    s = schema()
    buffers = [s.BufferT() for _ in range(5)]
    buffers[1].data = np.frombuffer(values.astype("<f4").tobytes(), np.uint8)
    graph = s.SubGraphT()
    graph.tensors = [_tensor("sparse", shape, 1, sparsity), _tensor("dense", shape, 2),
                     _tensor("input", shape, 3), _tensor("output", shape, 4)]
    graph.inputs, graph.outputs = [2], [3]
    add = _operator(1, [2, 1], [3])
    add.builtinOptionsType, add.builtinOptions = s.BuiltinOptions.AddOptions, s.AddOptionsT()
    graph.operators = [_operator(0, [0], [1]), add]
    model = s.ModelT()
    model.version, model.buffers, model.subgraphs = 3, buffers, [graph]
    model.operatorCodes = [_opcode(s.BuiltinOperator.DENSIFY), _opcode(s.BuiltinOperator.ADD)]
    return write_object(model)


def litert_dense(data: bytes, shape: list[int]) -> np.ndarray:
    from harness.tflite.runtime import load_interpreter

    interpreter = load_interpreter(data)
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], np.zeros(shape, np.float32))
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


@st.composite
def sparse_matrices(draw: st.DrawFn) -> tuple[np.ndarray, str, tuple[int, int]]:
    layout = draw(st.sampled_from(["rows", "both", "columns", "blocks"]))
    block = (draw(st.sampled_from([1, 2, 4])), draw(st.sampled_from([1, 2, 4]))) if layout == "blocks" else (1, 1)
    rows, cols = draw(st.integers(1, 4)) * block[0], draw(st.integers(1, 5)) * block[1]
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    keep = rng.random((rows, cols)) < draw(st.sampled_from([0.0, 0.2, 0.6, 1.0]))
    return np.where(keep, rng.integers(1, 100, (rows, cols)) / 8.0, 0).astype(np.float32), layout, block


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sparse_matrices())
def test_densify_equals_litert_densify(case: tuple[np.ndarray, str, tuple[int, int]]) -> None:
    matrix, layout, block = case
    values, sparsity = encode(matrix, layout, block)
    shape = list(matrix.shape)
    mine = densify(values, shape, sparsity)
    np.testing.assert_array_equal(mine, litert_dense(densify_model(values, sparsity, shape), shape))
    np.testing.assert_array_equal(mine, matrix)


def test_normalizer_removes_densify_and_keeps_the_outputs() -> None:
    matrix = np.arange(24, dtype=np.float32).reshape(4, 6) * (np.arange(24).reshape(4, 6) % 3 == 0)
    values, sparsity = encode(matrix, "blocks", (2, 3))
    data = densify_model(values, sparsity, [4, 6])
    assert old_style_traits(data) == {"sparse_constants_densified": 1, "signature_added": 1}
    rewritten, changes = normalize(data)  # checks the outputs on a probe input itself
    reader = FlatModel(rewritten)
    assert Counter(reader.op_name(g.Operators(i)) for _, g in reader.subgraphs() for i in range(g.OperatorsLength())) \
        == Counter({"ADD": 1})
    assert all(t.sparsity is None for t in read_object(rewritten).subgraphs[0].tensors)
    np.testing.assert_array_equal(litert_dense(rewritten, [4, 6]), matrix)
    assert not_float(rewritten) == {} and changes["tensors_removed"] == 1


def test_parameters_that_do_not_fit_are_refused() -> None:
    values, sparsity = encode(np.eye(3, dtype=np.float32), "rows")
    with pytest.raises(HarnessError, match="address 3 values, the buffer holds 2"):
        densify(values[:2], [3, 3], sparsity)
    with pytest.raises(HarnessError, match="do not fit a tensor of shape"):
        densify(values, [3, 3, 1], sparsity)
    sparsity.dimMetadata[1].arrayIndices = _vector([0, 1, 7])
    with pytest.raises(HarnessError, match="outside the tensor's shape"):
        densify(values, [3, 3], sparsity)
