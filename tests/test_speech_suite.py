"""`bench run` on a tiny speech suite: flite audio, a 1-epoch CTC model, WER/CER under LiteRT."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.results import read_results
from tests.conftest import run_bench

pytestmark = pytest.mark.slow  # synthesizes speech, trains and converts a model, runs the CLI

SUITE = """
name: tiny_speech
datasets:
  train: {kind: flite_digits, voices: [slt, kal16], rates: [0.9, 1.1], count: 24, seed: 1,
          features: &features {n_mels: 20, max_seconds: 3.0}}
  test: {kind: flite_digits, voices: [awb], count: 6, seed: 2, features: *features}
models:
  - name: tiny_ctc
    builder: speech_ctc
    frames: 300
    n_mels: 20
    width: 16
    dilations: [1, 2]
    train: {dataset: train, epochs: 1, batch_size: 8}
task: {kind: speech, dataset: test}
calibration: {dataset: train, samples: 8}
schemes: [float32, int8]
latency: {float_pairs: 0, warmup_runs: 1, num_runs: 5, min_secs: 0}
thresholds:
  defaults:
    wer: {max_abs_drop: 1.0}
"""


def test_tiny_speech_suite_records_wer_cer_and_agreement(tmp_path: Path, session_cache: Path) -> None:
    suite = tmp_path / "tiny_speech.yaml"
    suite.write_text(SUITE)
    done = run_bench("run", str(suite), "--reports", str(tmp_path / "r"), "--cache", str(session_cache),
                     "--no-history")
    assert done.returncode == 0, done.stdout + done.stderr
    records = {r["scheme"]: r for r in read_results(next((tmp_path / "r" / "tiny_speech").iterdir()))}
    assert list(records) == ["float32", "int8"]
    for record in records.values():
        assert record["status"] == "ok", record["error"]
        assert record["evaluation"]["samples"] == 6
        metrics = record["metrics"]
        assert 0 <= metrics["cer"] and 0 <= metrics["wer"]
        assert metrics["wer"] == pytest.approx(
            metrics["wer_substitutions"] + metrics["wer_deletions"] + metrics["wer_insertions"])
    assert "transcript_agreement" not in records["float32"]["metrics"]
    assert 0 <= records["int8"]["metrics"]["transcript_agreement"] <= 1
    assert 0 < records["int8"]["metrics"]["frame_agreement"] <= 1
    assert any(v["check"] == "wer.max_abs_drop" for v in records["int8"]["verdicts"])
    training = records["float32"]["artifact"]["source_info"]["training"]
    assert training["samples"] == 24 and training["loss"] == "ctc + blank on padding"
    assert list((session_cache / "speech").glob("*/*/manifest.jsonl"))  # audio in the run's --cache
