"""A cell as the trends read it (issue 25): the slim part of a record that the trend charts
(harness.report.charts) and the latency steps (harness.compare.latency_steps) use, and nothing else.

A 10,000-cell suite with 30 earlier runs in its trend window is 300,000 records: whole, they are
gigabytes; slim, each cell is its id, status, scheme, scheme kind, size, metrics and typical latency.
`History.trend` reads a run's cells straight into this form, one stored record at a time.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from typing import Any, NotRequired, Required

from pydantic import ConfigDict, TypeAdapter, ValidationError
from typing_extensions import TypedDict

from harness.record import (
    CellRecord,
    LatencyStats,
    Status,
    cell_id,
    invalid,
    restore_nonfinite,
    stored_object,
)
from harness.stats import typical

TREND_FIELDS = ("model", "scheme", "device", "status", "scheme_kind", "size_bytes", "metrics", "latency_ms")


@dataclass(frozen=True, slots=True)
class TrendCell:
    """One cell of one run as the trends read it."""

    cell: str  # its id: harness.record.cell_id(model, scheme, device)
    status: str
    scheme: str
    scheme_kind: str | None  # the scheme's family key (None: the record names none; the scheme stands for it)
    size_bytes: int | None
    metrics: dict[str, float]  # the metrics recorded as numbers (a null one is absent)
    latency_ms: float | None  # the typical latency (harness.stats.typical of the record's latency_ms)

    @classmethod
    def of(cls, record: CellRecord) -> TrendCell:
        """The slim form of a checked record (this run's own records, or a stored one read back)."""
        metrics = {sys.intern(k): float(v) for k, v in (record.get("metrics") or {}).items() if v is not None}
        kind = record.get("scheme_kind")
        latency = typical(record.get("latency_ms"))
        return cls(cell_id(record["model"], record["scheme"], record["device"]), sys.intern(record["status"]),
                   sys.intern(record["scheme"]), sys.intern(kind) if kind else None, record.get("size_bytes"),
                   metrics, float(latency) if latency is not None else None)


def trend_cells(records: list[CellRecord]) -> list[TrendCell]:
    return [TrendCell.of(record) for record in records]


class _TrendFields(TypedDict, total=False):
    """The fields of a stored record the trends read, checked as `validate_record` checks them."""

    __pydantic_config__ = ConfigDict(extra="forbid", strict=True)  # type: ignore[misc]
    model: Required[str]
    scheme: Required[str]
    device: Required[str]
    status: Required[Status]
    scheme_kind: NotRequired[str]
    size_bytes: NotRequired[int | None]
    metrics: NotRequired[dict[str, float | int | None]]
    latency_ms: NotRequired[LatencyStats | None]


_TREND_FIELDS = TypeAdapter(_TrendFields)


def slim(data: Any) -> TrendCell:
    """A stored record's JSON (any format this code reads) as a TrendCell, only the trend fields kept and
    checked (RecordError, ValueError or TypeError when they are damaged); the rest is dropped unread."""
    data = stored_object(data)
    fields = restore_nonfinite({k: data[k] for k in TREND_FIELDS if k in data})
    try:
        _TREND_FIELDS.validate_python(fields)
    except ValidationError as exc:
        raise invalid(fields, exc) from None  # named as validate_record names it (no union-member tags)
    return TrendCell.of(fields)  # checked above: a CellRecord's trend fields


def columns_record(row: dict[str, Any], json_fields: tuple[str, ...]) -> dict[str, Any]:
    """A schema-1 cell's columns as the record they stored (its JSON columns parsed)."""
    return {k: json.loads(v) if k in json_fields and v is not None else v for k, v in row.items()
            if k not in ("record", "compact")}
