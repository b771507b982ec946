"""Sparse constants (the TFLite sparsity format) back to dense arrays.

A sparse tensor stores only its nonzero values, in the order of a traversal of its dimensions:
`traversal_order` permutes the original dimensions followed by `block_map`'s block dimensions (a
blocked dimension d of size n is split into n / b blocks, then a block dimension of size b), and each
traversed dimension is DENSE (`dense_size` entries) or SPARSE_CSR (`array_segments[p]..[p+1]` are the
positions of the entries under parent position p, `array_indices` their coordinates). This is what
TFLite's `FormatConverter::SparseToDense` (the DENSIFY kernel) computes, walked level by level with
numpy instead of element by element.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from harness.errors import HarnessError

_DENSE, _SPARSE_CSR = 0, 1


@dataclass
class _Walk:
    """The leaves reached so far: each one's position in the current level and its coordinates per level."""

    positions: np.ndarray
    coordinates: list[np.ndarray]


def _index_vector(vector: Any, name: str) -> np.ndarray:
    values = getattr(vector, "values", None)
    if values is None:
        raise HarnessError(f"a SPARSE_CSR dimension has no {name}")
    return np.asarray(values, dtype=np.int64)


def _dense_level(walk: _Walk, size: int) -> _Walk:
    """Every parent gets `size` children, coordinates 0..size-1."""
    count = len(walk.positions)
    children = np.tile(np.arange(size, dtype=np.int64), count)
    return _Walk(np.repeat(walk.positions * size, size) + children,
                 [np.repeat(c, size) for c in walk.coordinates] + [children])


def _sparse_level(walk: _Walk, metadata: Any) -> _Walk:
    """Each parent p gets the entries array_segments[p] .. array_segments[p + 1], at their array_indices."""
    segments = _index_vector(metadata.arraySegments, "array_segments")
    indices = _index_vector(metadata.arrayIndices, "array_indices")
    if walk.positions.size and (walk.positions.max() + 1 >= len(segments) or segments[-1] > len(indices)
                                or np.any(np.diff(segments) < 0)):
        raise HarnessError("a SPARSE_CSR dimension's array_segments do not fit its parents or its array_indices")
    starts, counts = segments[walk.positions], segments[walk.positions + 1] - segments[walk.positions]
    first = np.repeat(np.cumsum(counts) - counts, counts)
    positions = np.repeat(starts, counts) + np.arange(int(counts.sum()), dtype=np.int64) - first
    return _Walk(positions, [np.repeat(c, counts) for c in walk.coordinates] + [indices[positions]])


def _original_coordinates(walk: _Walk, shape: list[int], order: list[int], block_map: list[int],
                          block_sizes: list[int]) -> list[np.ndarray]:
    """Per original dimension, each leaf's coordinate: block index × block size + index in the block."""
    rank = len(shape)
    result: list[np.ndarray] = [np.zeros(0, np.int64)] * rank
    for level, dim in enumerate(order[:rank]):
        result[dim] = walk.coordinates[level]
    for level, dim in enumerate(order[rank:], start=rank):
        block = dim - rank
        result[block_map[block]] = result[block_map[block]] * block_sizes[block] + walk.coordinates[level]
    return result


def densify(values: np.ndarray, shape: list[int], sparsity: Any) -> np.ndarray:
    """The dense array (of `shape`) a sparse tensor's stored `values` and `sparsity` parameters describe."""
    rank, order = len(shape), [int(d) for d in sparsity.traversalOrder]
    block_map = [int(d) for d in sparsity.blockMap] if sparsity.blockMap is not None else []
    metadata = sparsity.dimMetadata or []
    if len(order) != rank + len(block_map) or len(metadata) != len(order) or sorted(order) != list(range(len(order))):
        raise HarnessError(f"sparsity parameters do not fit a tensor of shape {shape}: traversal_order {order}, "
                           f"block_map {block_map}, {len(metadata)} dim_metadata")
    block_sizes = [int(metadata[order.index(rank + b)].denseSize) for b in range(len(block_map))]
    walk = _Walk(np.zeros(1, np.int64), [])
    for entry in metadata:
        walk = _dense_level(walk, int(entry.denseSize)) if entry.format == _DENSE else _sparse_level(walk, entry)
    if len(walk.positions) != values.size:
        raise HarnessError(f"sparsity parameters address {len(walk.positions)} values, the buffer holds {values.size}")
    coordinates = _original_coordinates(walk, shape, order, block_map, block_sizes)
    if any(c.size and (c.min() < 0 or c.max() >= size) for c, size in zip(coordinates, shape)):
        raise HarnessError(f"sparsity parameters address coordinates outside the tensor's shape {shape}")
    dense = np.zeros(shape, dtype=values.dtype)
    dense[tuple(coordinates)] = values.reshape(-1)
    return dense
