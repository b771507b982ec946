"""Real MediaPipe models as they come (mediapipe 0.10.14's bundled .tflite files, read, never imported):
sparse float16 weights (DENSIFY → DEQUANTIZE) become a true float32 baseline whose outputs equal the
original's, and custom ops resolve wherever evaluation resolves them (diagnose, recover), or the model
fails in one line naming the op."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from harness.datasets import DATASETS
from harness.errors import HarnessError
from harness.models.paths import resolve_model_path
from harness.tflite._flatbuffer import read_object
from harness.tflite.normalize import normalize, not_float
from harness.tflite.runtime import UnresolvedOp, load_interpreter, predict
from harness.tflite.sparsity import densify


def mediapipe(name: str) -> Path:
    return resolve_model_path(f"package:mediapipe/modules/{name}.tflite", Path("."))


try:  # found without importing mediapipe (its dependencies are not installed)
    mediapipe("pose_detection/pose_detection")
except HarnessError:
    pytest.skip("make setup installs mediapipe's .tflite files", allow_module_level=True)


POSE = mediapipe("pose_detection/pose_detection")
FACE_SPARSE = mediapipe("face_detection/face_detection_full_range_sparse")
SELFIE = mediapipe("selfie_segmentation/selfie_segmentation")
FACE_ATTENTION = mediapipe("face_landmark/face_landmark_with_attention")
DENSIFY_MODELS = {"pose_detection": (POSE, 38, 224), "face_detection_full_range_sparse": (FACE_SPARSE, 46, 192)}


@pytest.mark.parametrize("name", DENSIFY_MODELS)
def test_densify_equals_litert_densify_on_every_sparse_weight(name: str) -> None:
    """Each sparse float16 constant densified here is bit for bit what LiteRT's DENSIFY op computes."""
    path, count, _ = DENSIFY_MODELS[name]
    interpreter = load_interpreter(path, builtin_kernels_only=True)  # keeps every tensor
    interpreter.invoke()
    model = read_object(path.read_bytes())
    graph = model.subgraphs[0]
    densify_ops = [op for op in interpreter._get_ops_details() if op["op_name"] == "DENSIFY"]  # noqa: SLF001
    assert len(densify_ops) == count
    for op in densify_ops:
        sparse = graph.tensors[op["inputs"][0]]
        values = np.frombuffer(bytes(model.buffers[sparse.buffer].data), "<f2")
        ours, theirs = densify(values, list(sparse.shape), sparse.sparsity), interpreter.get_tensor(op["outputs"][0])
        assert ours.shape == theirs.shape and np.array_equal(ours.view(np.uint16), theirs.view(np.uint16))


@pytest.mark.parametrize("name", DENSIFY_MODELS)
def test_normalized_sparse_model_is_float_and_gives_the_originals_outputs_on_real_images(
        name: str, tmp_path: Path) -> None:
    path, count, side = DENSIFY_MODELS[name]
    data, changes = normalize(path.read_bytes(), path.name)
    assert changes["sparse_constants_densified"] == count and not_float(data) == {}
    ops = {op["op_name"] for op in load_interpreter(data)._get_ops_details()}  # noqa: SLF001
    assert not ops & {"DENSIFY", "DEQUANTIZE"}
    normalized = tmp_path / "normalized.tflite"
    normalized.write_bytes(data)
    loader = DATASETS.get("face_scenes")
    options = loader.Options(scenes=3, seed=5, range=(-1, 1), image_size=(side, side), directory=str(tmp_path))
    images = loader.load("faces", options, Path(".")).x  # LFW faces on real textures, and the astronaut
    for before, after in zip(predict(path, images, batch_size=1), predict(normalized, images, batch_size=1),
                             strict=True):
        np.testing.assert_allclose(after, before, rtol=1e-5, atol=1e-5 * float(np.abs(before).max()))


def test_a_custom_op_nothing_resolves_is_named_in_one_line() -> None:
    with pytest.raises(UnresolvedOp) as raised:
        load_interpreter(FACE_ATTENTION)
    message = str(raised.value)
    assert "custom op Landmarks2TransformMatrix" in message and "face_landmark_with_attention.tflite" in message
    assert "\n" not in message
    assert isinstance(raised.value, HarnessError)  # a command prints it in one line, exit 2


def test_diagnose_reads_every_tensor_of_a_model_with_an_xnnpack_custom_op(tmp_path: Path) -> None:
    """selfie_segmentation's Convolution2DTransposeBias runs only in XNNPACK: its tensors are read as model
    outputs there, and on the part builtin kernels can also run they agree with the op-by-op values."""
    from harness.numerics.diagnose import needs_delegate, run_all_tensors

    assert needs_delegate(SELFIE)
    x = np.random.default_rng(0).uniform(0, 1, (2, 256, 256, 3)).astype(np.float32)
    tensors = run_all_tensors(SELFIE, x)
    assert tensors["segment"]["op"] == "Convolution2DTransposeBias"
    assert all(t["values"].shape[0] == 2 and np.isfinite(t["values"]).all() for t in tensors.values())
    # the same model cut before the custom op runs op by op: every activation agrees; only the float16
    # weights XNNPACK folds at load (DEQUANTIZE of a constant) are not read under the delegate
    builtin = run_all_tensors(_cut_before(SELFIE, "segment", tmp_path), x, kernels="builtin")  # op by op
    assert {builtin[name]["op"] for name in set(builtin) - set(tensors)} == {"DEQUANTIZE"}
    shared = set(builtin) & set(tensors)
    assert len(shared) > 100
    for name in shared:
        expected = builtin[name]["values"]
        np.testing.assert_allclose(tensors[name]["values"], expected, rtol=1e-4,
                                   atol=1e-4 * float(np.abs(expected).max()), err_msg=name)


def _cut_before(model: Path, tensor: str, tmp_path: Path) -> Path:
    """The model up to (not including) the op that produces `tensor`, whose inputs become its outputs."""
    from harness.tflite._flatbuffer import write_object

    flat = read_object(model.read_bytes())
    graph = flat.subgraphs[0]
    names = [t.name.decode() if isinstance(t.name, bytes) else t.name for t in graph.tensors]
    position = next(i for i, op in enumerate(graph.operators) if names[op.outputs[0]] == tensor)
    cut = graph.operators[position]
    graph.operators = graph.operators[:position]
    graph.outputs = [i for i in cut.inputs if i >= 0 and any(i in op.outputs for op in graph.operators)]
    flat.signatureDefs = None
    path = tmp_path / "cut.tflite"
    path.write_bytes(write_object(flat))
    return path


SUITE = """
name: mediapipe_test
datasets:
  noise: {kind: synthetic, count: 3, low: -1, high: 1}    # every input, shaped by the model's signature
models:
  - {name: pose_detection, path: "package:mediapipe/modules/pose_detection/pose_detection.tflite",
     schemes: [float32, float16, dynamic_range, int8]}
  - {name: face_sparse, path: "package:mediapipe/modules/face_detection/face_detection_full_range_sparse.tflite",
     schemes: [float32, float16, dynamic_range, int8]}
  - {name: selfie, path: "package:mediapipe/modules/selfie_segmentation/selfie_segmentation.tflite",
     schemes: [float32, int8, int8_recover]}
  - {name: face_attention, path: "package:mediapipe/modules/face_landmark/face_landmark_with_attention.tflite",
     schemes: [float32]}
task: {kind: fidelity, dataset: noise, batch_size: 1}
calibration: {dataset: noise, samples: 3}
schemes:
  - float32
  - float16
  - dynamic_range
  - int8
  - {scheme: int8, id: int8_recover, recover: {metric: snr_db, min: 100, max_float_layers: 2, latency_runs: 0}}
devices: [local]
latency: {float_pairs: 0, warmup_runs: 0, num_runs: 1, min_secs: 0}
"""


@pytest.fixture(scope="module")
def mediapipe_run(tmp_path_factory: pytest.TempPathFactory, session_cache: Path) -> tuple[Path, dict[str, dict]]:
    from harness.results import read_results
    from tests.conftest import run_bench

    directory = tmp_path_factory.mktemp("mediapipe")
    (directory / "suite.yaml").write_text(SUITE)
    done = run_bench("run", str(directory / "suite.yaml"), "--out", str(directory / "run"), "--cache",
                     str(session_cache), "--no-history", timeout=1800)
    assert "Traceback" not in done.stdout + done.stderr
    records = {f"{r['model']}/{r['scheme']}": r for r in read_results(directory / "run")}
    return directory / "run", records


@pytest.mark.slow
@pytest.mark.parametrize("model", ["pose_detection", "face_sparse"])
def test_densify_models_get_a_float_baseline_and_every_scheme(mediapipe_run: tuple[Path, dict], model: str) -> None:
    _, records = mediapipe_run
    baseline = records[f"{model}/float32"]
    assert baseline["status"] == "ok", baseline["error"]
    assert set(baseline["audit"]["bytes_by_dtype"]) == {"float32", "int32"}  # no float16 bytes left
    for scheme in ("float16", "dynamic_range", "int8"):
        assert records[f"{model}/{scheme}"]["status"] == "ok", records[f"{model}/{scheme}"]["error"]
    assert records[f"{model}/float16"]["size_bytes"] <= 0.55 * baseline["size_bytes"]


@pytest.mark.slow
def test_recover_and_diagnose_work_on_selfie_segmentation(mediapipe_run: tuple[Path, dict]) -> None:
    from tests.conftest import run_bench

    run_dir, records = mediapipe_run
    recovered = records["selfie/int8_recover"]
    assert recovered["status"] == "ok", recovered["error"]
    assert len(recovered["recovery"]["steps"]) >= 2 and recovered["recovery"]["ranking"]
    done = run_bench("diagnose", str(run_dir), "selfie/int8", "--samples", "2")
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stdout + done.stderr
    result = json.loads((run_dir / "diagnose" / "selfie__int8__local.json").read_text())
    assert "Convolution2DTransposeBias" in {row["op"] for row in result["layers"]}
    assert result["cross_check"]["agrees"], result["cross_check"]


@pytest.mark.slow
def test_a_model_with_unresolvable_custom_ops_is_n_a_naming_the_op(mediapipe_run: tuple[Path, dict]) -> None:
    _, records = mediapipe_run
    failed = records["face_attention/float32"]
    assert failed["status"] == "n/a" and "\n" not in failed["error"]  # no resolver has the op: not applicable here
    assert "custom op Landmarks2TransformMatrix" in failed["error"]
