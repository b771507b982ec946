"""The `generative:` source and the `generation` task (issue 26): a tiny decoder through float32,
dynamic_wi8_afp32 and dynamic_wi4b32_afp32 (converted once: tests/genai/conftest.py)."""

from __future__ import annotations

import math

import pytest

from tests.genai.conftest import GenaiRun

TIMING = ("ttft_ms", "prefill_tokens_per_s", "decode_tokens_per_s", "peak_rss_mb")
VS_FLOAT = ("logit_snr_db", "next_token_agreement")
QUANTIZED = ("dynamic_wi8_afp32", "dynamic_wi4b32_afp32")


@pytest.mark.slow  # exports a decoder with litert-torch and quantizes it
def test_every_cell_is_measured_with_every_metric_positive(genai_run: GenaiRun) -> None:
    assert set(genai_run.records) == {"float32", *QUANTIZED}, genai_run.output
    for scheme, record in genai_run.records.items():
        assert record["status"] == "ok", (scheme, record.get("error"))
        expected = TIMING if scheme == "float32" else TIMING + VS_FLOAT
        for metric in expected:
            value = record["metrics"].get(metric)
            assert value is not None and math.isfinite(value) and value > 0, (scheme, metric, value)
        generation = record.get("generation") or {}
        assert generation["timed_runs"] >= 3 and generation["timed_decode_tokens"] == 8  # 3 timed runs of 8 decode steps


@pytest.mark.slow
def test_wi4_block32_is_at_most_a_third_of_float(genai_run: GenaiRun) -> None:
    sizes = {scheme: record["size_bytes"] for scheme, record in genai_run.records.items()}
    assert sizes["dynamic_wi4b32_afp32"] <= 0.35 * sizes["float32"], sizes
    assert sizes["dynamic_wi4b32_afp32"] < sizes["dynamic_wi8_afp32"] < sizes["float32"], sizes


@pytest.mark.slow
def test_logit_drift_from_float_is_recorded(genai_run: GenaiRun) -> None:
    snr = {}
    for scheme in QUANTIZED:
        generation = genai_run.records[scheme]["generation"]
        assert generation["logit_snr"] == "worst position"
        worst, mean = genai_run.records[scheme]["metrics"]["logit_snr_db"], generation["logit_snr_db_mean"]
        assert mean is not None and worst is not None and mean >= worst
        snr[scheme] = worst
    assert snr["dynamic_wi4b32_afp32"] < snr["dynamic_wi8_afp32"], snr  # 4-bit weights drift further
    assert "logit_snr_db" not in genai_run.records["float32"]["metrics"]  # nothing to compare the float cell with


@pytest.mark.slow
def test_thresholds_judge_generation_metrics_and_a_metric_not_produced_fails(genai_run: GenaiRun) -> None:
    assert genai_run.exit_code == 1, genai_run.output  # the perplexity bound on synthetic prompts
    wi8 = {v["check"]: v for v in genai_run.records["dynamic_wi8_afp32"]["verdicts"]}
    assert not wi8["perplexity.max"]["pass"]
    assert "perplexity needs real-text prompts" in wi8["perplexity.max"]["note"]
    wi4 = {v["check"]: v for v in genai_run.records["dynamic_wi4b32_afp32"]["verdicts"]}
    assert wi4["decode_tokens_per_s.min"]["pass"] and wi4["logit_snr_db.min"]["pass"]
    assert wi4["recipe_coverage.min"]["pass"]  # every op the recipe targets in both signatures quantized


@pytest.mark.slow
def test_a_rerun_converts_nothing(genai_run: GenaiRun) -> None:
    """The source and every scheme's artifact come from the cache (keyed by config and converter versions)."""
    from tests.conftest import run_bench

    run_dir = genai_run.run_dir.parent / "again"
    result = run_bench("run", str(genai_run.suite), "--out", str(run_dir), "--cache", str(genai_run.cache),
                       "--no-history", "--only", "tiny/float32*")
    from harness.results import read_results

    (record,) = read_results(run_dir)
    assert record["status"] == "ok" and record["artifact"]["cached"], result.stdout
    assert record["evaluation"]["cached"]


@pytest.mark.slow
def test_text_prompts_give_every_cell_a_perplexity_judged_against_float(genai_run: GenaiRun) -> None:
    """README.md as byte-level prompts: perplexity on float32 and the recipe cell, positive and finite, the
    recipe's judged by its relative rise over float's."""
    assert set(genai_run.text_records) == {"float32", "dynamic_wi8_afp32"}, genai_run.output
    values = {}
    for scheme, record in genai_run.text_records.items():
        assert record["status"] == "ok", (scheme, record.get("error"))
        assert record["generation"]["prompts"] == "text" and not record.get("metrics_na"), record.get("metrics_na")
        values[scheme] = record["metrics"]["perplexity"]
        assert values[scheme] is not None and math.isfinite(values[scheme]) and values[scheme] > 1, values
    # random weights (tied embeddings) predict the current token again, confidently: worse than uniform guessing
    assert all(v > 2048 for v in values.values()), values
    wi8 = {v["check"]: v for v in genai_run.text_records["dynamic_wi8_afp32"]["verdicts"]}
    assert wi8["perplexity.max_rel_drop"]["pass"], wi8["perplexity.max_rel_drop"]
    assert wi8["perplexity.max_rel_drop"]["baseline"] == values["float32"]


@pytest.mark.slow
def test_synthetic_prompts_have_no_perplexity_and_say_why(genai_run: GenaiRun) -> None:
    for scheme, record in genai_run.records.items():
        assert "perplexity" not in record["metrics"], scheme
        assert "perplexity needs real-text prompts" in record["metrics_na"], scheme
