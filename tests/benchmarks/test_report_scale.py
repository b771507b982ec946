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

from tests.benchmarks.scale import write_scaled_run

pytestmark = pytest.mark.slow
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
RESULTS: list[dict[str, Any]] = []


def bench_report(run_dir: Path) -> dict[str, float]:
    """`bench report RUN_DIR` in a child process: its wall time (s) and peak RSS (MB, from wait4)."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    start = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-m", "harness.cli", "report", str(run_dir)], env=env,  # noqa: S603
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


@pytest.mark.parametrize("cells", [30, 1_000, 10_000])
def test_report_scale(cells: int, tmp_path: Path, benchmark: Any) -> None:
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
