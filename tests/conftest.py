"""Shared fixtures: an isolated artifact cache and a helper to run the `bench` CLI."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections import OrderedDict
from pathlib import Path

import pytest

from harness import heap
from tests.kit import Kit, build_kit

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
BENCH_ENV = {"COLUMNS": "200", "TF_CPP_MIN_LOG_LEVEL": "3"}
# Under `pytest -n 2 --dist loadgroup` (make test) each test module runs whole on one worker (its module
# fixtures are built once), and these run on one worker as one unit, never at the same time as each other:
# Chromium, a Ray cluster, and the latency tests that time on a pinned core.
SERIAL = ("tests/report/test_browser.py", "tests/executors/", "tests/devices/test_local.py", "tests/test_host_state.py",
          "tests/test_float_pairs.py", "tests/test_ab_pairs.py", "tests/test_regression_tracker.py", "tests/benchmarks/")


# Estimated seconds of the longest units (from CI's `--durations` on a quiet 2-core machine); a run under
# xdist remembers what each test took (.pytest_cache) and the next one uses that instead; a unit neither
# knows counts SECONDS_PER_TEST a test. Only the order the two workers take units in depends on them:
# longest first, so the last units to start are short and both workers finish together.
UNIT_SECONDS = {
    "serial": 85, "tests/test_user_model_suite.py": 60, "tests/schemes/test_keras_applications.py": 36,
    "tests/test_mediapipe_models.py": 27, "tests/schemes/test_training_schemes.py": 20, "tests/test_end_to_end.py": 19,
    "tests/torch/test_torch_sources.py": 19, "tests/test_signals.py": 16,
    "tests/devices/android/test_phone_regressions.py": 16, "tests/devices/android/test_hostile_phones.py": 16,
    "tests/models/test_determinism.py": 12, "tests/devices/android/test_runner_adb.py": 11,
    "tests/test_integrity.py": 10, "tests/report/test_scale.py": 9, "tests/devices/android/test_stf_hostile.py": 9,
    "tests/genai/test_generation.py": 9, "tests/numerics/test_multi_io.py": 8, "tests/test_record_format.py": 8,
}
SECONDS_PER_TEST = 0.5
LEARNED = "quantbench/test_seconds"  # the pytest cache key: nodeid -> seconds (setup + call + teardown)


def unit_of(nodeid: str) -> str:
    """The scheduling unit of a test: "serial" for the SERIAL paths, else its module."""
    path = nodeid.split("::")[0]
    return "serial" if path.startswith(SERIAL) else path


def unit_seconds(unit: str, nodeids: list[str], learned: dict[str, float]) -> float:
    """What a unit is expected to take: what its tests took last time, when every one was timed."""
    if nodeids and all(nodeid in learned for nodeid in nodeids):
        return sum(learned[nodeid] for nodeid in nodeids)
    return UNIT_SECONDS.get(unit, SECONDS_PER_TEST * len(nodeids))


def longest_first(queue: OrderedDict[str, dict[str, bool]], learned: dict[str, float]) -> None:
    """Move the unit expected to take longest to the front of xdist's queue (unit -> {nodeid: done})."""
    longest = max(queue, key=lambda unit: unit_seconds(unit, list(queue[unit]), learned))
    queue.move_to_end(longest, last=False)


@pytest.hookimpl(optionalhook=True)  # an xdist hook: pytest without xdist (-p no:xdist) must still run
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object | None:
    """The module-or-SERIAL grouping as xdist's scope scheduler, handing out the longest unit left first
    (xdist 3.8's own xdist_group marks are lost under pytest 9.2: it renames nodes through an attribute
    pytest no longer reads)."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    cache = getattr(config, "cache", None)  # None under -p no:cacheprovider
    learned: dict[str, float] = cache.get(LEARNED, {}) if cache is not None else {}

    class ModuleOrSerial(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return unit_of(nodeid)

        def _assign_work_unit(self, node: object) -> None:
            longest_first(self.workqueue, learned)
            super()._assign_work_unit(node)  # takes the first unit of the queue

    return ModuleOrSerial(config, log)


class WorkerTimes:
    """Under xdist, what each test took and how busy each worker was (the controller sees every report)."""

    def __init__(self) -> None:
        self.tests: dict[str, float] = {}
        self.workers: dict[str, float] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        worker = getattr(getattr(report, "node", None), "gateway", None)
        if worker is None:
            return
        self.tests[report.nodeid] = self.tests.get(report.nodeid, 0.0) + report.duration
        self.workers[worker.id] = self.workers.get(worker.id, 0.0) + report.duration

    def pytest_terminal_summary(self, terminalreporter: object, config: pytest.Config) -> None:
        if not self.workers:
            return
        busy = ", ".join(f"{worker} {seconds:.0f} s" for worker, seconds in sorted(self.workers.items()))
        terminalreporter.write_line(f"time in tests per worker: {busy}")  # type: ignore[attr-defined]
        cache = getattr(config, "cache", None)  # None under -p no:cacheprovider
        if cache is not None:  # what this run timed, over what earlier runs timed of modules still here
            learned = {**cache.get(LEARNED, {}), **self.tests}
            cache.set(LEARNED, {nodeid: seconds for nodeid, seconds in learned.items()
                                       if (ROOT / nodeid.split("::")[0]).is_file()})


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Between tests, what the imports so far left (TensorFlow, Keras, TFMOT, torch) is moved out of the
    collector's way, as the runner does between cells (harness/heap.py): full collections walking it took
    a quarter of the time of test_end_to_end, test_integrity and test_training_schemes (54 s -> 40 s)."""
    heap.settle()


def pytest_configure(config: pytest.Config) -> None:
    if config.pluginmanager.hasplugin("xdist") and not hasattr(config, "workerinput"):  # the controller
        config.pluginmanager.register(WorkerTimes(), "quantbench-worker-times")


@pytest.fixture(scope="session")
def session_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One artifact cache for the whole test session (trained tiny models are reused)."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="session")
def kit(tmp_path_factory: pytest.TempPathFactory) -> Kit:
    """Some real models for tests that need any: one trained tiny CNN, its SavedModel and .tflite schemes."""
    return build_kit(tmp_path_factory.mktemp("kit"))


def latest(suite_reports: Path) -> Path:
    """The newest run of a suite as the harness finds it (run.json's `started_at` to the millisecond): a
    folder name sorts only to the second, and two runs of one test often start within a second."""
    from harness.results import latest_run_dir

    found = latest_run_dir(suite_reports)
    assert found is not None, f"no run under {suite_reports}"
    return found


def run_bench(*args: str, cwd: Path | None = None, timeout: float = 600,
              process: bool = False) -> subprocess.CompletedProcess:
    """Run `bench ARGS` and capture its output: in this process (no TensorFlow import per call), or with
    process=True as `python -m harness.cli ARGS` where a real process is the point (signals, a crash's
    exit code, concurrent runs, the environment of a fresh interpreter); `timeout` bounds that process."""
    if process:
        return subprocess.run([sys.executable, "-m", "harness.cli", *args], cwd=cwd or ROOT,
                              env={**os.environ, **BENCH_ENV}, capture_output=True, text=True, timeout=timeout,
                              check=False)
    return run_bench_in_process(list(args), cwd or ROOT)


def run_bench_in_process(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """`harness.cli.main` as the `bench` script calls it, its stdout/stderr captured by typer's CliRunner."""
    from typer.testing import CliRunner

    from harness import cli

    fresh_keras_names()
    runner = CliRunner()
    code = 0
    with runner.isolation(env=BENCH_ENV) as (stdout, stderr, _), contextlib.chdir(cwd):
        argv, sys.argv = sys.argv, ["bench", *args]
        try:
            cli.main()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        finally:
            sys.argv = argv
            sys.stdout.flush()
            sys.stderr.flush()
        out, err = stdout.getvalue().decode(), stderr.getvalue().decode()
    return subprocess.CompletedProcess(["bench", *args], code, out, err)


def fresh_keras_names() -> None:
    """Keras's global state (its automatic layer-name counters) as a new `bench` process starts with it,
    so a model the harness builds gets the names a user's run gives it, whatever this process built before."""
    if "keras" in sys.modules:  # without its gc.collect(): a full collection of a heap holding TensorFlow, before
        # each in-process `bench`, was a sixth of the suite's CPU time
        sys.modules["keras"].backend.clear_session(free_memory=False)
    if "tf_keras" in sys.modules:
        sys.modules["tf_keras"].backend.clear_session()
