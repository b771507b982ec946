"""The run life-cycle under signals and start-up errors (issue 20, "Integrity, round 2").

Real signals on a real `bench run` subprocess; every wait is on a condition (a record in
results.jsonl, the latency process existing, a hook reached), never on a fixed sleep.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from harness.errors import HarnessError
from harness.results import LOCK, RUNTIME_LOG, locked, read_results, read_run_info
from tests.conftest import ROOT, run_bench

pytestmark = pytest.mark.slow  # runs `bench` in processes of their own and signals them

SUITE = """\
name: signals
datasets:
  train: {{kind: digits, split: train}}
  test: {{kind: digits, split: test}}
models:
  - name: digits
    builder: tutorial_cnn
    input_shape: [8, 8, 1]
    filters: 4
    train: {{dataset: train, epochs: 2, batch_size: 64, learning_rate: 0.01}}
task: {{kind: classification, dataset: test}}
schemes: [float32, dynamic_range]
devices: [{device}]
latency: {{warmup_runs: 1, num_runs: 3, min_secs: {min_secs}, float_pairs: 0}}
thresholds:
  defaults:
    top1: {{max_abs_drop: 0.5}}
"""
# min_secs keeps a measurement process alive long enough to be caught mid-measurement (test 1); float_pairs: 0
# because no test here is about × float, and on this µs-fast model each of its 12 extra measurements of
# min_secs 2 returned ~500,000 samples (~6 s each: the SIGINT case's resume took 90 s of its 105 s)
WAIT_S = 600  # generous: a condition, not a time, ends every wait
ENV = {**os.environ, "COLUMNS": "200", "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT)}

# `bench run` with one function made to block (after touching MARKER) the first time it is reached,
# so a signal lands exactly in the window a test is about.
HOOKED = """\
import sys, time
from pathlib import Path
marker, module_name, attribute, status = Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
del sys.argv[1:5]
import importlib
module = importlib.import_module(module_name)
original = getattr(module, attribute)
def blocking(*args, **kwargs):
    wanted = status == "-" or (len(args) > 1 and args[1].get("status") == status)
    if wanted and not marker.exists():
        marker.touch()
        while True:
            time.sleep(0.05)
    return original(*args, **kwargs)
setattr(module, attribute, blocking)
from harness.cli import main
main()
"""


def write_suite(folder: Path, device: str = "local", min_secs: float = 0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "suite.yaml"
    path.write_text(SUITE.format(device=device, min_secs=min_secs))
    return path


def start_bench(folder: Path, *args: str, hook: tuple[str, str, str] | None = None) -> subprocess.Popen[str]:
    """`bench run ...` in its own process group (as a terminal runs it), optionally hooked."""
    command = [sys.executable, "-m", "harness.cli", *args]
    if hook is not None:
        (folder / "hooked_bench.py").write_text(HOOKED)
        command = [sys.executable, str(folder / "hooked_bench.py"), str(folder / "hook-reached"), *hook, *args]
    return subprocess.Popen(command, cwd=folder, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)


def wait_for(condition: Callable[[], object], process: subprocess.Popen[str], what: str) -> object:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if process.poll() is not None:
            out, err = process.communicate()
            pytest.fail(f"bench exited ({process.returncode}) before {what}:\n{out}\n{err}")
        time.sleep(0.02)
    process.kill()
    pytest.fail(f"timed out waiting for {what}")


def recorded(folder: Path) -> int:
    return sum(path.read_text().count("\n") for path in (folder / "reports" / "signals").glob("*/results.jsonl"))


def latency_child(parent: int) -> int | None:
    """The pid of `parent`'s latency measurement process, if one is running."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == parent and b"latency_process" in cmdline:
            return int(stat.parent.name)
    return None


def running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def recorded_in_history(folder: Path) -> list[str]:
    """The run directories of the suite's runs in the history store."""
    from harness.history import History

    if not (folder / "reports" / "history.sqlite").exists():
        return []
    with History(folder / "reports" / "history.sqlite") as store:
        return [str(run.run_dir) for run in store.runs("signals")]


def only_run(folder: Path) -> Path:
    (run_dir,) = (folder / "reports" / "signals").iterdir()
    return run_dir


def finish_with_resume(folder: Path, cache: Path, done_before: int) -> Path:
    """`--resume` keeps the finished cells, runs the rest, publishes, records history, passes."""
    again = run_bench("run", "suite.yaml", "--resume", "--cache", str(cache), cwd=folder)
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"resumed: {done_before} cell(s) were already done" in again.stdout
    assert "PASS" in again.stdout and "failed" not in again.stdout.lower().replace("0 failed", "")
    run_dir = only_run(folder)
    assert read_run_info(run_dir)["status"] == "finished"
    assert sorted(r["status"] for r in read_results(run_dir)) == ["ok", "ok"]
    assert "INCOMPLETE" not in (run_dir / "summary.md").read_text()
    assert recorded_in_history(folder) == [str(run_dir.resolve())]
    return run_dir


# -- 1. a signal mid-measurement: the cell is not done (never failed), --resume runs it ---------
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_mid_measurement_leaves_the_cell_undone_not_failed(tmp_path: Path, session_cache: Path,
                                                                     signum: int) -> None:
    write_suite(tmp_path, min_secs=2)
    process = start_bench(tmp_path, "run", "suite.yaml", "--cache", str(session_cache))
    wait_for(lambda: recorded(tmp_path) >= 1, process, "the float32 cell's record")
    child = wait_for(lambda: latency_child(process.pid), process, "the dynamic_range measurement process")
    assert isinstance(child, int)
    os.kill(child, signal.SIGSTOP)  # it stays mid-measurement until the run stops it
    if signum == signal.SIGINT:
        os.killpg(process.pid, signum)  # Ctrl-C at a terminal: the whole foreground process group
    else:
        process.send_signal(signum)
    _, stderr = process.communicate(timeout=WAIT_S)
    assert process.returncode == 128 + signum and "Traceback" not in stderr, stderr
    assert "interrupted: finished cells are saved" in stderr
    assert not running(child), "the measurement process outlived the run"
    run_dir = only_run(tmp_path)
    assert read_run_info(run_dir)["status"] == "interrupted"
    assert [(r["scheme"], r["status"]) for r in read_results(run_dir)] == [("float32", "ok")]
    assert not (run_dir / LOCK).exists()
    if signum == signal.SIGINT:
        finish_with_resume(tmp_path, session_cache, done_before=1)


# -- 16. a signal after the last cell: recorded, never `running`; --resume finishes it ---------
@pytest.mark.parametrize(("hook", "signum", "stopped_in"), [
    (("harness.report.publish", "_write_reports", "-"), signal.SIGTERM, "publishing"),
    (("harness.runner.lifecycle", "write_run_info", "finished"), signal.SIGINT, None),
], ids=["sigterm-while-publishing", "ctrl-c-after-the-last-cell"])
def test_a_signal_after_the_last_cell_is_recorded_and_resume_finishes_the_run(
        tmp_path: Path, session_cache: Path, hook: tuple[str, str, str], signum: int, stopped_in: str | None) -> None:
    write_suite(tmp_path)
    process = start_bench(tmp_path, "run", "suite.yaml", "--cache", str(session_cache), hook=hook)
    wait_for(lambda: (tmp_path / "hook-reached").exists(), process, f"{hook[1]}")
    assert recorded(tmp_path) == 2
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=WAIT_S)
    assert process.returncode == 128 + signum and "Traceback" not in stderr, stderr
    assert "finished cells are saved" in stderr and "bench run --resume --out" in stderr
    run_dir = only_run(tmp_path)
    info = read_run_info(run_dir)
    assert info["status"] == "interrupted" and info.get("stopped_in") == stopped_in, info
    assert [r["status"] for r in read_results(run_dir)] == ["ok", "ok"]
    assert "INCOMPLETE" in (run_dir / "summary.md").read_text()
    assert recorded_in_history(tmp_path) == []
    run_dir = finish_with_resume(tmp_path, session_cache, done_before=2)
    # a resume that fails at start-up leaves the finished run as it was
    (tmp_path / "devices").mkdir()
    (tmp_path / "devices" / "bad.yaml").write_text("kind: local\ncore: [1]\n")
    before = sorted(p.name for p in run_dir.iterdir())
    done = run_bench("run", "suite.yaml", "--resume", "--devices", "bad", "--cache", str(session_cache), cwd=tmp_path)
    assert done.returncode == 2 and "devices/bad.yaml:2: core.int" in done.stderr, done.stdout + done.stderr
    assert read_run_info(run_dir)["status"] == "finished" and sorted(p.name for p in run_dir.iterdir()) == before


# -- 17. an error at start leaves no half-made folder, and the lock is released ----------------
def test_a_malformed_device_profile_leaves_no_half_made_out(tmp_path: Path, session_cache: Path) -> None:
    write_suite(tmp_path, device="bad")
    (tmp_path / "devices").mkdir()
    (tmp_path / "devices" / "bad.yaml").write_text("kind: local\ncore: [1]\n")
    for _ in range(2):  # the rerun meets the same error, not "give --resume" / "no earlier run"
        done = run_bench("run", "suite.yaml", "--out", "out", "--cache", str(session_cache), cwd=tmp_path)
        assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
        assert done.stderr.strip().splitlines() == ["error: devices/bad.yaml:2: core.int: Input should be a valid "
                                                    "integer"], done.stderr
        assert not (tmp_path / "out").exists()
    done = run_bench("run", "suite.yaml", "--cache", str(session_cache), cwd=tmp_path)  # the default run folder
    suite_reports = tmp_path / "reports" / "signals"
    assert done.returncode == 2 and not (suite_reports.exists() and list(suite_reports.iterdir()))


def test_a_signal_at_start_up_leaves_no_half_made_out(tmp_path: Path, session_cache: Path) -> None:
    write_suite(tmp_path)
    process = start_bench(tmp_path, "run", "suite.yaml", "--out", "out", "--cache", str(session_cache),
                          hook=("harness.runner.devices", "load_device", "-"))
    wait_for(lambda: (tmp_path / "hook-reached").exists(), process, "the device profile being read")
    assert (tmp_path / "out" / LOCK).exists()
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=WAIT_S)
    assert process.returncode == 143 and "Traceback" not in stderr, stderr
    assert stderr.strip().splitlines() == ["interrupted before the run started: nothing was written"], stderr
    assert not (tmp_path / "out").exists()


def test_a_bad_ray_address_leaves_an_empty_out_as_it_was(tmp_path: Path, session_cache: Path) -> None:
    pytest.importorskip("ray")
    write_suite(tmp_path)
    (tmp_path / "out").mkdir()
    done = run_bench("run", "suite.yaml", "--out", "out", "--cache", str(session_cache), "--executor", "ray",
                     "--ray-address", "127.0.0.1:1", cwd=tmp_path,
                     process=True)  # ray.init in a process of its own, not in pytest's
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert "--ray-address 127.0.0.1:1: cannot join a Ray cluster there" in done.stderr
    assert list((tmp_path / "out").iterdir()) == []


def test_what_a_start_killed_by_sigkill_left_is_accepted_by_a_rerun(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / LOCK).write_text("12345")
    (out / RUNTIME_LOG).write_text("")
    from harness.results import holds_a_run

    assert not holds_a_run(out)
    (out / "results.jsonl").write_text("")
    assert holds_a_run(out)


def test_the_lock_is_released_and_a_start_that_failed_leaves_the_folder_as_it_was(tmp_path: Path) -> None:
    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / "notes.txt").write_text("the user's")
    with pytest.raises(HarnessError, match="boom"), locked(kept):
        (kept / RUNTIME_LOG).write_text("")
        raise HarnessError("boom")
    assert sorted(p.name for p in kept.iterdir()) == ["notes.txt"]
    with pytest.raises(KeyboardInterrupt), locked(tmp_path / "new", fresh=True):
        raise KeyboardInterrupt
    assert not (tmp_path / "new").exists()
    with locked(tmp_path / "run"):  # a run that started (run.json) keeps everything but the lock file
        (tmp_path / "run" / "run.json").write_text(json.dumps({"suite": "s", "started_at": "t"}))
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["run.json"]
    with locked(tmp_path / "run"):  # and the next run takes it
        pass


def test_a_lock_file_removed_by_its_leaving_holder_is_not_shared(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A run that opened the lock file just as its holder removed it (leaving) locks the file that
    is there now, not the removed one: two runs never both hold the folder."""
    import fcntl

    import harness.results as results

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    calls: list[int] = []
    real_flock = fcntl.flock

    def holder_leaves_first(handle: object, operation: int) -> None:
        if not calls:
            (run_dir / LOCK).unlink()  # the holder left between this run's open and its flock
        calls.append(operation)
        real_flock(handle, operation)  # type: ignore[arg-type]

    monkeypatch.setattr(results.fcntl, "flock", holder_leaves_first)
    with locked(run_dir):
        assert len(calls) == 2 and (run_dir / LOCK).read_text() == str(os.getpid())
