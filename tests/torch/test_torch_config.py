"""The suite schema of torch sources, and their bad input as one error line (no conversion here: fast)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.cache import ArtifactCache
from harness.config.schema import ModelSpec, TorchInput
from harness.errors import HarnessError
from harness.models.source import detect_format, resolve_source
from tests.conftest import run_bench

HERE = Path(__file__).parent
TINY = HERE / "tiny_torch.py"


def suite(tmp_path: Path, model: str) -> Path:
    path = tmp_path / "suite.yaml"
    path.write_text(f"""datasets:
  images: {{kind: synthetic, count: 4}}
models:
  - {model}
task: {{kind: fidelity, dataset: images}}
schemes: [float32, qat]
""")
    return path


def test_input_shape_forms() -> None:
    one = ModelSpec.model_validate({"torch": {"module": "m.py", "factory": "f", "input_shape": [1, 3, 8, 8]}})
    assert one.torch is not None and one.torch.inputs == [(None, TorchInput(shape=[1, 3, 8, 8]))]
    several = ModelSpec.model_validate({"torch": {"module": "m.py", "factory": "f", "input_shape": [
        [1, 4], {"shape": [1, 2], "dtype": "int64"}]}})
    assert several.torch is not None and [(n, i.dtype) for n, i in several.torch.inputs] == [
        (None, "float32"), (None, "int64")]
    named = ModelSpec.model_validate({"torch": {"module": "m.py", "factory": "f", "input_shape": {
        "tokens": {"shape": [1, 16], "dtype": "int32"}, "mask": [1, 16]}}})
    assert named.torch is not None and [n for n, _ in named.torch.inputs] == ["tokens", "mask"]
    assert named.label == "f" and not named.has_keras_model
    assert not ModelSpec.model_validate({"path": "m.pt2"}).has_keras_model
    assert detect_format(Path("model.pt2")) == "torch"


@pytest.mark.parametrize(("model", "message"), [
    ("{torch: {module: m.py, factory: f, input_shape: [1, 8]}, path: x.pt2}", "give exactly one of"),
    ("{torch: {module: nowhere.py, factory: f, input_shape: [1, 8]}}", "models[0].torch.module"),
    ("{torch: {module: m.py, factory: 'os.system', input_shape: [1, 8]}}", "models[0].torch.factory"),
    ("{torch: {module: m.py, factory: f, input_shape: [1, 0, 8]}}", "every dimension must be >= 1"),
    ("{torch: {module: m.py, factory: f, input_shape: []}}", "give at least one input"),
    ("{torch: {module: m.py, factory: f, input_shape: [1, 8]}, train: {dataset: images}}", "`train` applies"),
    ("{torch: {module: m.py, factory: f, input_shape: [1, 8]}, baseline: as_is}", "baseline: as_is"),
])
def test_bad_torch_entries_are_one_line(tmp_path: Path, model: str, message: str) -> None:
    (tmp_path / "m.py").write_text("def f():\n    pass\n")
    done = run_bench("validate", str(suite(tmp_path, model)))
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr + done.stdout


def test_a_torch_model_needs_no_finetune_data(tmp_path: Path) -> None:
    """Training-time schemes are n/a for a torch model (as for a .tflite file): no fine-tuning data asked for."""
    (tmp_path / "m.py").write_text("def f():\n    pass\n")
    done = run_bench("validate", str(suite(tmp_path, "{torch: {module: m.py, factory: f, input_shape: [1, 8]}}")))
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(("factory", "message"), [
    ("missing", "defines no function 'missing'"),
    ("not_a_module", "not_a_module() returned a str, not a torch.nn.Module"),
])
def test_bad_factories_are_one_line(tmp_path: Path, factory: str, message: str) -> None:
    spec = ModelSpec.model_validate({"torch": {"module": str(TINY), "factory": factory, "input_shape": [1, 1, 8, 8]}})
    with pytest.raises(HarnessError) as caught:
        resolve_source(spec, None, tmp_path, ArtifactCache(tmp_path / "cache"), None)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_a_file_that_is_not_a_program_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "model.pt2").write_text("not a zip")
    spec = ModelSpec.model_validate({"path": "model.pt2"})
    with pytest.raises(HarnessError, match="not a torch.export program"):
        resolve_source(spec, None, tmp_path, ArtifactCache(tmp_path / "cache"), None)
