"""A cell's threshold checks against its float baseline's record (on append, and again on resume)."""

from __future__ import annotations

from harness._latency import with_unpaired
from harness.plan import Cell
from harness.record import CellRecord, Verdict
from harness.results import utc_now
from harness.schemes import BASELINE
from harness.suite.loader import LoadedSuite
from harness.verdicts import bounds_for, check, claims_for


def verdicts(loaded: LoadedSuite, cell: Cell, record: CellRecord, baseline: CellRecord | None) -> list[Verdict]:
    reference = record if cell.scheme.label == BASELINE else baseline
    thresholds, model, scheme = loaded.suite.thresholds, cell.model.label, cell.scheme.label
    return check(record, reference, bounds_for(thresholds, model, scheme), claims=claims_for(thresholds, model, scheme))


def finish(loaded: LoadedSuite, cell: Cell, record: CellRecord, baseline: CellRecord | None) -> None:
    """Threshold checks against the (finished) float baseline record, and the finish time."""
    if record["status"] == "ok":
        with_unpaired(record, baseline)
        record["verdicts"] = verdicts(loaded, cell, record, baseline)
        if cell.scheme.label != BASELINE and (baseline is None or baseline["status"] != "ok"):
            record["metrics_na"] = (record["metrics_na"] or "") + " no float baseline to compare with"
    record["finished_at"] = utc_now()
