"""weight_stats reads sparsity and distinct values back from .tflite files of every scheme."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from harness.schemes import SCHEMES
from harness.tflite.weights import weight_stats

VALUES = np.array([-0.5, -0.25, 0.25, 0.5], np.float32)


@pytest.fixture(scope="module")
def known(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, np.ndarray]]:
    """A SavedModel whose conv and dense kernels hold 4 values plus a known count of zeros."""
    import keras

    rng = np.random.default_rng(0)
    model = keras.Sequential([
        keras.Input((8, 8, 1)),
        keras.layers.Conv2D(8, 3, activation="relu", name="conv"),
        keras.layers.DepthwiseConv2D(3, name="depthwise"),
        keras.layers.Flatten(),
        keras.layers.Dense(64, name="dense"),   # 128 x 64 = 8,192 weights: quantized by dynamic range
        keras.layers.Dense(10, name="logits"),
    ])
    kernels = {}
    for layer in model.layers:
        weights = layer.get_weights()
        if weights:
            kernel = rng.choice(VALUES, size=weights[0].shape) * (rng.random(weights[0].shape) > 0.4)
            kernels[layer.name] = kernel.astype(np.float32)
            layer.set_weights([kernel.astype(np.float32), rng.uniform(-0.1, 0.1, weights[1].shape).astype(np.float32)])
    path = tmp_path_factory.mktemp("known") / "saved"
    model.export(str(path), format="tf_saved_model", verbose=False)
    return path, kernels


def stats_for(known, scheme: str, tmp_path: Path) -> dict:
    saved_model, _ = known
    implementation = SCHEMES.get(scheme)
    calibration = np.random.default_rng(1).uniform(0, 1, (16, 8, 8, 1)).astype(np.float32)
    data = implementation.from_saved_model(saved_model, implementation.Options(),
                                           calibration if implementation.needs_calibration else None)
    path = tmp_path / f"{scheme}.tflite"
    path.write_bytes(data)
    return weight_stats(path)


@pytest.mark.parametrize(("scheme", "dtypes"), [
    ("float32", {"float32"}),
    ("float16", {"float16"}),                     # kernels behind DEQUANTIZE ops
    ("dynamic_range", {"float32", "int8"}),       # only kernels of 1,024+ weights are quantized
    ("int8", {"int8"}),
])
def test_exact_zeros_and_distinct_values(known, tmp_path: Path, scheme: str, dtypes: set[str]) -> None:
    _, kernels = known
    stats = stats_for(known, scheme, tmp_path)
    assert [row["op"] for row in stats["layers"]] == ["CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED",
                                                      "FULLY_CONNECTED"]
    assert {row["dtype"] for row in stats["layers"]} == dtypes
    for row, (name, kernel) in zip(stats["layers"], kernels.items(), strict=True):
        assert row["weights"] == kernel.size, name
        assert row["zeros"] == int((kernel == 0).sum()), (scheme, name)
        assert row["unique_per_channel_max"] <= 5, (scheme, name)
        if row["dtype"] != "int8":  # int8 scales differ per channel: 5 values per channel, maybe more in all
            assert row["unique"] == len(np.unique(kernel)) == 5, (scheme, name)
        assert row["sparse_encoded"] is False
    total = sum(k.size for k in kernels.values())
    assert stats["weights"] == total
    assert stats["sparsity"] == pytest.approx(sum(int((k == 0).sum()) for k in kernels.values()) / total)
    assert stats["max_unique_per_channel"] == 5


def test_kernel_layouts_and_names(known, tmp_path: Path) -> None:
    stats = stats_for(known, "float32", tmp_path)
    shapes = {row["op"]: row["shape"] for row in stats["layers"]}
    assert shapes["CONV_2D"] == [8, 3, 3, 1]            # [out, h, w, in]
    assert shapes["DEPTHWISE_CONV_2D"] == [1, 3, 3, 8]  # [1, h, w, out]
    assert any("dense" in row["layer"] for row in stats["layers"])


def test_per_channel_distinct_values(tmp_path: Path) -> None:
    """Scaling each output channel (what batch-norm folding does) multiplies distinct values per
    kernel, not per channel."""
    import keras

    model = keras.Sequential([keras.Input((4, 4, 2)), keras.layers.Conv2D(6, 1, use_bias=False)])
    kernel = np.tile(np.array([0.5, -0.5], np.float32)[:, None], (1, 6))[None, None]   # (1, 1, 2, 6)
    model.layers[0].set_weights([kernel * (1 + np.arange(6, dtype=np.float32))])
    model.export(str(tmp_path / "sm"), format="tf_saved_model", verbose=False)
    path = tmp_path / "m.tflite"
    path.write_bytes(SCHEMES.get("float32").from_saved_model(tmp_path / "sm", SCHEMES.get("float32").Options(), None))
    row = weight_stats(path)["layers"][0]
    assert (row["unique"], row["unique_per_channel_max"]) == (12, 2)


def test_model_without_weight_layers(tmp_path: Path) -> None:
    import keras

    model = keras.Sequential([keras.Input((4,)), keras.layers.ReLU()])
    model.export(str(tmp_path / "sm"), format="tf_saved_model", verbose=False)
    path = tmp_path / "m.tflite"
    path.write_bytes(SCHEMES.get("float32").from_saved_model(tmp_path / "sm", SCHEMES.get("float32").Options(), None))
    assert weight_stats(path) == {"layers": [], "weights": 0, "zeros": 0, "sparsity": None, "max_unique": None,
                                  "max_unique_per_channel": None}
