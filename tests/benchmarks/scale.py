"""A big run made from a real small one: the recorded `suites/cnn.yaml` run (tests/fixtures/cnn_run: 30 cells,
two CNNs × 15 schemes, trained, converted, evaluated and timed for real) repeated to any number of cells.

Copy k of model `m` is the model `m_k` (so the cells stay distinct and each copy keeps its float baseline);
`failing_every` plants problems in every n-th copy: one cell that failed to run and one that violates a
check, so a report's "failing cells first" has something to show at every size.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "cnn_run"


def real_records() -> list[dict[str, Any]]:
    """The 30 records of the recorded run, as results.jsonl holds them."""
    with gzip.open(FIXTURE / "results.jsonl.gz", "rt", encoding="utf-8") as stream:
        return [json.loads(line) for line in stream if line.strip()]


def scaled_records(cells: int, failing_every: int = 0) -> Iterator[dict[str, Any]]:
    """`cells` records (whole copies of the real run, the last one cut short), one at a time."""
    base = real_records()
    for index in range(cells):
        copy, record = divmod(index, len(base))
        yield _copy(base[record], copy, failing_every and copy % failing_every == failing_every - 1)


def _copy(record: dict[str, Any], copy: int, plant: bool) -> dict[str, Any]:
    new = {**record, "model": f"{record['model']}_{copy:04d}"}
    if plant and record["scheme"] == "int8":
        new.update(status="failed", error=f"RuntimeError: planted failure in copy {copy}", metrics={},
                   latency_ms=None, latency_samples_ms=None, verdicts=[])
    elif plant and record["scheme"] == "prune80":
        new["verdicts"] = [{**v, "value": v["threshold"] * 2, "pass": False} if v["check"] == "top1.max_abs_drop"
                           else v for v in record.get("verdicts") or []]
    return new


def write_scaled_run(run_dir: Path, cells: int, failing_every: int = 0) -> Path:
    """A run directory (results.jsonl, results.bin and run.json) of `cells` records built from the real run,
    stored as a run stores them today (the recorded run is format 2: its lines are upgraded and split)."""
    from harness.results import ResultsWriter

    run_dir.mkdir(parents=True, exist_ok=True)
    ResultsWriter(run_dir).extend(list(scaled_records(cells, failing_every)))
    info = json.loads((FIXTURE / "run.json").read_text())
    info["plan"] = None
    (run_dir / "run.json").write_text(json.dumps({k: v for k, v in info.items() if v is not None}, indent=2))
    return run_dir


def write_history(location: Path, runs: int, cells: int) -> None:
    """A history store holding `runs` earlier runs of the scaled suite, `cells` cells each, started on the days
    before the recorded run (recorded without a run folder: their cells are the history's compact records)."""
    from harness.history import History

    info = json.loads((FIXTURE / "run.json").read_text())
    with History(location) as store:
        for night in range(runs):
            started = f"2026-11-{night + 1:02d}T02:00:00+00:00"
            store.record(list(scaled_records(cells)), {**info, "run_id": f"earlier-{night}", "started_at": started,
                                                       "finished_at": started}, None, 0)
