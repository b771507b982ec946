"""Suite files: valid ones load; every kind of mistake names file, line and field."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from harness.errors import ConfigError
from harness.suite import load_suite
from tests.conftest import DATA, run_bench

VALID = """\
name: t
datasets:
  train: {kind: digits, split: train}
  test: {kind: digits, split: test}
models:
  - builder: tutorial_cnn
    input_shape: [8, 8, 1]
    train: {dataset: train, epochs: 1}
task: {kind: classification, dataset: test}
calibration: {dataset: train, samples: 8}
schemes: [float32, int8, {scheme: int8_only, id: u8, io: uint8}]
thresholds:
  defaults:
    top1: {max_abs_drop: 0.01}
  overrides:
    - schemes: [u8]
      top1: {max_abs_drop: 0.05}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "suite.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def error_for(tmp_path: Path, text: str) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load_suite(write(tmp_path, text))
    return caught.value


def test_valid_suite_loads_with_options(tmp_path: Path) -> None:
    loaded = load_suite(write(tmp_path, VALID))
    assert loaded.name == "t"
    assert [s.label for s in loaded.suite.schemes] == ["float32", "int8", "u8"]
    assert loaded.scheme_options["u8"].io == "uint8"
    assert loaded.builder_options["tutorial_cnn"].input_shape == (8, 8, 1)
    assert loaded.dataset_options["train"].split == "train"


def test_shipped_suites_are_valid() -> None:
    for path in [*(DATA.parent.parent / "suites").glob("*.yaml"), DATA / "tiny.yaml"]:
        load_suite(path)


@pytest.mark.parametrize(
    ("old", "new", "line", "field", "message"),
    [
        ("    train: {dataset: train, epochs: 1}", "    train: {dataset: train, epochz: 1}",
         8, "models[0].train.epochz", "unknown key"),
        ("    train: {dataset: train, epochs: 1}", "    train: {dataset: train, epochs: many}",
         8, "models[0].train.epochs", "integer"),
        ("schemes: [float32, int8,", "schemes: [float32, int9,",
         11, "schemes[1].scheme", "unknown scheme 'int9'; did you mean int8"),
        ("  - builder: tutorial_cnn", "  - builder: tutorial_cnm", 6, "models[0].builder", "unknown model builder"),
        ("    input_shape: [8, 8, 1]", "    input_shap: [8, 8, 1]", 7, "models[0].input_shap", "unknown key"),
        ("task: {kind: classification, dataset: test}", "task: {kind: classification, dataset: tset}",
         9, "task.dataset", "unknown dataset 'tset'"),
        ("task: {kind: classification,", "task: {kind: segmentation,", 9, "task.kind", "unknown task"),
        ("  test: {kind: digits, split: test}", "  test: {kind: digits, split: val}",
         4, "datasets.test.split", "'train' or 'test'"),
        ("  test: {kind: digits, split: test}", "  test: {kind: cifar, split: test}",
         4, "datasets.test.kind", "unknown dataset kind"),
        ("{scheme: int8_only, id: u8, io: uint8}", "{scheme: int8_only, id: u8, io: int4}",
         11, "schemes[2].io", "'int8' or 'uint8'"),
        ("{scheme: int8_only, id: u8, io: uint8}", "{scheme: int8_only, id: int8}", 11, "schemes[2]", "appears twice"),
        ("    top1: {max_abs_drop: 0.01}", "    top2: {max_abs_drop: 0.01}", 14, "thresholds.defaults.top2", "unknown metric"),
        ("      top1: {max_abs_drop: 0.05}", "      top1: {max_abs_dorp: 0.05}",
         17, "thresholds.overrides[0].top1.max_abs_dorp", "unknown key"),
        ("name: t", "name: t\ncolour: red", 2, "colour", "unknown key"),
        ("dataset: test}", "dataset: test, decoder: ssd}", 9, "task.decoder", "unknown key"),
        ("{scheme: int8_only, id: u8, io: uint8}", "{scheme: float16, calibration: {dataset: train}}", 11,
         "schemes[2].calibration", "full-integer schemes only"),
        ("{scheme: int8_only, id: u8, io: uint8}", "{scheme: int8_only, id: u8, calibration: {dataset: noise}}", 11,
         "schemes[2].calibration.dataset", "unknown dataset 'noise'"),
    ],
)
def test_mistakes_name_line_and_field(tmp_path: Path, old: str, new: str, line: int, field: str, message: str) -> None:
    assert old in VALID
    error = error_for(tmp_path, VALID.replace(old, new))
    assert (error.line, error.field) == (line, field), str(error)
    assert message in error.message
    assert str(error).startswith(f"{tmp_path / 'suite.yaml'}:{line}: {field}: ")


def test_malformed_yaml_names_the_line(tmp_path: Path) -> None:
    error = error_for(tmp_path, VALID.replace("schemes: [float32, int8,", "schemes: [float32, int8"))
    assert error.line is not None and "malformed YAML" in error.message


def test_duplicate_key_is_an_error(tmp_path: Path) -> None:
    error = error_for(tmp_path, VALID.replace("name: t\n", "name: t\nname: u\n"))
    assert (error.line, error.field) == (2, "name") and "duplicate key" in error.message


def test_missing_required_field(tmp_path: Path) -> None:
    error = error_for(tmp_path, VALID.replace("  test: {kind: digits, split: test}", "  test: {split: test}"))
    assert (error.line, error.field) == (4, "datasets.test.kind")
    assert "missing" in error.message


def test_model_needs_exactly_one_source(tmp_path: Path) -> None:
    error = error_for(tmp_path, VALID.replace("  - builder: tutorial_cnn", "  - builder: tutorial_cnn\n    path: m.tflite"))
    assert error.field == "models[0]" and "exactly one" in error.message


def test_missing_model_file(tmp_path: Path) -> None:
    text = VALID.replace("  - builder: tutorial_cnn\n    input_shape: [8, 8, 1]\n    train: {dataset: train, epochs: 1}\n",
                         "  - path: nowhere.tflite\n")
    error = error_for(tmp_path, text)
    assert error.field == "models[0].path" and "does not exist" in error.message


def test_calibration_required_by_int8(tmp_path: Path) -> None:
    error = error_for(tmp_path, VALID.replace("calibration: {dataset: train, samples: 8}\n", ""))
    assert "needs calibration" in error.message


def test_scheme_entry_brings_its_own_calibration(tmp_path: Path) -> None:
    text = VALID.replace("calibration: {dataset: train, samples: 8}\n", "").replace(
        "schemes: [float32, int8, {scheme: int8_only, id: u8, io: uint8}]",
        "schemes: [float32, {scheme: int8, id: int8_test, calibration: {dataset: test, samples: 4}}]")
    loaded = load_suite(write(tmp_path, text))
    model, scheme = loaded.suite.models[0], loaded.suite.schemes[1]
    assert loaded.calibration_for(model, scheme).dataset == "test"
    assert loaded.calibration_for(model, loaded.suite.schemes[0]) is None


def test_not_a_mapping(tmp_path: Path) -> None:
    error = error_for(tmp_path, "- just\n- a list\n")
    assert "mapping" in error.message


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read suite"):
        load_suite(tmp_path / "missing.yaml")


def test_cli_prints_one_line_and_exits_2(tmp_path: Path) -> None:
    path = write(tmp_path, VALID.replace("epochs: 1}", "epochs: 1, colour: red}"))
    for command in (["validate", str(path)], ["run", str(path), "--reports", str(tmp_path / "r")]):
        done = run_bench(*command)
        assert done.returncode == 2
        assert "Traceback" not in done.stderr + done.stdout
        assert f"{path}:8: models[0].train.colour: unknown key" in " ".join(done.stderr.split())


def test_cli_unknown_device_profile(tmp_path: Path) -> None:
    path = write(tmp_path, VALID + "devices: [pixel9]\n")
    done = run_bench("run", str(path), "--reports", str(tmp_path / "r"))
    assert done.returncode == 2 and "no device profile 'pixel9'" in done.stderr


def test_model_scheme_filter_plans_fewer_cells(tmp_path: Path) -> None:
    from harness.runner import plan_cells

    with_schemes = VALID.replace("    input_shape: [8, 8, 1]\n", "    input_shape: [8, 8, 1]\n    schemes: [int8]\n")
    loaded = load_suite(write(tmp_path, with_schemes))
    assert [c.scheme.label for c in plan_cells(loaded)] == ["float32", "int8"]
    assert len(plan_cells(loaded, only=["*/int8"])) == 2


def test_model_scheme_filter_must_match(tmp_path: Path) -> None:
    with_schemes = VALID.replace("    input_shape: [8, 8, 1]\n", "    input_shape: [8, 8, 1]\n    schemes: [int4]\n")
    error = error_for(tmp_path, with_schemes)
    assert (error.line, error.field) == (8, "models[0].schemes[0]") and "matches none" in error.message
