"""Resuming a run: which recorded cells are kept (inputs unchanged, float baseline kept), their checks
re-applied under today's thresholds; the others moved to superseded.jsonl, with notes saying why."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.plan import Cell, cell_key, plan_cells
from harness.record import CellRecord, cell_id, record_id
from harness.results import ResultsWriter, read_results, read_run_info, rewrite_results
from harness.runner.checks import verdicts
from harness.schemes import BASELINE
from harness.suite.loader import LoadedSuite

Dropped = list[tuple[CellRecord, str]]  # (record, why it cannot be kept)


def resumable(loaded: LoadedSuite, run_dir: Path, cells: list[Cell]) -> tuple[dict[str, CellRecord], list[str]]:
    """The recorded cells a resumed run can keep: those whose inputs (cell key) are unchanged
    and whose float baseline is kept too, with their checks re-applied under today's thresholds.
    The others are moved to superseded.jsonl (and re-run if planned); the notes say which."""
    recorded = read_results(run_dir)
    if not recorded:
        return {}, []
    devices = sorted({c.device for c in cells} | set(loaded.suite.devices))
    planned = {c.id: c for c in plan_cells(loaded, None, devices)}
    keep, dropped = still_valid(recorded, {i: cell_key(loaded, c) for i, c in planned.items()})
    notes = resume_notes(read_run_info(run_dir), loaded.sha256, dropped)
    changed = False
    for record in keep:
        before = record.get("verdicts")
        _recheck(loaded, planned[record_id(record)], record, keep)
        changed = changed or record.get("verdicts") != before
    if dropped or changed:
        supersede(run_dir, [r for r, _ in dropped])
        rewrite_results(run_dir, keep)
    return {record_id(r): r for r in keep}, notes


def _recheck(loaded: LoadedSuite, cell: Cell, record: CellRecord, kept: list[CellRecord]) -> None:
    baseline = next((r for r in kept if record_id(r) == cell_id(cell.model.label, BASELINE, cell.device)), None)
    if record["status"] == "ok":
        record["verdicts"] = verdicts(loaded, cell, record, baseline)


def still_valid(recorded: list[CellRecord], keys: dict[str, str]) -> tuple[list[CellRecord], Dropped]:
    """Split recorded cells into those a resume keeps and those it drops (with the reason). A cell
    whose float baseline is dropped is dropped too: its fidelity was measured against that baseline."""
    keep, dropped = [], []
    for record in recorded:
        cell = record_id(record)
        if cell not in keys:
            dropped.append((record, "no longer in the suite"))
        elif record.get("cell_key") != keys[cell]:
            reason = "its inputs changed" if record.get("cell_key") else "recorded by an older quantbench"
            dropped.append((record, reason))
        else:
            keep.append(record)
    gone = {cell_id(r["model"], BASELINE, r["device"]) for r, _ in dropped if r["scheme"] == BASELINE}
    orphans = [r for r in keep if r["scheme"] != BASELINE and cell_id(r["model"], BASELINE, r["device"]) in gone]
    dropped += [(r, "its float baseline is re-run") for r in orphans]
    return [r for r in keep if r not in orphans], dropped


def resume_notes(info: dict[str, Any], sha256: str, dropped: Dropped) -> list[str]:
    notes = []
    if info.get("suite_sha256") and info["suite_sha256"] != sha256:
        notes.append(f"the suite file changed since this run started (sha256 {info['suite_sha256'][:12]} → "
                     f"{sha256[:12]}): cells whose inputs are unchanged are kept, their checks re-applied")
    for record, reason in dropped:
        notes.append(f"{record_id(record)}: not kept ({reason}); moved to superseded.jsonl")
    return notes


def supersede(run_dir: Path, records: list[CellRecord]) -> None:
    """Keep dropped records beside the run (superseded.jsonl) rather than losing them."""
    if records:
        ResultsWriter(run_dir, name="superseded.jsonl").extend(records)
