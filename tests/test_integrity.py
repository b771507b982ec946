"""A verdict is never built on a stale, corrupted, partial or lost result (issue: integrity).

Each test plays one hostile case through the real `bench` command and asserts the exit code, the
one-line message (no traceback) and that nothing finished was lost.
"""

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

from harness.errors import HarnessError
from harness.results import create_run_dir, locked, read_results, read_run_info
from tests.conftest import ROOT, latest, run_bench

SUITE = """\
name: {name}
datasets:
  train: {{kind: digits, split: train}}
  test: {{kind: digits, split: test}}
models:
  - name: "q[/x]"
    builder: tutorial_cnn
    input_shape: [8, 8, 1]
    filters: {filters}
    train: {{dataset: train, epochs: 2, batch_size: 64, learning_rate: 0.01}}
task: {{kind: classification, dataset: test}}
schemes: [float32, dynamic_range]
latency: {{float_pairs: 0, warmup_runs: 1, num_runs: 3, min_secs: 0}}
thresholds:
  defaults:
    top1: {{max_abs_drop: 0.5{extra}}}
"""


def write_suite(folder: Path, name: str = "integrity", filters: int = 4, extra: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "suite.yaml"
    path.write_text(SUITE.format(name=name, filters=filters, extra=extra))
    return path


def bench(folder: Path, cache: Path, *args: str) -> subprocess.CompletedProcess:
    return run_bench(*args, "--cache", str(cache), cwd=folder) if args[0] == "run" else run_bench(*args, cwd=folder)


def assert_clean_error(done: subprocess.CompletedProcess, text: str, code: int = 2) -> None:
    assert done.returncode == code, done.stdout + done.stderr
    assert text in done.stderr and "Traceback" not in done.stderr + done.stdout


def only_run(folder: Path, name: str = "integrity") -> Path:
    (run_dir,) = (folder / "reports" / name).iterdir()
    return run_dir


@pytest.fixture
def done_run(tmp_path: Path, session_cache: Path) -> tuple[Path, Path]:
    """A finished run of the small suite: (suite folder, run directory)."""
    suite = write_suite(tmp_path)
    done = bench(tmp_path, session_cache, "run", str(suite))
    assert done.returncode == 0, done.stdout + done.stderr
    return tmp_path, only_run(tmp_path)


# -- wrong verdicts ---------------------------------------------------------------------------
@pytest.mark.slow  # runs a suite
def test_an_existing_out_is_refused_without_resume(done_run: tuple[Path, Path], session_cache: Path) -> None:
    folder, run_dir = done_run
    before = (run_dir / "results.jsonl").read_bytes()
    done = bench(folder, session_cache, "run", "suite.yaml", "--out", str(run_dir))
    assert_clean_error(done, "already holds a run: give --resume")
    assert (run_dir / "results.jsonl").read_bytes() == before


@pytest.mark.slow  # runs a suite
def test_resume_re_applies_edited_thresholds_and_re_runs_edited_cells(done_run: tuple[Path, Path],
                                                                     session_cache: Path) -> None:
    folder, run_dir = done_run
    write_suite(folder, extra=", min: 1.01")  # no model reaches it: every cell must now fail its check
    done = bench(folder, session_cache, "run", "suite.yaml", "--out", str(run_dir), "--resume")
    assert done.returncode == 1 and "suite file changed" in done.stdout and "2 cell(s) were already done" in done.stdout
    assert all(not v["pass"] for r in read_results(run_dir) for v in r["verdicts"] if v["check"] == "top1.min")
    write_suite(folder, filters=5)  # another model: nothing recorded is valid any more
    done = bench(folder, session_cache, "run", "suite.yaml", "--out", str(run_dir), "--resume")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "not kept (its inputs changed)" in done.stdout and "already done" not in done.stdout
    assert len((run_dir / "superseded.jsonl").read_text().splitlines()) == 2
    assert all(not r["artifact"]["cached"] or r["scheme"] for r in read_results(run_dir))


@pytest.mark.slow  # runs a suite
def test_a_corrupted_cached_model_is_rebuilt_and_reported(done_run: tuple[Path, Path], session_cache: Path) -> None:
    folder, run_dir = done_run
    first = {r["scheme"]: r for r in read_results(run_dir)}
    artifact = Path(first["dynamic_range"]["artifact"]["path"])
    data = bytearray(artifact.read_bytes())
    data[len(data) // 2: len(data) // 2 + 16] = bytes(16)  # 16 bytes of weights zeroed
    artifact.write_bytes(bytes(data))
    done = bench(folder, session_cache, "run", "suite.yaml")
    assert done.returncode == 0 and "discarded and rebuilt" in done.stdout
    again = {r["scheme"]: r for r in read_results(latest(folder / "reports" / "integrity"))}
    assert again["dynamic_range"]["artifact"]["rebuilt"]
    assert again["dynamic_range"]["artifact"]["sha256"] == first["dynamic_range"]["artifact"]["sha256"]
    assert again["dynamic_range"]["metrics"] == first["dynamic_range"]["metrics"]


def test_run_directories_are_unique_and_locked(tmp_path: Path) -> None:
    folders = {create_run_dir(tmp_path) for _ in range(200)}
    assert len(folders) == 200
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from pathlib import Path; from harness.results import locked\n"
        f"with locked(Path({str(tmp_path / 'run')!r})):\n    print('locked', flush=True); time.sleep(30)")],
        stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(HarnessError, match=f"being written by another bench run \\(pid {holder.pid}\\)"):
            with locked(tmp_path / "run"):
                pass
    finally:
        holder.kill()
        holder.wait()
    with locked(tmp_path / "run"):  # released when its holder died
        pass


# -- crashes that lost the reports -----------------------------------------------------------
def test_nan_inputs_are_a_finding_not_a_crash(tmp_path: Path, session_cache: Path) -> None:
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.images[:64] / 16.0).astype(np.float32)[..., None]
    x[3, 2, 2, 0] = np.nan
    np.savez(tmp_path / "nan.npz", x=x, y=digits.target[:64])
    suite = write_suite(tmp_path).read_text().replace("test: {kind: digits, split: test}",
                                                      "test: {kind: npz, path: nan.npz}")
    (tmp_path / "suite.yaml").write_text(suite.replace("top1: {max_abs_drop: 0.5}",
                                                       "top1: {max_abs_drop: 0.5}\n    mean_abs_error: {max: 1.0}"))
    done = bench(tmp_path, session_cache, "run", "suite.yaml")
    run_dir = only_run(tmp_path)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert read_run_info(run_dir)["status"] == "finished" and (run_dir / "report.html").exists()
    (cell,) = [r for r in read_results(run_dir) if r["scheme"] == "dynamic_range"]
    (verdict,) = [v for v in cell["verdicts"] if v["check"] == "mean_abs_error.max"]
    assert np.isnan(cell["metrics"]["mean_abs_error"]) and not verdict["pass"] and "NaN" in verdict["note"]
    assert '"NaN"' in (run_dir / "results.jsonl").read_text()  # plain JSON: no bare NaN token
    json.loads((run_dir / "results.jsonl").read_text().splitlines()[0])


@pytest.mark.parametrize("bound", [".nan", ".inf", "-.inf"])
def test_non_finite_thresholds_are_refused(tmp_path: Path, bound: str) -> None:
    write_suite(tmp_path, extra=f", min: {bound}")
    assert_clean_error(run_bench("validate", str(tmp_path / "suite.yaml")), "suite.yaml:16: thresholds.defaults.top1.min")


def test_a_full_disk_keeps_the_records_and_says_so_in_one_line(done_run: tuple[Path, Path]) -> None:
    folder, run_dir = done_run
    before = (run_dir / "results.jsonl").read_bytes()
    (run_dir / ".report.html.tmp").symlink_to("/dev/full")  # every write there fails with ENOSPC
    done = run_bench("report", str(run_dir), cwd=folder)
    assert_clean_error(done, "report.html: the disk is full")
    assert len(done.stderr.strip().splitlines()) == 1
    assert (run_dir / "results.jsonl").read_bytes() == before
    assert not (run_dir / ".report.html.tmp").exists() and not (run_dir / ".report.html.tmp").is_symlink()


def test_a_read_only_out_is_one_clear_line(tmp_path: Path, session_cache: Path) -> None:
    target = Path("/proc/quantbench-run")  # procfs refuses new files whoever asks, root included
    write_suite(tmp_path)
    done = bench(tmp_path, session_cache, "run", "suite.yaml", "--out", str(target))
    assert done.returncode == 2 and "Traceback" not in done.stderr and f"cannot write {target}" in done.stderr


@pytest.mark.slow  # runs a suite
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_the_run_keeping_finished_cells_and_reports(tmp_path: Path, session_cache: Path,
                                                                   signum: int) -> None:
    suite = write_suite(tmp_path, name="interrupted").read_text()
    (tmp_path / "suite.yaml").write_text(suite.replace("schemes: [float32, dynamic_range]",
                                                       "schemes: [float32, dynamic_range, float16, int16x8]\n"
                                                       "calibration: {dataset: train, samples: 16}"))
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    process = subprocess.Popen([sys.executable, "-m", "harness.cli", "run", "suite.yaml", "--cache", str(session_cache)],
                               cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        runs = list((tmp_path / "reports" / "interrupted").glob("*/results.jsonl"))
        if runs and runs[0].read_text().count("\n") >= 1:
            break
        time.sleep(0.05)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=120)
    run_dir = only_run(tmp_path, "interrupted")
    assert process.returncode == 128 + signum and "Traceback" not in stderr, stderr
    assert "interrupted: finished cells are saved" in stderr
    info = read_run_info(run_dir)
    assert info["status"] == "interrupted" and read_results(run_dir)
    assert "INCOMPLETE" in (run_dir / "summary.md").read_text()
    assert "IncompleteRun" in (run_dir / "junit.xml").read_text()
    assert not (tmp_path / "reports" / "history.sqlite").exists() or "interrupted" not in run_bench(
        "history", "interrupted", "--history", str(tmp_path / "reports" / "history.sqlite"), cwd=tmp_path).stdout
