"""summary.md's problems list carries the full error text of every failed and n/a cell, escaped
(issue 21); the table's verdict cell stays one word."""

from __future__ import annotations

from pathlib import Path

from harness.report.publish import publish_run
from harness.report.summary import render_summary
from tests.report.runs import THRESHOLDS, cell, standard_cells, with_verdicts, write_run
from tests.report.test_markdown import HOSTILE, PARSER, visible

LONG = "model source failed: " + " ".join(f"step{i} said <b>no</b> | `x` *y*" for i in range(60)) + "\nlast line"


def _inline_texts(markdown: str, kind: str) -> list[str]:
    """The rendered text of each list item (kind "list_item_open") or table row (kind "tr_open")."""
    tokens, texts, inside = PARSER.parse(markdown), [], False
    for token in tokens:
        if token.type == kind:
            texts.append("")
            inside = True
        elif token.type == kind.replace("_open", "_close"):
            inside = False
        elif inside and token.type == "inline":
            joint = "|" if kind == "tr_open" and texts[-1] else ""
            texts[-1] += joint + "".join(c.content for c in token.children or [])
    return texts


def test_the_full_error_of_failed_and_na_cells_is_in_the_problems_list() -> None:
    records = [*standard_cells(), cell("m", "int8", status="failed", error=LONG),
               cell("m", "float16", status="n/a", error=HOSTILE)]
    items = _inline_texts(render_summary(records, {"suite": "s"}), "list_item_open")
    assert f"m/int8@local (failed): {visible(LONG)}" in items, items
    assert f"m/float16@local (n/a): {visible(HOSTILE).strip()}" in items, items


def test_the_table_cell_of_a_failed_cell_stays_short() -> None:
    rows = _inline_texts(render_summary([cell("m", "int8", status="failed", error=LONG)], {"suite": "s"}), "tr_open")
    assert rows[-1].split("|")[-1] == "failed" and len(rows[-1]) < 100, rows


def test_a_cell_that_violates_a_check_names_the_checks() -> None:
    records = with_verdicts(standard_cells(top1_drop=0.1))
    items = _inline_texts(render_summary(records, {"suite": "s"}), "list_item_open")
    assert any(i.endswith("(ok): checks failed: top1.max_abs_drop") for i in items), items


def test_a_regressed_cell_is_a_problem_listed_with_how_it_regressed(tmp_path: Path) -> None:
    history = tmp_path / "history.sqlite"
    for index in range(2):
        run_dir = write_run(tmp_path / "reports", standard_cells(seed=index * 10, slowdown=1.3 if index else 1.0),
                            index=index)
        publish_run(run_dir, history, thresholds=THRESHOLDS)
    items = _inline_texts((run_dir / "summary.md").read_text(), "list_item_open")
    assert any(i.startswith("digits_cnn/int8@local (ok): regressed: latency_ms vs previous run") for i in items), items
