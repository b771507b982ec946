"""A synthetic big suite for the report's size and speed bound: models × schemes cells, no models trained."""

from __future__ import annotations

from typing import Any

import numpy as np

from tests.report.runs import cell, with_verdicts

SCHEMES = ("float32", "dynamic_range", "float16", "int8", "int16x8", "int8_only", "qat", "prune", "cluster",
           "prune+qat", "cluster+qat", "prune+cluster", "prune+int8", "cluster+int8", "prune+dynamic_range",
           "cluster+dynamic_range", "prune+float16", "cluster+float16", "prune+int16x8", "cluster+int16x8",
           "prune+int8_only", "cluster+int8_only", "prune+cluster+qat", "int8_pc", "int8_uint8io")


def big_suite(models: int = 40, schemes: int = 25, samples: int = 1000) -> list[dict[str, Any]]:
    """`models` × `schemes` records with bounded latency samples, repeats, weights and an audit each."""
    rng = np.random.default_rng(14)
    records = []
    for m in range(models):
        model = f"model_{m:02d}" if m else "<b>model_00</b>"
        for s, scheme in enumerate(SCHEMES[:schemes]):
            base = scheme == "float32"
            record = cell(model, scheme, top1=0.9 if base else float(0.9 - abs(rng.normal(0, 0.012))),
                          size_bytes=4_000_000 if base else int(rng.uniform(0.2, 0.6) * 4_000_000),
                          latency_ms=10.0 if base else float(rng.uniform(0.3, 1.5) * 10.0), seed=m * 100 + s,
                          samples=samples)
            record["scheme_kind"] = scheme if scheme not in ("int8_pc", "int8_uint8io") else "int8"
            record["latency_ms"]["repeat_medians"] = [record["latency_ms"]["median"] * f for f in (0.99, 1.0, 1.01)]
            record["latency_ms"]["repeats"] = 3
            record["weights"] = _weights()
            record["audit"] = _audit(base)
            records.append(record)
    return with_verdicts(records)


def _weights() -> dict[str, Any]:
    layers = [{"layer": f"conv_{i}", "op": "CONV_2D", "dtype": "int8", "shape": [32, 3, 3, 32], "weights": 9216,
               "zeros": 100, "sparsity": 0.01, "unique": 255, "unique_per_channel_max": 200, "sparse_encoded": False}
              for i in range(6)]
    return {"layers": layers, "weights": 55296, "zeros": 600, "sparsity": 0.01, "max_unique": 255,
            "max_unique_per_channel": 200}


def _audit(base: bool) -> dict[str, Any]:
    kind = "float" if base else "int8"
    ops = {op: {"count": 2, "float": 2 if base else 0, "int8": 0 if base else 2, "int16": 0, "other": 0, "hybrid": 0}
           for op in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "ADD", "MEAN", "SOFTMAX")}
    return {"op_count": 12, "ops_by_kind": {"float": 12 if base else 0, "int8": 0 if base else 12, "int16": 0,
                                            "other": 0}, "hybrid_ops": 0, "ops": ops, "stayed_float": [],
            "integer_only": not base, "integer_only_breakers": [], "bytes_by_dtype": {kind: 55296, "int32": 1024},
            "bytes_by_role": {"weights": 55296, "biases": 1024, "constants": 0, "metadata": 0, "structure": 4000},
            "file_bytes": 60320, "buffer_layout": "offset"}
