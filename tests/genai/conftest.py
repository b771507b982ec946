"""One tiny decoder converted once for the session: float32, dynamic_wi8_afp32 and dynamic_wi4b32_afp32
cells run through `bench run` (conversion, teacher-forced evaluation, prefill + decode timing); the same
decoder again (`tiny_text`, the same export from the cache) on text prompts: the project's README.md,
byte-level tokens, with perplexity."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.record import CellRecord
from harness.results import read_results
from tests.conftest import run_bench

# vocab and width big enough that the weights dominate the file (wi4b32 <= 0.35x), still seconds to convert
SUITE = """\
name: genai_test
models:
  - {name: tiny, generative: {family: toy, layers: 2, embedding_dim: 128, heads: 4, vocab_size: 2048, max_tokens: 48}}
  - name: tiny_text
    generative: {family: toy, layers: 2, embedding_dim: 128, heads: 4, vocab_size: 2048, max_tokens: 48}
    task: {kind: generation, prompts: text, text: prompt.txt, prefill: 8, decode_tokens: 8, samples: 2}
    schemes: [float32, dynamic_wi8_afp32]
task: {kind: generation, prefill: 8, decode_tokens: 8, samples: 2, seed: 3}
schemes:
  - float32
  - {scheme: recipe, recipe: dynamic_wi8_afp32}
  - {scheme: recipe, recipe: dynamic_wi4b32_afp32}
latency: {repeats: 1, warmup_runs: 1, num_runs: 3, min_secs: 0, float_pairs: 0, ab_pairs: 0}
thresholds:
  defaults:
    decode_tokens_per_s: {min: 1}
    logit_snr_db: {min: 3}
  overrides:
    - {models: [tiny], schemes: [dynamic_wi8_afp32], perplexity: {max: 1000}}   # not produced on synthetic prompts: fails
    - {models: [tiny_text], schemes: [dynamic_wi8_afp32], perplexity: {max_rel_drop: 0.5}}
"""


@dataclass(frozen=True)
class GenaiRun:
    suite: Path
    run_dir: Path
    cache: Path
    exit_code: int
    output: str
    records: dict[str, CellRecord]  # model tiny's, by scheme
    text_records: dict[str, CellRecord]  # model tiny_text's (text prompts), by scheme


@pytest.fixture(scope="session")
def genai_run(tmp_path_factory: pytest.TempPathFactory) -> GenaiRun:
    root = tmp_path_factory.mktemp("genai")
    suite = root / "genai.yaml"
    suite.write_text(SUITE)
    (root / "prompt.txt").write_text((Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8"))
    run_dir, cache = root / "run", root / "cache"
    result = run_bench("run", str(suite), "--out", str(run_dir), "--cache", str(cache), "--no-history")
    records = read_results(run_dir)
    by_model = {model: {r["scheme"]: r for r in records if r["model"] == model} for model in ("tiny", "tiny_text")}
    return GenaiRun(suite, run_dir, cache, result.returncode, result.stdout + result.stderr, by_model["tiny"],
                    by_model["tiny_text"])
