"""`bench diagnose` on bad input: one clear line and exit 2, never a traceback (issue 20, item 14).

The run folders here are written by hand (records of a tiny suite whose model files are empty
files with the recorded sha256): every case stops before anything would be converted or run.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest

from harness.plan import cell_key, plan_cells
from harness.suite import load_suite
from tests.conftest import DATA, run_bench

CELL = "digits_cnn/int8"


def write_run(folder: Path, with_keys: bool = True) -> Path:
    """A run of tests/data/tiny.yaml (copied into `folder`) with a finished float32 and int8 cell."""
    folder.mkdir(exist_ok=True)
    suite = folder / "suite.yaml"
    suite.write_text((DATA / "tiny.yaml").read_text())
    keys = {c.id: cell_key(load_suite(suite), c) for c in plan_cells(load_suite(suite))}
    run = folder / "run"
    run.mkdir()
    lines = []
    for scheme in ("float32", "int8"):
        model = folder / f"{scheme}.tflite"
        model.write_bytes(scheme.encode())
        artifact = {"path": str(model), "sha256": hashlib.sha256(model.read_bytes()).hexdigest(),
                    "source": str(folder / "digits_cnn.keras")}
        record = {"model": "digits_cnn", "scheme": scheme, "device": "local", "status": "ok",
                  "scheme_kind": scheme, "artifact": artifact}
        if with_keys:
            record["cell_key"] = keys[f"digits_cnn/{scheme}@local"]
        lines.append(json.dumps(record) + "\n")
    (run / "results.jsonl").write_text("".join(lines))
    (run / "run.json").write_text(json.dumps({"suite": "tiny", "suite_path": str(suite), "started_at": "now"}))
    return run


def assert_one_line(done: subprocess.CompletedProcess, text: str) -> None:
    assert done.returncode == 2, done.stdout + done.stderr
    assert text in done.stderr and "Traceback" not in done.stderr + done.stdout, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


@pytest.mark.parametrize("samples", ["0", "-5"])
def test_samples_must_be_at_least_one(tmp_path: Path, samples: str) -> None:
    run = write_run(tmp_path)
    done = run_bench("diagnose", str(run), CELL, "--samples", samples)
    assert_one_line(done, f"--samples must be at least 1 (got {samples})")
    assert not (run / "diagnose").exists()


def test_a_missing_run_folder_is_named_as_missing(tmp_path: Path) -> None:
    assert_one_line(run_bench("diagnose", str(tmp_path / "gone"), CELL), f"{tmp_path / 'gone'}: no such run folder")
    (tmp_path / "empty").mkdir()
    assert_one_line(run_bench("diagnose", str(tmp_path / "empty"), CELL),
                    f"{tmp_path / 'empty'}: not a run folder (no results.jsonl)")


def test_a_cell_no_longer_in_the_edited_suite_is_named(tmp_path: Path) -> None:
    run = write_run(tmp_path)
    suite = tmp_path / "suite.yaml"
    suite.write_text(suite.read_text().replace("name: digits_cnn", "name: renamed_cnn"))
    done = run_bench("diagnose", str(run), CELL)
    assert_one_line(done, f"digits_cnn/int8@local: no longer in the suite {suite} (edited since the run; "
                          "its cells now: renamed_cnn/")
    suite.write_text(suite.read_text().replace("name: renamed_cnn", "name: digits_cnn")
                     .replace("schemes: [float32, float16, dynamic_range, int8,", "schemes: [float32, float16,"))
    assert_one_line(run_bench("diagnose", str(run), CELL), "digits_cnn/int8@local: no longer in the suite")


def test_a_cell_defined_differently_since_the_run_is_refused(tmp_path: Path) -> None:
    run = write_run(tmp_path)
    suite = tmp_path / "suite.yaml"
    suite.write_text(suite.read_text().replace("calibration: {dataset: train, samples: 32}",
                                               "calibration: {dataset: train, samples: 16}"))
    assert_one_line(run_bench("diagnose", str(run), CELL),
                    f"digits_cnn/int8@local: the suite {suite} defines it differently since the run")
    old = write_run(tmp_path / "old", with_keys=False)
    assert_one_line(run_bench("diagnose", str(old), CELL), "recorded without a cell key (an older quantbench)")


def test_a_model_file_changed_since_the_run_is_refused(tmp_path: Path) -> None:
    run = write_run(tmp_path)
    (tmp_path / "int8.tflite").write_bytes(b"rebuilt")
    assert_one_line(run_bench("diagnose", str(run), CELL),
                    f"the cell's model file {tmp_path / 'int8.tflite'} changed since the run (sha256 differs)")
    (tmp_path / "int8.tflite").write_bytes(b"int8")
    (tmp_path / "float32.tflite").unlink()
    assert_one_line(run_bench("diagnose", str(run), CELL),
                    f"the float baseline's model file {tmp_path / 'float32.tflite'} is gone")


def test_the_table_never_reads_names_as_rich_markup() -> None:
    from rich.console import Console

    from harness.cli_numerics import _table

    row = {"position": 1, "op": "CONV_2D", "tensor": "q[/x] [bold]t", "dtype": "int8", "snr_db": 1.0, "nrmse": 0.1,
           "rmse_per_scale": None}
    console = Console(width=200, record=True)
    console.print(_table([row], "q[/x]/int8@local: 1 of 2 tensors vs float"))
    text = console.export_text()
    assert "q[/x]/int8@local" in text and "q[/x] [bold]t" in text


@pytest.mark.parametrize("top", ["-1", "-20"])
def test_top_must_not_be_negative(tmp_path: Path, top: str) -> None:
    run = write_run(tmp_path)
    done = run_bench("diagnose", str(run), CELL, "--top", top)
    assert_one_line(done, f"--top must be 0 (every tensor) or more (got {top})")
    assert not (run / "diagnose").exists()


def _rows(snrs: list) -> list[dict]:
    return [{"position": i, "tensor": f"t{i}", "snr_db": snr} for i, snr in enumerate(snrs)]


def test_top_shows_the_lowest_snrs_worst_first_and_zero_every_row_in_graph_order() -> None:
    from harness.cli_numerics import worst_first

    rows = _rows([30.0, "Infinity", 12.5, "NaN", -3.0, 40.0, 12.5])
    assert [r["position"] for r in worst_first(rows, 4)] == [3, 4, 2, 6]  # NaN (broken) first, ties in graph order
    assert [r["position"] for r in worst_first(rows, 100)] == [3, 4, 2, 6, 0, 5, 1]  # an exact tensor (∞ dB) last
    assert worst_first(rows, 0) == rows  # every row, in graph order
