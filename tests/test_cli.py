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
