"""One tiny decoder converted once for the session: float32, dynamic_wi8_afp32 and dynamic_wi4b32_afp32
cells run through `bench run` (conversion, teacher-forced evaluation, prefill + decode timing)."""

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
    - {schemes: [dynamic_wi8_afp32], perplexity: {max: 1000}}   # not produced on synthetic prompts: fails
"""


@dataclass(frozen=True)
class GenaiRun:
    suite: Path
    run_dir: Path
    cache: Path
    exit_code: int
    output: str
    records: dict[str, CellRecord]  # by scheme


@pytest.fixture(scope="session")
def genai_run(tmp_path_factory: pytest.TempPathFactory) -> GenaiRun:
    root = tmp_path_factory.mktemp("genai")
    suite = root / "genai.yaml"
    suite.write_text(SUITE)
    run_dir, cache = root / "run", root / "cache"
    result = run_bench("run", str(suite), "--out", str(run_dir), "--cache", str(cache), "--no-history")
    records = {r["scheme"]: r for r in read_results(run_dir)}
    return GenaiRun(suite, run_dir, cache, result.returncode, result.stdout + result.stderr, records)
