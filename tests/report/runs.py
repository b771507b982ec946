"""Synthetic run directories for the report tests: records built by hand, no models trained."""

from __future__ import annotations

import base64
import gzip
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from harness.config.schema import Bound, Thresholds
from harness.results import ResultsWriter, write_run_info
from harness.schemes import SCHEMES
from harness.stats import summarize
from harness.verdicts import bounds_for, check

XSS = "<script>alert(1)</script>"
THRESHOLDS = Thresholds(defaults={"top1": Bound(max_abs_drop=0.02), "size_ratio": Bound(max=1.0)})
START = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)


def cell(model: str, scheme: str, *, top1: float = 0.90, size_bytes: int = 4_000_000, latency_ms: float = 10.0,
         seed: int = 0, samples: int = 60, spread: float = 0.03, status: str = "ok", error: str | None = None,
         device: str = "local") -> dict[str, Any]:
    """One record; latency samples are log-normal around `latency_ms` (relative spread `spread`)."""
    record: dict[str, Any] = {
        "model": model, "scheme": scheme, "scheme_kind": scheme, "scheme_options": {}, "device": device,
        "status": status, "error": error, "size_bytes": None, "gzip_bytes": None, "metrics": {}, "metrics_na": None,
        "latency_ms": None, "latency_samples_ms": None, "memory": None, "verdicts": [], "artifact": None,
        "timings_s": {"convert": 0.5, "evaluate": 0.2, "latency": 0.3}, "finished_at": START.isoformat(),
        "claims": [],  # no model file behind these records: no scheme claims checked (harness/claims.py)
    }
    if status != "ok":
        return record
    rng = np.random.default_rng(seed)
    values = rng.lognormal(np.log(latency_ms), spread, samples).tolist()
    record.update(size_bytes=size_bytes, gzip_bytes=int(size_bytes * 0.9), metrics={"top1": top1, "top5": 0.99},
                  latency_ms={**summarize(values), "init": 5.0, "first": latency_ms * 2, "warmup_mean": latency_ms},
                  latency_samples_ms=values)
    if scheme != "float32":
        record["metrics"].update(top1_agreement=0.97, snr_db=32.5)
    if scheme in SCHEMES and SCHEMES.get(scheme).needs_calibration:  # as the runner records it
        record["calibration"] = {"dataset": "train", "samples": 200, "seed": 0, "drawn": 200}
    return record


def plain(markdown: str) -> str:
    """summary.md with its backslash escapes undone: the text a reader sees (for assertions)."""
    return re.sub(r"\\(.)", r"\1", markdown)


def with_verdicts(records: list[dict[str, Any]], thresholds: Thresholds = THRESHOLDS) -> list[dict[str, Any]]:
    """Fill in each ok record's checks vs its model's float32 record, as the runner does."""
    baselines = {(r["model"], r["device"]): r for r in records if r["scheme"] == "float32"}
    for record in records:
        if record["status"] == "ok":
            base = baselines.get((record["model"], record["device"]))
            record["verdicts"] = check(record, base, bounds_for(thresholds, record["model"], record["scheme"]))
    return records


def standard_cells(seed: int = 0, *, slowdown: float = 1.0, top1_drop: float = 0.0,
                   model: str = "digits_cnn") -> list[dict[str, Any]]:
    """A float32 baseline, int8 (whose latency `slowdown` scales) and dynamic_range (losing `top1_drop`)."""
    return with_verdicts([
        cell(model, "float32", top1=0.91, size_bytes=4_000_000, latency_ms=10.0, seed=seed),
        cell(model, "int8", top1=0.90, size_bytes=1_000_000, latency_ms=6.0 * slowdown, seed=seed + 1),
        cell(model, "dynamic_range", top1=0.905 - top1_drop, size_bytes=1_100_000, latency_ms=8.0, seed=seed + 2),
    ])


def write_run(reports: Path, records: list[dict[str, Any]], *, suite: str = "nightly", index: int = 0,
              info: dict[str, Any] | None = None) -> Path:
    """A run directory reports/<suite>/<stamp> as `bench run` leaves it; run `index` starts a day after index-1."""
    started = START + timedelta(days=index)
    run_dir = reports / suite / started.strftime("%Y%m%dT%H%M%SZ")
    writer = ResultsWriter(run_dir)
    for record in records:
        writer.append(record)
    write_run_info(run_dir, {
        "suite": suite, "suite_path": str(reports / "gone.yaml"), "suite_sha256": "ab" * 32,
        "started_at": started.isoformat(timespec="seconds"),
        "finished_at": (started + timedelta(minutes=3)).isoformat(timespec="seconds"), "status": "finished",
        "argv": ["bench", "run", "suites/nightly.yaml"], "git_commit": f"{index:040x}",
        "host": {"hostname": "ci-runner"}, "devices": {"local": {"kind": "local", "core": 1}}, **(info or {}),
    })
    return run_dir


def unpack(data: str) -> str:
    """One packed payload of report.html (base64 of gzip), as text."""
    return gzip.decompress(base64.b64decode(data)).decode("utf-8")


def unpacked(page: str) -> str:
    """report.html as a reader of the opened page sees it, for text assertions: every cell's details in
    `#cells` and the chart specs as JSON (`id="quantbench-charts"`), unpacked as the page's script does."""
    chunks = "".join(unpack(m) for m in re.findall(r'<script type="application/octet-stream" class="qb-cells"[^>]*>'
                                                   r'([^<]*)</script>', page))
    page = page.replace('<div id="cells"></div>', f'<div id="cells">{chunks}</div>')
    return re.sub(r'<script type="application/octet-stream" id="quantbench-charts">([^<]*)</script>',
                  lambda m: f'<script type="application/json" id="quantbench-charts">{unpack(m.group(1))}</script>', page)


def table_rows(page: str) -> list[list[object]]:
    """The cells table's rows as the page's script draws them (harness.report.html.table_row)."""
    data = re.search(r'<script type="application/octet-stream" id="qb-rows">([^<]*)</script>', page)
    assert data, "report.html has no packed cells table"
    rows: list[list[object]] = json.loads(unpack(data.group(1)))
    return rows
