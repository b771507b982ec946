"""How the reports scale (issue 25): the recorded real `suites/cnn.yaml` run (30 cells) as it is and repeated to
1,000 and 10,000 cells (tests/benchmarks/scale.py), then `bench report` run on it in its own process.

Reported, never asserted (a time depends on how busy the machine is; the sizes are asserted in
tests/report/test_scale.py): results.jsonl, report.html and summary.md sizes, `bench report`'s wall time and
peak RSS, and the first screen of report.html in headless Chromium (when installed): when the page painted
it (`data-first-screen-ms`, from navigation start) and how long from the navigation until `data-ready` was
seen from outside (polled every 0.2 s).

    make benchmarks      # or: .venv/bin/python -m pytest tests/benchmarks/test_report_scale.py -s --benchmark-enable
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.benchmarks.scale import write_history, write_scaled_run

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
RESULTS: list[dict[str, Any]] = []


def bench_report(run_dir: Path, history: Path | None = None, code: Path = ROOT) -> dict[str, float]:
    """`bench report RUN_DIR [--history H]` in a child process running the harness in `code`: its wall time (s)
    and peak RSS (MB, from wait4)."""
    env = {**os.environ, "PYTHONPATH": str(code)}
    start = time.perf_counter()
    argv = [sys.executable, "-m", "harness.cli", "report", str(run_dir), *(["--history", str(history)] if history else [])]
    child = subprocess.Popen(argv, env=env, cwd=code,  # noqa: S603  # in `code`: `python -m` puts the cwd first
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    assert child.stderr is not None
    errors = child.stderr.read().decode()
    assert child.returncode in (0, 1) and "Traceback" not in errors, errors  # 1: the planted failures
    return {"seconds": seconds, "peak_rss_mb": usage.ru_maxrss / 1024}


def first_screen(page: Path, profile: Path) -> dict[str, float]:
    """report.html in headless Chromium: the page's own first-screen paint time and the time until data-ready."""
    from tests.report.cdp import Browser
    from tests.report.test_browser import LIVE_FLAGS

    with Browser(CHROMIUM, LIVE_FLAGS, profile, profile.with_suffix(".log")) as browser:
        browser.open(page.as_uri())
        assert browser.wait_for('document.body && document.body.getAttribute("data-ready")', timeout=600) == "done"
        seen = time.monotonic() - browser.navigated_at  # from the navigation, to a poll (every 0.2 s) that saw it
        painted = float(browser.evaluate('document.body.getAttribute("data-first-screen-ms")'))
    return {"first_screen_ms": painted, "ready_seen_s": seen}


def measuring(config: pytest.Config) -> bool:
    """Whether benchmarks measure (`make benchmarks`: --benchmark-enable) or only run once as tests (`make
    test`: the default --benchmark-disable), where the large sizes are left out: tests/report/test_scale.py
    checks the 10,000-cell bounds, and one small size keeps the benchmark itself working."""
    return bool(config.getoption("benchmark_enable")) or not config.getoption("benchmark_disable")


@pytest.mark.parametrize("cells", [30, 1_000, 10_000])
def test_report_scale(cells: int, tmp_path: Path, benchmark: Any, request: pytest.FixtureRequest) -> None:
    if cells > 30 and not measuring(request.config):
        pytest.skip(f"{cells} cells: measured by make benchmarks (--benchmark-enable)")
    run_dir = write_scaled_run(tmp_path / f"cnn_{cells}", cells, failing_every=10)
    measured = benchmark.pedantic(bench_report, args=(run_dir,), rounds=1, iterations=1)
    row: dict[str, Any] = {"cells": cells, **measured,
                           **{f"{name}_mb": (run_dir / name).stat().st_size / 1e6
                              for name in ("results.jsonl", "report.html", "summary.md")}}
    if Path(CHROMIUM).exists():
        row.update(first_screen(run_dir / "report.html", tmp_path / "profile"))
    benchmark.extra_info.update(row)
    RESULTS.append(row)
    print("\n" + "\n".join(_line(r) for r in RESULTS))


def _line(row: dict[str, Any]) -> str:
    browser = (f"; first screen painted at {row['first_screen_ms']:.0f} ms, data-ready seen after "
               f"{row['ready_seen_s']:.2f} s" if "first_screen_ms" in row else "; no Chromium here")
    return (f"{row['cells']:>6} cells: results.jsonl {row['results.jsonl_mb']:.1f} MB, report.html "
            f"{row['report.html_mb']:.2f} MB, summary.md {row['summary.md_mb'] * 1000:.1f} KB; bench report "
            f"{row['seconds']:.1f} s, peak RSS {row['peak_rss_mb']:.0f} MB{browser}")


# The history's trend window (issue 25): K earlier 10,000-cell runs in the history, then `bench report RUN
# --history H` with the harness as it was before the slim trend read (BEFORE, a git revision, exported with
# `git archive`) and as it is, each on its own copy of the same history. K = 5 by default (the 30-run window
# extrapolates: before, memory grew by whole records per earlier run; after, by slim cells).
HISTORY_RUNS = int(os.environ.get("QUANTBENCH_BENCH_HISTORY_RUNS", "5"))
BEFORE = os.environ.get("QUANTBENCH_BENCH_BEFORE", "e2b63ab")  # the trends branch's base


def exported(revision: str, folder: Path) -> Path | None:
    """The harness package at a git revision, exported into `folder` (None: no git or no such revision here)."""
    folder.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", revision, "harness"],  # noqa: S603, S607
                             capture_output=True, check=False)
    if archive.returncode != 0:
        return None
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive.stdout, check=True)  # noqa: S603, S607
    return folder


def test_report_with_a_history_scale(tmp_path: Path, benchmark: Any, request: pytest.FixtureRequest) -> None:
    full = measuring(request.config)  # as a test: 300 cells, 2 earlier runs, this code only
    cells, runs = (10_000, HISTORY_RUNS) if full else (300, 2)
    run_dir = write_scaled_run(tmp_path / "cnn_run", cells, failing_every=10)
    history = tmp_path / "history.sqlite"
    write_history(history, runs, cells)
    before = exported(BEFORE, tmp_path / "before") if full else None
    rows: list[dict[str, Any]] = []
    for name, code in (("before", before), ("after", ROOT)):
        if code is None:
            if full:
                print(f"\nno {name} code to measure: git revision {BEFORE} is not here")
            continue
        copy = tmp_path / f"history_{name}.sqlite"
        shutil.copyfile(history, copy)
        load = os.getloadavg()[0]
        measured = (benchmark.pedantic(bench_report, args=(run_dir, copy, code), rounds=1, iterations=1)
                    if name == "after" else bench_report(run_dir, copy, code))
        rows.append({"code": name, "load": load, **measured})
    benchmark.extra_info.update({f"{r['code']}_{k}": v for r in rows for k, v in r.items() if k != "code"})
    print(f"\n{cells} cells, {runs} earlier {cells}-cell runs in the history "
          f"({history.stat().st_size / 1e6:.0f} MB), bench report --history:")
    print("\n".join(f"  {r['code']:>6}: {r['seconds']:.1f} s, peak RSS {r['peak_rss_mb']:.0f} MB "
                    f"(load average {r['load']:.1f} at its start)" for r in rows))
