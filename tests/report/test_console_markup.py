"""No user string is ever read as Rich markup (issue 20, item 13): every console in harness/ is made
with markup off, and the commands that print names, paths and cells show them as they are."""

from __future__ import annotations

import ast
import json
import re
import shutil
from pathlib import Path

import pytest

from tests.conftest import DATA, ROOT, run_bench
from tests.test_integrity import done_run  # noqa: F401 - the fixture: a finished run of a model named "q[/x]"


def test_every_console_in_harness_has_markup_off() -> None:
    makers = []
    for path in (ROOT / "harness").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) == "Console":
                makers.append(path.relative_to(ROOT).as_posix())
    assert makers == ["harness/_console.py"], makers  # everyone else calls plain_console()


@pytest.mark.parametrize("name", ["q[/x]/s.yaml", "bad[bold]x.yaml", "[red]r[/red].yaml", "a[link=https:x]b.yaml"])
def test_validate_prints_a_markup_like_path_as_it_is(tmp_path: Path, name: str) -> None:
    (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(DATA / "tiny.yaml", tmp_path / name)
    done = run_bench("validate", name, cwd=tmp_path)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert done.stdout.startswith(f"{name}: ok (")
    missing = run_bench("validate", f"missing/{name}", cwd=tmp_path)
    assert missing.returncode == 2 and f"error: missing/{name}: cannot read suite" in missing.stderr


@pytest.mark.slow
def test_diagnose_prints_a_markup_like_cell_as_it_is(done_run: tuple[Path, Path]) -> None:  # noqa: F811
    folder, run_dir = done_run
    done = run_bench("diagnose", str(run_dir), "q[/x]/dynamic_range", "--samples", "2", "--top", "3", cwd=folder)
    assert done.returncode == 0 and "Traceback" not in done.stderr + done.stdout, done.stderr[-3000:]
    assert "q[/x]/dynamic_range@local: the 3 of lowest SNR (worst first)" in done.stdout
    rows = [line for line in done.stdout.splitlines() if re.match(r"│ +\d+ +│", line)]
    snrs = [float(line.split("│")[5]) for line in rows]
    assert len(rows) == 3 and snrs == sorted(snrs), done.stdout  # --top 3: the three worst, worst first
    written = json.loads(next((run_dir / "diagnose").glob("*.json")).read_text())
    assert len(written["layers"]) == written["compared"] > 3  # the file keeps every tensor
    unknown = run_bench("diagnose", str(run_dir), "q[/x]/[bold]", cwd=folder)
    assert unknown.returncode == 2 and "q[/x]/[bold]" in unknown.stderr and "Traceback" not in unknown.stderr
