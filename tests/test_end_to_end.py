"""`bench run` end to end on tiny suites: records, resume after kill -9, failures, exit codes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from harness.results import read_results
from tests.conftest import DATA, ROOT, latest, run_bench
from tests.report.runs import plain

TINY = DATA / "tiny.yaml"
pytestmark = pytest.mark.slow  # trains and converts real models, runs the CLI (in-process; kill -9 in a subprocess)


def run_dir_of(reports: Path, suite: str) -> Path:
    return latest(reports / suite)


@pytest.fixture(scope="module")
def tiny_run(session_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess, Path]:
    reports = tmp_path_factory.mktemp("reports")
    done = run_bench("run", str(TINY), "--reports", str(reports), "--cache", str(session_cache))
    return done, run_dir_of(reports, "tiny")


def test_tiny_suite_records_every_cell(tiny_run) -> None:
    done, run_dir = tiny_run
    assert done.returncode == 0, done.stdout + done.stderr
    records = read_results(run_dir)
    assert [r["scheme"] for r in records] == ["float32", "float16", "dynamic_range", "int8", "int8_only", "int16x8"]
    for record in records:
        assert record["status"] == "ok", record["error"]
        assert record["metrics"]["top1"] > 0.5 and record["metrics"]["top5"] >= record["metrics"]["top1"]
        assert record["evaluation"]["samples"] == 450  # the whole digits test split
        assert record["size_bytes"] > 0 and 0 < record["gzip_bytes"]
        assert set(record["latency_ms"]) >= {"median", "mean", "p90", "std", "min", "count", "init", "first"}
        assert record["latency_ms"]["count"] == len(record["latency_samples_ms"]) >= 10
        assert record["memory"]["peak_rss_mb"] > 0
        assert record["latency_setup"]["runtime"].startswith("ai-edge-litert ")  # what timed it, for run-vs-run
    by_scheme = {r["scheme"]: r for r in records}
    assert "top1_agreement" not in by_scheme["float32"]["metrics"]
    assert by_scheme["int8"]["metrics"]["top1_agreement"] > 0.9
    assert by_scheme["int8_only"]["io_types"] == {"inputs": ["int8"], "outputs": ["int8"]}
    assert any(v["check"] == "top1.max_abs_drop" for v in by_scheme["int8"]["verdicts"])
    float_weights, int8_weights = by_scheme["float32"]["weights"], by_scheme["int8"]["weights"]
    assert [layer["op"] for layer in float_weights["layers"]] == ["CONV_2D", "FULLY_CONNECTED"]
    assert {layer["dtype"] for layer in int8_weights["layers"]} == {"int8"}
    assert int8_weights["max_unique_per_channel"] <= 255


def test_run_info_and_summary(tiny_run) -> None:
    _, run_dir = tiny_run
    info = json.loads((run_dir / "run.json").read_text())
    assert info["status"] == "finished" and len(info["suite_sha256"]) == 64
    assert Path(info["suite_path"]).is_absolute()  # `bench report` finds the suite from any directory
    assert info["tool_versions"]["tensorflow"].startswith("2.")
    assert isinstance(info["devices"]["local"]["core"], int) and info["devices"]["local"]["core_reason"]
    summary = plain((run_dir / "summary.md").read_text())
    assert "**PASS**" in summary and "| digits_cnn | int8 | local |" in summary


def test_warm_rerun_converts_nothing(tiny_run, session_cache: Path, tmp_path: Path) -> None:
    done = run_bench("run", str(TINY), "--reports", str(tmp_path), "--cache", str(session_cache))
    assert done.returncode == 0
    records = read_results(run_dir_of(tmp_path, "tiny"))
    assert all(r["artifact"]["cached"] and r["evaluation"]["cached"] for r in records)


def test_only_runs_matching_cells_plus_baseline(tiny_run, session_cache: Path, tmp_path: Path) -> None:
    done = run_bench("run", str(TINY), "--only", "*/int8", "--reports", str(tmp_path), "--cache", str(session_cache))
    assert done.returncode == 0
    assert [r["scheme"] for r in read_results(run_dir_of(tmp_path, "tiny"))] == ["float32", "int8"]


def test_threshold_violation_exits_1(tiny_run, session_cache: Path, tmp_path: Path) -> None:
    strict = tmp_path / "strict.yaml"
    strict.write_text(TINY.read_text().replace("top1: {max_abs_drop: 0.2}", "top1: {min: 0.999}"))
    done = run_bench("run", str(strict), "--reports", str(tmp_path), "--cache", str(session_cache))
    assert done.returncode == 1, done.stdout
    records = read_results(run_dir_of(tmp_path, "tiny"))
    assert all(not v["pass"] for r in records for v in r["verdicts"] if v["check"] == "top1.min")
    assert "**FAIL**" in (run_dir_of(tmp_path, "tiny") / "summary.md").read_text()


def test_resume_after_kill_9(tiny_run, session_cache: Path, tmp_path: Path) -> None:
    command = [sys.executable, "-m", "harness.cli", "run", str(TINY), "--out", str(tmp_path / "run"),
               "--cache", str(session_cache), "--history", str(tmp_path / "history.sqlite")]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    results = tmp_path / "run" / "results.jsonl"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        if results.exists() and len(results.read_text().splitlines()) >= 2:
            break
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    before = {r["scheme"]: r["finished_at"] for r in read_results(tmp_path / "run")}
    assert 2 <= len(before) < 6, "the run was not interrupted mid-way"
    done = run_bench("run", str(TINY), "--out", str(tmp_path / "run"), "--resume", "--cache", str(session_cache),
                     "--history", str(tmp_path / "history.sqlite"))
    assert done.returncode == 0, done.stdout + done.stderr
    after = read_results(tmp_path / "run")
    assert len(after) == 6
    assert {r["scheme"]: r["finished_at"] for r in after if r["scheme"] in before} == before  # not redone
    assert f"resumed: {len(before)} cell(s)" in " ".join(done.stdout.split())


def test_tflite_sources_and_a_broken_model(tmp_path: Path, session_cache: Path) -> None:
    """A float .tflite goes through litert-quantizer; a corrupt one fails alone; the suite goes on."""
    import keras

    from harness.models import BUILDERS
    from harness.schemes import SCHEMES

    builder = BUILDERS.get("tutorial_cnn")
    keras.utils.set_random_seed(0)
    model = builder.build(keras, builder.Options(input_shape=(8, 8, 1), filters=16))
    model.export(str(tmp_path / "saved"), format="tf_saved_model", verbose=False)
    (tmp_path / "good.tflite").write_bytes(SCHEMES.get("float32").from_saved_model(tmp_path / "saved", None, None))
    (tmp_path / "broken.tflite").write_bytes(np.random.default_rng(0).bytes(4096))
    suite = tmp_path / "files.yaml"
    suite.write_text(
        "name: files\n"
        "datasets:\n  test: {kind: digits, split: test}\n"
        "models:\n  - path: broken.tflite\n  - path: good.tflite\n"
        "task: {kind: classification, dataset: test, limit: 100}\n"
        "calibration: {dataset: test, samples: 16}\n"
        "schemes: [float32, float16, dynamic_range, int8, int8_only, int16x8]\n"
        "latency: {float_pairs: 0, warmup_runs: 1, num_runs: 5, min_secs: 0}\n"
    )
    done = run_bench("run", str(suite), "--reports", str(tmp_path / "r"), "--cache", str(session_cache))
    assert done.returncode == 1, done.stdout + done.stderr  # failed cells make the run red
    records = {(r["model"], r["scheme"]): r for r in read_results(run_dir_of(tmp_path / "r", "files"))}
    assert len(records) == 12
    assert records[("broken", "float32")]["status"] == "failed" and records[("broken", "float32")]["error"]
    good = {scheme: r for (name, scheme), r in records.items() if name == "good"}
    for scheme in ("float32", "float16", "dynamic_range", "int8", "int8_only", "int16x8"):
        assert good[scheme]["status"] == "ok", good[scheme]["error"]
        assert good[scheme]["evaluation"]["samples"] == 100
    assert good["int8"]["size_bytes"] < good["float32"]["size_bytes"]
    assert good["int8"]["io_types"] == {"inputs": ["float32"], "outputs": ["float32"]}
    assert good["int8_only"]["io_types"] == {"inputs": ["int8"], "outputs": ["int8"]}
    assert good["int8"]["metrics"]["top1_agreement"] > 0.8


def test_measure_reports_cv_of_medians(tiny_run) -> None:
    _, run_dir = tiny_run
    record = read_results(run_dir)[0]
    done = run_bench("measure", record["artifact"]["path"], "--repeat", "3", "--num-runs", "20", "--min-secs", "0")
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("median") >= 3 and "medians CV" in done.stdout
    probed = record["acceleration"]  # the run's probe of the same file; `measure` prints its first measurement's
    assert (f"XNNPACK took {probed['delegated_nodes']} of {probed['nodes']} nodes in {probed['partitions']} "
            f"partition(s); fully delegated: {probed['fully_delegated']}") in " ".join(done.stdout.split())  # as wrapped


def test_keras_h5_and_saved_model_sources(tmp_path: Path, session_cache: Path) -> None:
    import keras

    from harness.models import BUILDERS

    builder = BUILDERS.get("tutorial_cnn")
    keras.utils.set_random_seed(0)
    model = builder.build(keras, builder.Options(input_shape=(8, 8, 1), filters=16))
    model.save(tmp_path / "m.keras")
    model.save(tmp_path / "m.h5")
    model.export(str(tmp_path / "m_saved"), format="tf_saved_model", verbose=False)
    suite = tmp_path / "sources.yaml"
    suite.write_text(
        "name: sources\n"
        "datasets:\n  test: {kind: digits, split: test}\n"
        "models:\n  - {name: k3, path: m.keras}\n  - {name: h5, path: m.h5}\n  - {name: sm, path: m_saved}\n"
        "task: {kind: classification, dataset: test, limit: 64}\n"
        "calibration: {dataset: test, samples: 8}\n"
        "schemes: [float32, int8]\n"
        "latency: {float_pairs: 0, warmup_runs: 1, num_runs: 3, min_secs: 0}\n"
    )
    done = run_bench("run", str(suite), "--reports", str(tmp_path / "r"), "--cache", str(session_cache))
    assert done.returncode == 0, done.stdout + done.stderr
    records = read_results(run_dir_of(tmp_path / "r", "sources"))
    assert [(r["model"], r["status"]) for r in records] == [(m, "ok") for m in ("k3", "k3", "h5", "h5", "sm", "sm")]
    float_outputs = {r["model"]: r["metrics"]["top1"] for r in records if r["scheme"] == "float32"}
    assert len(set(float_outputs.values())) == 1  # the same weights, whatever the file format
