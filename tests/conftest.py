"""Shared fixtures: an isolated artifact cache and a helper to run the `bench` CLI."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.kit import Kit, build_kit

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
BENCH_ENV = {"COLUMNS": "200", "TF_CPP_MIN_LOG_LEVEL": "3"}
# Under `pytest -n 2 --dist loadgroup` (make test) each test module runs whole on one worker (its module
# fixtures are built once), and these run on one worker as one unit, never at the same time as each other:
# Chromium, a Ray cluster, and the latency tests that time on a pinned core.
SERIAL = ("tests/report/test_browser.py", "tests/executors/", "tests/devices/test_local.py", "tests/test_host_state.py",
          "tests/test_float_pairs.py", "tests/test_ab_pairs.py", "tests/test_regression_tracker.py", "tests/benchmarks/")


@pytest.hookimpl(optionalhook=True)  # an xdist hook: pytest without xdist (-p no:xdist) must still run
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object | None:
    """The module-or-SERIAL grouping as xdist's scope scheduler (xdist 3.8's own xdist_group marks are lost
    under pytest 9.2: it renames nodes through an attribute pytest no longer reads)."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ModuleOrSerial(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::")[0]
            return "serial" if path.startswith(SERIAL) else path

    return ModuleOrSerial(config, log)


@pytest.fixture(scope="session")
def session_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One artifact cache for the whole test session (trained tiny models are reused)."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="session")
def kit(tmp_path_factory: pytest.TempPathFactory) -> Kit:
    """Some real models for tests that need any: one trained tiny CNN, its SavedModel and .tflite schemes."""
    return build_kit(tmp_path_factory.mktemp("kit"))


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
    for name in ("keras", "tf_keras"):
        if name in sys.modules:
            sys.modules[name].backend.clear_session()
