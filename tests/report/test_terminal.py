"""The table `bench run` prints: a failed or n/a cell's error stays readable (issue 21): wrapped at word
boundaries, never cut mid-word; a very long one is cut at a word with "…" and where the full text is."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

from harness.report.terminal import ERROR_CHARS, FULL_TEXT_AT, clip_words, results_table
from tests.report.runs import cell

WORDS = st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=30)


def _verdict_column(records: list, width: int) -> str:
    """The table rendered `width` wide; the verdict column's lines of its (only) row, joined by spaces."""
    console = Console(width=width, record=True, markup=False, color_system=None)
    console.print(results_table(records, "t"))
    body = [line for line in console.export_text().splitlines() if line.startswith("│")]
    return " ".join(line.rstrip("│ ").split("│")[-1].strip() for line in body).strip()


def test_a_failed_cells_error_is_shown_whole_wrapped_at_words() -> None:
    error = ("model source failed: dataset 'test': /data/suites/digits.npz has no array 'labels' "
             "(has ['x', 'y']); give y_key the name of the labels array")
    shown = _verdict_column([cell("m", "float32", status="failed", error=error)], width=160)
    assert shown == f"failed {error}", shown  # every word whole: the column's lines join back to the text


def test_a_very_long_error_is_cut_at_a_word_and_says_where_the_rest_is() -> None:
    words = [f"word{i:03d}" for i in range(200)]
    shown = _verdict_column([cell("m", "int8", status="n/a", error=" ".join(words))], width=120)
    kept = shown.removeprefix("n/a ").removesuffix(f" … ({FULL_TEXT_AT})").split()
    assert shown.endswith(f"… ({FULL_TEXT_AT})") and kept == words[: len(kept)], shown
    assert 0 < len(" ".join(kept)) <= ERROR_CHARS


def test_a_word_wider_than_its_column_folds_instead_of_being_cut() -> None:
    path = "/very/long/" + "x" * 70 + "/model.tflite"
    shown = _verdict_column([cell("m", "int8", status="failed", error=f"{path}: not found")], width=100)
    assert re.sub(r"\s", "", shown) == f"failed{path}:notfound", shown


@given(st.lists(WORDS, min_size=1, max_size=60), st.integers(min_value=1, max_value=200))
def test_clip_words_keeps_whole_words_or_says_it_cut(words: list[str], limit: int) -> None:
    text = " ".join(words)
    clipped = clip_words(text, limit, "see X")
    if len(text) <= limit:
        assert clipped == text
        return
    assert clipped.endswith(" … (see X)")
    kept = clipped.removesuffix(" … (see X)")
    assert text.startswith(kept) and len(kept) <= limit
    assert text[len(kept)] == " " or len(words[0]) > limit  # a cut inside a word only for a first word too long
