"""Batched evaluation vs a per-image invoke loop like the TensorFlow tutorial's `evaluate_model`.

Run with `make benchmarks` for timings; in the normal test run each side runs once and the
speed-up is printed (never asserted: shared machines are noisy). Accuracy must be identical.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from harness.config.schema import TrainSpec
from harness.datasets import DATASETS
from harness.tflite.runtime import load_interpreter, predict

FASHION = Path("/usr/share/datasets/fashion-mnist")
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not FASHION.exists(), reason="dataset-fashion-mnist not installed")]


def per_image_accuracy(model: Path, images: np.ndarray, labels: np.ndarray) -> float:
    """The tutorial's loop: one image at a time, quantized in Python when the input is integer."""
    interpreter = load_interpreter(model)
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    predictions = np.zeros(len(images), dtype=np.int64)
    for i, image in enumerate(images):
        if np.dtype(inp["dtype"]).kind in "iu":
            scale, zero_point = inp["quantization"]
            image = np.round(image / scale + zero_point)
        interpreter.set_tensor(inp["index"], np.expand_dims(image, 0).astype(inp["dtype"]))
        interpreter.invoke()
        predictions[i] = interpreter.get_tensor(out["index"])[0].argmax()
    return float(np.mean(predictions == labels))


@pytest.fixture(scope="module")
def fashion_models(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Path], object]:
    import keras

    from harness.models import BUILDERS
    from harness.models.training import train
    from harness.schemes import SCHEMES

    loader = DATASETS.get("fashion_mnist")
    train_data = loader.load("train", loader.Options(split="train"), Path("."))
    test_data = loader.load("test", loader.Options(split="test"), Path("."))
    builder = BUILDERS.get("tutorial_cnn")
    model = builder.build(keras, builder.Options())  # the tutorial's 12-filter CNN
    train(model, keras, train_data, TrainSpec(dataset="train", epochs=1, limit=2_000))  # speed, not accuracy, is the point
    folder = tmp_path_factory.mktemp("fashion")
    model.export(str(folder / "saved"), format="tf_saved_model", verbose=False)
    paths = {}
    for name in ("float32", "int8_only"):
        scheme = SCHEMES.get(name)
        paths[name] = folder / f"{name}.tflite"
        paths[name].write_bytes(scheme.from_saved_model(folder / "saved", scheme.Options(), train_data.sample(200, 0)))
    return paths, test_data


@pytest.mark.parametrize("scheme", ["float32", "int8_only"])
def test_batched_evaluation_vs_per_image_loop(benchmark, fashion_models, scheme: str) -> None:
    paths, data = fashion_models
    assert len(data) == 10_000
    started = time.perf_counter()
    reference = per_image_accuracy(paths[scheme], data.x, data.y)
    loop_seconds = time.perf_counter() - started

    def batched() -> float:
        return float(np.mean(np.argmax(predict(paths[scheme], data.x, batch_size=256, num_threads=2)[0], 1) == data.y))

    accuracy = benchmark.pedantic(batched, rounds=5, iterations=1, warmup_rounds=1)
    assert accuracy == reference
    batched_seconds = benchmark.stats.stats.median if benchmark.stats else _time(batched)
    benchmark.extra_info.update(per_image_s=loop_seconds, speedup=loop_seconds / batched_seconds)
    print(f"\n{scheme}: accuracy {accuracy:.4f} both ways; per-image loop {loop_seconds:.3f} s, "
          f"batched {batched_seconds:.3f} s → {loop_seconds / batched_seconds:.1f}x faster")


def _time(function) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started
