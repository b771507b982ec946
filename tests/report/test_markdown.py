"""One Markdown escaper for every user string (issue 20, item 12): whatever a model, scheme or device
name holds, summary.md shows it as the text it is, on its own table row, and renders nothing from it."""

from __future__ import annotations

import unicodedata
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt
from markdown_it.token import Token

from harness.report.markdown import escape_markdown
from harness.report.publish import publish_run
from tests.conftest import run_bench
from tests.report.runs import standard_cells, write_run

PARSER = MarkdownIt("commonmark").enable("table")  # the CommonMark reference grammar, plus GFM tables
HOSTILE = ("evil\r## Heading\n![pixel](http://attacker.example/t.png) **bold** `code` <img src=x onerror=1> "
           "[link](http://x) &amp; \\| ~~s~~ \t\x1b\x85\u2028\u2029\u202e_x_ 1. - > #")


def visible(text: str) -> str:
    """What the reader must see for `text`: invisible characters as their escapes."""
    names = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
    out = []
    for char in text:
        invisible = not (char.isascii() and char.isprintable()) and unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp")
        code = ord(char)
        escape = f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"
        out.append(names.get(char, escape) if invisible else char)
    return "".join(out)


def cell_tokens(text: str) -> list[Token]:
    tokens = PARSER.parse(f"| name | x |\n|---|---|\n| {escape_markdown(text)} | 1 |\n")
    rows = [t for t in tokens if t.type == "tr_open"]
    assert len(rows) == 2, f"{text!r} broke the table"
    inline = [t for t in tokens if t.type == "inline"][2]
    return inline.children or []


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40))
def test_any_text_renders_as_itself_in_one_table_cell(text: str) -> None:
    children = cell_tokens(text)
    assert {c.type for c in children} <= {"text", "text_special"}, children
    assert "".join(c.content for c in children) == visible(text).strip()  # a cell's edges are trimmed


def test_a_hostile_model_name_renders_nothing_in_summary_md(tmp_path: Path) -> None:
    records = standard_cells(model=HOSTILE, top1_drop=0.1)  # a failing check: the name is in Problems too
    run_dir = write_run(tmp_path, records)
    publish_run(run_dir, None)
    text = (run_dir / "summary.md").read_text()
    tokens = PARSER.parse(text)
    flat = [t for t in tokens] + [c for t in tokens for c in t.children or []]
    kinds = {t.type for t in flat}
    assert not kinds & {"image", "link_open", "html_inline", "html_block", "code_inline", "em_open", "s_open",
                        "blockquote_open", "bullet_list_open" if "## Problems" not in text else "-"}, kinds
    assert [t.type for t in flat].count("strong_open") == 1  # the verdict line's own **FAIL**
    headings = [tokens[i + 1].content for i, t in enumerate(tokens) if t.type == "heading_open"]
    assert headings == ["quantbench: nightly", "Problems", "Compared with an earlier run"], headings
    assert sum(1 for t in tokens if t.type == "tr_open") == 1 + len(records)
    assert visible(HOSTILE) in "".join(c.content for t in tokens for c in t.children or [])
    done = run_bench("report", str(run_dir), cwd=tmp_path)  # through the command too: no crash, no markup
    assert "Traceback" not in done.stderr and done.returncode == 1, done.stderr
