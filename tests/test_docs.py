"""The reference site: it builds strictly (no broken link, anchor or generated part), its generated
record reference lists every CellRecord field, and the paths the pages and the README name exist."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import get_type_hints

import pytest

from harness.record import CellRecord, RunInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "docs"))

import gen_record_reference  # noqa: E402

README_MAX_LINES = 400


def test_mkdocs_build_is_strict_and_clean(tmp_path: Path) -> None:
    """`mkdocs build --strict` (what `make docs` runs): a warning — a broken link or anchor, a page
    missing from the nav, a generated part with no page — fails."""
    site = tmp_path / "site"
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    record_page = (site / "record" / "index.html").read_text(encoding="utf-8")
    for field in get_type_hints(CellRecord):
        assert f"<code>{field}</code>" in record_page, f"CellRecord.{field} is missing from the built record page"


@pytest.mark.parametrize("typed", [CellRecord, RunInfo], ids=lambda t: t.__name__)
def test_generated_record_reference_lists_every_field(typed: type) -> None:
    page = gen_record_reference.reference_markdown()
    section = page.split(f"### {typed.__name__}\n", 1)[1].split("\n### ", 1)[0]
    for field in get_type_hints(typed):
        assert f"| `{field}` |" in section, f"{typed.__name__}.{field} is missing from the generated reference"


def test_generated_record_reference_reads_comments_and_required() -> None:
    shapes = {shape.name: shape for shape in gen_record_reference.shapes(gen_record_reference.RECORD_PY.read_text())}
    fields = {field.name: field for field in shapes["CellRecord"].fields}
    assert fields["model"].required and not fields["metrics"].required
    assert "hash" in fields["cell_key"].comment
    assert "pass" in {field.name for field in shapes["Verdict"].fields}  # the functional TypedDict form


def _doc_texts() -> list[tuple[str, str]]:
    pages = sorted((ROOT / "docs").rglob("*.md"))
    return [(str(p.relative_to(ROOT)), p.read_text(encoding="utf-8")) for p in [ROOT / "README.md", *pages]]


_PATH = re.compile(r"`((?:harness|suites|devices|tests|docs)/[A-Za-z0-9_./-]+?)[`:]")


def test_paths_named_in_docs_exist() -> None:
    """Every `harness/...`, `suites/...`, `devices/...`, `tests/...`, `docs/...` path a page names exists."""
    missing = [f"{name}: {path}" for name, text in _doc_texts() for path in _PATH.findall(text)
               if "<" not in path and "*" not in path and not (ROOT / path.rstrip("/")).exists()]
    assert not missing, "stale paths:\n" + "\n".join(missing)


def test_readme_links_into_docs_resolve() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    links = re.findall(r"\]\((docs/[^)#\s]+)(?:#[^)]*)?\)", readme)
    assert links, "README links into the docs site"
    assert not [link for link in links if not (ROOT / link).exists()]


def test_readme_is_the_front_door() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= README_MAX_LINES
    assert "make bench" in readme and "make test" in readme


def test_generated_record_reference_lists_the_parts_kept_in_results_bin() -> None:
    from harness.record import DETAIL_PARTS

    page = gen_record_reference.reference_markdown()
    line = next(line for line in page.splitlines() if "DETAIL_PARTS" in line)
    assert [part.strip("`") for part in line.split(": ", 1)[1].split(", ")] == [".".join(p) for p in DETAIL_PARTS]
