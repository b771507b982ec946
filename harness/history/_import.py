"""`bench history import`: record run folders produced elsewhere into a history, idempotently (the
run id from run.json is the key: importing a run twice keeps one copy)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.cache import file_digest
from harness.errors import HarnessError
from harness.history._errors import HistoryError
from harness.record import RecordError, validate_run_info
from harness.results import RESULTS, RUN_INFO, incompleteness, read_results, read_run_info

if TYPE_CHECKING:
    from harness.history._store import History

_SELECTING = ("--only", "--devices")


@dataclass(frozen=True)
class ImportResult:
    """One imported run: its history id, its run id, and whether the history had it already."""

    history_id: int
    run_id: str
    cells: int
    again: bool  # the history held this run already: kept as it was (the same results.jsonl) or replaced


def selected_cells(run_info: dict[str, Any]) -> str | None:
    """Which options chose a subset of the suite's cells (`--only`, `--devices`), from run.json's argv."""
    argv = run_info.get("argv") or []
    options = dict.fromkeys(a.split("=")[0] for a in argv if isinstance(a, str) and a.split("=")[0] in _SELECTING)
    return f"cells chosen with {' and '.join(options)}" if options else None


def import_run(store: History, run_dir: Path) -> ImportResult:
    """Record a finished run folder in `store` under its run id, without comparing it (its
    `regressions` are unknown here); HistoryError (one line naming the folder) when it is not a
    finished run. A run the history holds with the same results.jsonl (its sha256) is left as it
    is (a published row keeps its comparison); one whose results changed is replaced. Partial runs
    (`--only`, cells without a result) are recorded as partial."""
    info = _finished_run_info(run_dir)
    try:
        records = read_results(run_dir)
    except HarnessError as exc:
        raise HistoryError(f"{run_dir}: not a finished run ({exc})") from None
    if not records:
        raise HistoryError(f"{run_dir}: not a finished run (no records in {RESULTS})")
    known = store.run_by_key(info["run_id"])
    entry = store.run(known) if known is not None else None
    same = entry is not None and (entry.suite, entry.started_at) == (info["suite"], info["started_at"])
    if entry is not None and same and entry.results_sha256 == file_digest(run_dir / RESULTS):
        return ImportResult(entry.id, info["run_id"], len(records), again=True)  # as recorded: nothing to do
    partial = incompleteness(records, info) or selected_cells(info)
    try:
        history_id = store.record(records, info, run_dir.resolve(), regressions=None, partial=partial)
    except HistoryError as exc:
        raise HistoryError(f"{run_dir}: not imported: {exc}") from None
    return ImportResult(history_id, info["run_id"], len(records), again=known is not None)


def _finished_run_info(run_dir: Path) -> dict[str, Any]:
    """run.json of a finished run, checked; HistoryError naming the folder and what is missing."""
    if not (run_dir / RUN_INFO).is_file() or not (run_dir / RESULTS).is_file():
        raise HistoryError(f"{run_dir}: not a finished run (no {RUN_INFO} and {RESULTS} there)")
    try:
        info = dict(validate_run_info(read_run_info(run_dir)))
    except (RecordError, HarnessError) as exc:
        raise HistoryError(f"{run_dir}: not a finished run ({RUN_INFO}: {exc})") from None
    if not info.get("run_id"):
        raise HistoryError(f"{run_dir}: not a finished run ({RUN_INFO} has no run_id to key it by)")
    status = info.get("status")
    if status != "finished" and not (status is None and info.get("finished_at")):
        raise HistoryError(f"{run_dir}: not a finished run ({RUN_INFO} says {str(status or 'no finish time')!r:.40})")
    return info
