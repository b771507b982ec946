"""report.html in a real headless Chromium: every chart renders, no console message, no network request."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from harness.history import History, trend_cells
from harness.report.html import SuiteSettings, render_html
from harness.report.publish import TREND_RUNS, publish_run
from tests.report.big import big_suite
from tests.report.cdp import Browser
from tests.report.runs import THRESHOLDS, XSS, cell, standard_cells, unpacked, with_verdicts, write_run

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = [pytest.mark.slow, pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=(  # slow: drives Chromium
    "Chromium is not installed (Debian package `chromium`): the real-browser check of report.html needs it"))]

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--host-resolver-rules=MAP * ~NOTFOUND",
         "--virtual-time-budget=20000"]


def chromium(page: Path, profile: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *flags, page.as_uri()],
                          capture_output=True, text=True, timeout=180, check=True)


def page_requests(netlog: Path) -> list[str]:
    """URLs the page asked for (the browser's own background requests have no origin)."""
    log = json.loads(netlog.read_text())
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    return [e["params"]["url"] for e in log["events"]
            if e["type"] == start and "url" in e.get("params", {}) and e["params"].get("initiator") != "not an origin"]


@pytest.fixture
def report_page(tmp_path: Path) -> Path:
    """The third of three published runs (so trends have history), with a regression, failures and an XSS name."""
    history = tmp_path / "history.sqlite"
    for index in range(3):
        planted = {"slowdown": 1.10, "top1_drop": 0.05} if index == 2 else {}
        records = standard_cells(seed=index * 10, **planted) + with_verdicts([
            cell(XSS, "float32", top1=0.8, seed=index), cell(XSS, "int8", top1=0.79, size_bytes=1_000_000, seed=5),
            cell(XSS, "dynamic_range", status="failed", error=f"RuntimeError: {XSS}"),
            cell(XSS, "int16x8", status="n/a", error="no calibration dataset configured")])
        run_dir = write_run(tmp_path / "reports", records, index=index)
        publish_run(run_dir, history, thresholds=THRESHOLDS)
    with History(history) as store:
        assert len(store.runs("nightly")) == 3
    return run_dir / "report.html"


LIVE_FLAGS = [f for f in FLAGS if not f.startswith("--virtual-time-budget")]  # real time: wait on the page


def test_report_renders_offline_without_errors(report_page: Path, tmp_path: Path) -> None:
    """Waits for the page's own markers over the DevTools protocol (data-ready: the first screen is drawn;
    then data-charts, when every chart asked for is drawn): correct however loaded the machine is."""
    html = unpacked(report_page.read_text())
    specs = json.loads(re.search(r'id="quantbench-charts">(.*?)</script>', html, re.S).group(1))
    assert {s["id"].split("-")[0] for s in specs} == {"size", "speed", "latency", "trend"}

    netlog, stderr = tmp_path / "netlog.json", tmp_path / "chromium.log"
    with Browser(CHROMIUM, [*LIVE_FLAGS, "--enable-logging=stderr", "--v=0", f"--log-net-log={netlog}"],
                 tmp_path / "profile", stderr) as browser:
        browser.open(report_page.as_uri())
        assert browser.wait_for('document.body && document.body.getAttribute("data-ready")') == "done"
        browser.evaluate("window.quantbench.drawAll(); Promise.all(Array.from({length: 15}, (_, i) => "
                         "window.quantbench.openCell(i))).then(() => document.body.setAttribute('data-opened', '1'))")
        charts = browser.wait_for('document.body.getAttribute("data-charts")')
        assert charts == "done", browser.evaluate('document.body.getAttribute("data-charts-error")')
        assert browser.wait_for('document.body.getAttribute("data-opened")') == "1"
        dom = browser.dom()
        console = browser.console_messages()
        requests = [u for u in browser.requests() if u != report_page.as_uri()]
        screenshot = tmp_path / "report.png"
        browser.screenshot(screenshot, 1400, 2400)
    assert f'data-charts-rendered="{len(specs)}"' in dom, "the page's renderer did not finish every chart"
    for spec in specs:
        tag = re.search(rf'<div[^>]*\bid="{spec["id"]}"[^>]*>', dom).group(0)
        assert "js-plotly-plot" in tag, f"chart {spec['id']} was not drawn"
    assert dom.count('class="main-svg"') >= len(specs)
    assert console == [] and [line for line in stderr.read_text().splitlines() if ":CONSOLE" in line] == []
    assert requests == [] and page_requests(netlog) == []
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom and "<script>alert" not in dom
    # the page's own scripts and payloads, and plotly once unpacked: nothing injected from a record
    assert dom.count("<script") == html.count("<script") + 1
    assert "FAIL: 1 cell(s) violate thresholds · 2 regression(s) vs run #2" in dom
    for element in ("verdict", "overview", "recommendation", "latency-tests", "problems", "results", "cells"):
        assert re.search(rf'\bid="{element}"', dom), f"#{element} is missing"
    assert re.search(r'<details class="checks failing" open="">', dom)  # failing checks expanded, the rest not
    assert re.search(r'<details class="checks">', dom)
    assert screenshot.stat().st_size > 50_000
    print(f"\nreport.html screenshot: {screenshot}")

    with Browser(CHROMIUM, LIVE_FLAGS, tmp_path / "profile-link", tmp_path / "link.log") as browser:
        browser.open(f"{report_page.as_uri()}#cell-1")
        assert browser.wait_for('document.getElementById("cell-1") && document.getElementById("cell-1").open')
        linked = browser.dom()
    assert re.search(r'<details class="cell" id="cell-1" open="">', linked), "a link to a cell opens its details"
    assert not re.search(r'<details class="cell" id="cell-2" open="">', linked)


def body_attributes(dom: str) -> dict[str, str]:
    return dict(re.findall(r'([\w-]+)="([^"]*)"', re.search(r"<body([^>]*)>", dom).group(1)))


def test_a_1000_cell_report_is_bounded_and_opens_fast(tmp_path: Path) -> None:
    """40 models × 25 schemes, 1,000 latency samples, weights and an audit per cell, and 30 earlier
    runs in the trends: ≤ 15 MB; the page marks when its first screen painted (printed, not asserted: a
    time depends on how busy the machine is; tests/benchmarks/report_scale.py reports it), draws every
    chart when asked, and its cells table pages and filters."""
    records = big_suite(40, 25)
    cells = trend_cells(records)
    trend = [(f"2026-01-{night + 1:02d}T02:00:00+00:00", cells) for night in range(TREND_RUNS)]
    page = tmp_path / "report.html"
    page.write_text(render_html(records, {"suite": "big", "started_at": "2026-02-01T02:00:00+00:00"}, None,
                                trend, [], SuiteSettings()))
    size = page.stat().st_size
    assert size <= 15_000_000, f"{size / 1e6:.1f} MB"
    netlog, stderr = tmp_path / "netlog.json", tmp_path / "chromium.log"
    with Browser(CHROMIUM, [*LIVE_FLAGS, "--enable-logging=stderr", "--v=0", f"--log-net-log={netlog}"],
                 tmp_path / "profile", stderr) as browser:  # one page load, on the real clock (no virtual time)
        browser.open(page.as_uri())
        assert browser.wait_for('document.body && document.body.getAttribute("data-ready")', timeout=1200) == "done"
        first = body_attributes(browser.dom())
        assert browser.wait_for('document.body.getAttribute("data-results-page")', timeout=1200) == "1"
        status = browser.evaluate('document.getElementById("results-status").textContent')
        table_links = browser.evaluate('document.querySelectorAll("#results tbody a").length')
        browser.evaluate('var f = document.getElementById("cells-filter"); f.model.value = "model_07"; '
                         'f.scheme.value = "qat"; f.dispatchEvent(new Event("input")); 1')
        filtered = browser.evaluate('Array.from(document.querySelectorAll("#results tbody a"), a => a.textContent)')
        browser.evaluate("window.quantbench.drawAll(); 1")
        assert browser.wait_for('document.body.getAttribute("data-charts")', timeout=1200) == "done"
        dom, console = browser.dom(), browser.console_messages()
    first_screen = int(first["data-first-screen-ms"])  # when the parsed first screen was painted
    print(f"\n1,000-cell report.html: {size / 1e6:.2f} MB, first screen painted at {first_screen} ms")
    assert first_screen >= 0 and "data-charts-rendered" not in first  # no chart is in view on the first screen
    charts = len(json.loads(re.search(r'id="quantbench-charts">(.*?)</script>', unpacked(page.read_text()),
                                      re.S).group(1)))
    assert body_attributes(dom).get("data-charts-rendered") == str(charts) == "126"  # 40 × 3 and 6 trends
    assert console == [] and [line for line in stderr.read_text().splitlines() if ":CONSOLE" in line] == []
    assert page_requests(netlog) == []
    assert 'id="overview"' in dom and 'id="recommendation"' in dom
    assert status == "cells 1–100 of 1000; page 1 of 10" and table_links == 100
    assert filtered == ["model_07/qat@local", "model_07/prune+qat@local", "model_07/cluster+qat@local",
                        "model_07/prune+cluster+qat@local"]


def chromium_real_time(page: Path, profile: Path) -> str:
    """The DOM at the load event, on the real clock (the flags without the virtual time budget);
    `page` may end in a #fragment."""
    flags = [f for f in FLAGS if not f.startswith("--virtual-time-budget")]
    path, _, fragment = str(page).partition("#")
    url = Path(path).as_uri() + (f"#{fragment}" if fragment else "")
    return subprocess.run([CHROMIUM, *flags, f"--user-data-dir={profile}", "--dump-dom", url],
                          capture_output=True, text=True, timeout=180, check=True).stdout


def test_the_network_check_sees_a_page_request(tmp_path: Path) -> None:
    """The netlog filter above is only worth something if it catches a request a page makes."""
    page = tmp_path / "probe.html"
    page.write_text('<img src="http://example.invalid/pixel.png">')
    netlog = tmp_path / "netlog.json"
    chromium(page, tmp_path / "profile", f"--log-net-log={netlog}", "--dump-dom")
    assert page_requests(netlog) == ["http://example.invalid/pixel.png"]


def test_the_console_check_sees_a_page_error_and_the_wait_sees_the_marker(tmp_path: Path) -> None:
    """The DevTools client above is only worth something if it sees what a page logs, and waits for a
    marker set late (here after a chain of timers) rather than returning early."""
    page = tmp_path / "probe.html"
    page.write_text("<body><script>console.error('probe'); var n = 0; (function tick() { if (++n < 50) "
                    "{ setTimeout(tick, 10); } else { document.body.setAttribute('data-ready', 'done'); } })();"
                    "</script></body>")
    with Browser(CHROMIUM, LIVE_FLAGS, tmp_path / "profile", tmp_path / "chromium.log") as browser:
        browser.open(page.as_uri())
        assert browser.wait_for('document.body && document.body.getAttribute("data-ready")') == "done"
        assert browser.evaluate("n") == 50
        assert any("probe" in line for line in browser.console_messages())
