"""MkDocs hook: fills the pages' generated parts from the code on every build, so they cannot go stale.

A page marks each generated part with an HTML comment (invisible on GitHub, where the page says where
the tables come from): `<!-- generated: record -->`, `suite-schema`, `suite-options`, `metrics`, `cli`.
A marker with no generator, or a generator whose marker no page has, stops the build.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

DOCS = Path(__file__).resolve().parent
sys.path[:0] = [str(DOCS.parent), str(DOCS)]  # this tree's harness first (a shared venv may point elsewhere)

import gen_cli_reference  # noqa: E402
import gen_record_reference  # noqa: E402
import gen_suite_reference  # noqa: E402

GENERATORS: dict[str, Callable[[], str]] = {
    "record": gen_record_reference.reference_markdown,
    "suite-schema": gen_suite_reference.schema_markdown,
    "suite-options": gen_suite_reference.options_markdown,
    "metrics": gen_suite_reference.metrics_markdown,
    "cli": gen_cli_reference.reference_markdown,
}
MARKER = re.compile(r"^<!-- generated: ([a-z-]+) -->$", re.MULTILINE)
_used: set[str] = set()


class GeneratedPartError(Exception):
    """A marker names no generator, or a generator has no page."""


def fill(markdown: str, page: str) -> str:
    """`markdown` with every marker replaced by its generated Markdown."""

    def generate(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in GENERATORS:
            raise GeneratedPartError(f"{page}: unknown generated part {name!r} (known: {', '.join(GENERATORS)})")
        _used.add(name)
        return GENERATORS[name]()

    return MARKER.sub(generate, markdown)


def on_pre_build(config: Any) -> None:
    _used.clear()


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    return fill(markdown, page.file.src_uri)


def on_post_build(config: Any) -> None:
    missing = set(GENERATORS) - _used
    if missing:
        raise GeneratedPartError(f"no page shows the generated part(s): {', '.join(sorted(missing))}")
