"""The report's first screen: verdict matrices (models × schemes per metric and device), the
cells that need attention, and the recommended scheme per model and device.

Everything here is plain data; the template escapes every string it shows.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Literal

from harness.claims import INTEGER_ONLY
from harness.compare import Comparison
from harness.record import CellRecord, cell_id
from harness.report.rows import Row
from harness.schemes import BASELINE, SCHEMES, Family

Rule = Literal["smallest", "fastest"]
# One colour per scheme family (the scheme declares its family), the same in every chart and in the
# overview's legend (colour-blind safe).
FAMILY_COLOURS: dict[str, str] = {"baseline": "#595959", "post-training": "#0072b2", "training-time": "#d55e00",
                                   "combined": "#7b3294"}
# The decision tree the recommendation is read against: (branch key, condition, what it suggests).
DECISION_TREE = (
    ("no-data", "no representative data", "dynamic range or float16 (no calibration needed)"),
    ("data", "representative data available", "full integer (int8, or int16x8 when int8 loses too much)"),
    ("accelerator", "an accelerator (Edge TPU, DSP, NPU, microcontroller)", "integer-only: int8 ops and integer I/O"),
    ("training", "training data and time to fine-tune", "training-time: QAT, pruning or clustering (then convert)"),
)


def scheme_family(kind: str) -> Family:
    """The registered scheme's `family` (a scheme no longer registered: post-training)."""
    return SCHEMES.get(kind).family if kind in SCHEMES else "post-training"


def claims_integer_only(kind: str) -> bool:
    """The registered scheme claims an integer-only model (every op and its I/O integer)."""
    return kind in SCHEMES and any(claim.name == INTEGER_ONLY.name for claim in SCHEMES.get(kind).claims)


@dataclass(frozen=True)
class Cell:
    """One cell as the overview shows it: its index in the record list, row and verdict class."""

    index: int
    row: Row
    kind: str  # the registered scheme (the row shows the suite's label)
    family: Family
    state: str  # pass, fail, regressed, failed, na, baseline
    reason: str  # why it needs attention ("" when it does not)
    calibrated: bool = False  # the cell drew calibration data (its scheme `calibrates` with its options)


@dataclass(frozen=True)
class Matrix:
    """One table of the overview: a metric on a device, models down, schemes across."""

    metric: str
    device: str
    models: list[str]
    schemes: list[str]
    cells: dict[tuple[str, str], Cell]


def _regressions(comparison: Comparison | None) -> dict[str, list[str]]:
    found: dict[str, list[str]] = defaultdict(list)
    for change in comparison.regressions if comparison else []:
        found[change.cell].append(f"{change.quantity} vs previous run ({change.detail})")
    return found


def _state(row: Row, regressed: list[str]) -> tuple[str, str]:
    if row.status == "failed":
        return "failed", (row.error or "failed").splitlines()[-1][:200] if row.error else "failed"
    if row.status != "ok":
        return "na", (row.error or row.status)[:200]
    if row.checks_failed:
        return "fail", "violates " + ", ".join(row.checks_failed)
    if regressed:
        return "regressed", "regressed: " + "; ".join(regressed)
    return ("baseline" if row.scheme == BASELINE else "pass"), ""


def classify(rows: list[Row], records: list[CellRecord], comparison: Comparison | None) -> list[Cell]:
    """Every cell with its verdict class, in record order."""
    regressions = _regressions(comparison)
    cells = []
    for index, (row, record) in enumerate(zip(rows, records, strict=True)):
        state, reason = _state(row, regressions.get(cell_id(row.model, row.scheme, row.device), []))
        kind = str(record.get("scheme_kind") or row.scheme)
        cells.append(Cell(index, row, kind, scheme_family(kind), state, reason, bool(record.get("calibration"))))
    return cells


def matrices(cells: list[Cell]) -> list[Matrix]:
    """One matrix per headline metric and device, models and schemes in first-seen order."""
    groups: dict[tuple[str, str], list[Cell]] = defaultdict(list)
    for cell in cells:
        groups[(cell.row.headline or "no metric", cell.row.device)].append(cell)
    if len(groups) > 1:  # a failed cell has no metric: show it in its model's matrix on that device
        _move_metricless(groups)
    return [Matrix(metric, device, list(dict.fromkeys(c.row.model for c in group)),
                   list(dict.fromkeys(c.row.scheme for c in group)), {(c.row.model, c.row.scheme): c for c in group})
            for (metric, device), group in groups.items()]


def _move_metricless(groups: dict[tuple[str, str], list[Cell]]) -> None:
    for key in [k for k in groups if k[0] == "no metric"]:
        for cell in groups.pop(key):
            home = next((k for k, group in groups.items() if k[1] == cell.row.device
                         and any(c.row.model == cell.row.model for c in group)), key)
            groups.setdefault(home, []).append(cell)


def attention(cells: list[Cell]) -> list[Cell]:
    """Failed, violating and regressed cells, worst first (failed, fail, regressed, n/a)."""
    order = {"failed": 0, "fail": 1, "regressed": 2, "na": 3}
    return sorted((c for c in cells if c.state in order), key=lambda c: (order[c.state], c.index))


@dataclass(frozen=True)
class Recommendation:
    """The passing cells on a model's size/latency Pareto front on one device, and the one to ship."""

    model: str
    device: str
    front: list[Cell]
    pick: Cell | None
    branch: str  # the DECISION_TREE key the pick follows ("" without a pick)
    candidates: int  # cells that pass every check


def pareto_cost(cells: list[Cell]) -> list[Cell]:
    """The cells no other cell beats on both size and latency (lower is better), smallest first."""
    def cost(c: Cell) -> tuple[float, float]:
        return (c.row.size_mb or float("inf"), c.row.latency_ms or float("inf"))

    def beats(a: tuple[float, float], b: tuple[float, float]) -> bool:
        return a[0] <= b[0] and a[1] <= b[1] and a != b

    return sorted((c for c in cells if not any(beats(cost(o), cost(c)) for o in cells)), key=cost)


def branch(cell: Cell, integer_only: bool | None) -> str:
    """Which branch of the decision tree a cell follows: training (its scheme fine-tunes), accelerator
    (an integer-only model, read back or claimed), else data or no-data (it drew calibration data or not)."""
    if cell.family in ("training-time", "combined"):
        return "training"
    if integer_only or claims_integer_only(cell.kind):
        return "accelerator"
    return "data" if cell.calibrated else "no-data"


def recommend(cells: list[Cell], rule: Rule) -> list[Recommendation]:
    """Per model and device: the passing optimized cells' Pareto front and the rule's pick from it."""
    groups: dict[tuple[str, str], list[Cell]] = defaultdict(list)
    for cell in cells:
        groups[(cell.row.model, cell.row.device)].append(cell)
    result = []
    for (model, device), group in groups.items():
        passing = [c for c in group if c.state == "pass" and c.row.checks_total > 0]
        front = pareto_cost(passing)
        key = (lambda c: (c.row.size_mb or float("inf"), c.row.latency_ms or float("inf"))) if rule == "smallest" \
            else (lambda c: (c.row.latency_ms or float("inf"), c.row.size_mb or float("inf")))
        pick = min(front, key=key) if front else None
        result.append(Recommendation(model, device, front, pick, branch(pick, pick.row.integer_only) if pick else "",
                                     len(passing)))
    return result
