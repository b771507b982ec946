"""The nightly verdict end to end: a planted slowdown (a genuinely wider model) is caught by the
paired A/B re-timing in the next run; the unchanged model the night after is not blamed; stored
samples stay bounded."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.results import read_results
from tests.conftest import latest, run_bench
from tests.kit import mlp_suite, write_mlp
from tests.report.runs import plain

pytestmark = pytest.mark.slow  # times two nights of paired A/B

SUITE = mlp_suite("nightly_mlp", "{float_pairs: 0, warmup_runs: 5, num_runs: 400, min_secs: 0, repeats: 3, ab_pairs: 6}",
                  twice=False)


def night(folder: Path, cache: Path) -> tuple[int, str, list[dict]]:
    done = run_bench("run", "suite.yaml", "--cache", str(cache), cwd=folder)
    assert "Traceback" not in done.stderr, done.stderr
    newest = latest(folder / "reports" / "nightly_mlp")
    return done.returncode, plain((newest / "summary.md").read_text()), list(read_results(newest))


def test_a_planted_slowdown_is_flagged_by_paired_ab_and_the_next_night_is_not(tmp_path: Path,
                                                                              session_cache: Path) -> None:
    (tmp_path / "suite.yaml").write_text(SUITE)
    write_mlp(tmp_path / "model.tflite", 256)
    code, _, records = night(tmp_path, session_cache)
    assert code == 0 and records[0]["latency_ms"]["count"] >= 1200
    assert len(records[0]["latency_samples_ms"]) == 1000  # bounded, whatever the number of timed runs
    write_mlp(tmp_path / "model.tflite", 1024)  # 4× the multiply-adds of the first layer
    code, summary, records = night(tmp_path, session_cache)
    ab = records[0]["latency_ab"]
    assert len(ab["pairs"]) == 6 + ab["extended"] and ab["ci"][0] > 1.05, ab
    assert code == 1 and "paired A/B in this run" in summary and "**REGRESSED**" in summary
    code, summary, records = night(tmp_path, session_cache)  # nothing changed since
    assert code == 0 and "latency_ab" not in records[0], summary
    assert (tmp_path / "reports" / "history.sqlite").stat().st_size < 2_000_000
