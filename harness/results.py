"""Run directories: results.jsonl (one record per cell, appended as produced) and run.json."""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

RESULTS = "results.jsonl"
RUN_INFO = "run.json"


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def cell_id(model: str, scheme: str, device: str) -> str:
    """The identity of a cell: `model/scheme@device`."""
    return f"{model}/{scheme}@{device}"


def record_id(record: dict[str, Any]) -> str:
    return cell_id(record["model"], record["scheme"], record["device"])


def read_results(run_dir: Path) -> list[dict[str, Any]]:
    """All complete records; a line cut short by a crash is ignored (that cell re-runs on resume)."""
    path = run_dir / RESULTS
    if not path.exists():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and {"model", "scheme", "device", "status"} <= record.keys():
            records.append(record)
    latest = {record_id(r): r for r in records}  # a re-run cell supersedes its earlier record
    return list(latest.values())


class ResultsWriter:
    """Appends records durably: each one is flushed and fsynced before the next cell starts."""

    def __init__(self, run_dir: Path) -> None:
        run_dir.mkdir(parents=True, exist_ok=True)
        self.path = run_dir / RESULTS
        self._repair_tail()

    def _repair_tail(self) -> None:
        """Terminate a last line left unterminated by a crash, so appends start on a fresh line."""
        if self.path.exists() and self.path.stat().st_size:
            with open(self.path, "rb+") as handle:
                handle.seek(-1, os.SEEK_END)
                if handle.read(1) != b"\n":
                    handle.write(b"\n")

    def append(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, default=_jsonable, allow_nan=False) + "\n"
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


def write_run_info(run_dir: Path, info: dict[str, Any]) -> None:
    """Write run.json atomically."""
    tmp = run_dir / f".{RUN_INFO}.tmp"
    tmp.write_text(json.dumps(info, indent=2, default=_jsonable))
    os.replace(tmp, run_dir / RUN_INFO)


def read_run_info(run_dir: Path) -> dict[str, Any]:
    try:
        return json.loads((run_dir / RUN_INFO).read_text())
    except (OSError, ValueError):
        return {}


def latest_run_dir(suite_reports: Path) -> Path | None:
    """The most recent run directory of a suite (names are UTC timestamps, so they sort)."""
    if not suite_reports.is_dir():
        return None
    runs = sorted(p for p in suite_reports.iterdir() if p.is_dir() and (p / RUN_INFO).exists())
    return runs[-1] if runs else None
