"""`generative:` and `generation` suite errors: one line naming file, line and field (exit 2), before
anything is built; without the torch extra, one line naming it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from harness.errors import HarnessError
from harness.models import generative
from harness.tasks.generation import position_snr_db, timing_metrics
from tests.conftest import run_bench

BASE = """\
name: g
models:
  - {MODEL}
task: {TASK}
schemes: [float32]
"""
TOY = "{name: tiny, generative: {family: toy, max_tokens: 32}}"
GENERATION = "{kind: generation, prefill: 8, decode_tokens: 8}"


def _validate(tmp_path: Path, model: str = TOY, task: str = GENERATION) -> tuple[int, str]:
    suite = tmp_path / "suite.yaml"
    suite.write_text(BASE.replace("{MODEL}", model).replace("{TASK}", task))
    result = run_bench("validate", str(suite))
    return result.returncode, (result.stdout + result.stderr).strip()


def _one_line(code: int, text: str) -> str:
    assert code == 2 and len(text.splitlines()) == 1 and "Traceback" not in text, text
    return text


def test_a_valid_generative_suite_validates(tmp_path: Path) -> None:
    code, text = _validate(tmp_path)
    assert code == 0, text


def test_a_checkpoint_that_does_not_exist_is_one_line(tmp_path: Path) -> None:
    model = "{name: tiny, generative: {family: smollm, checkpoint: weights/missing.safetensors}}"
    text = _one_line(*_validate(tmp_path, model))
    assert "suite.yaml:3" in text and "generative.checkpoint" in text and "missing.safetensors does not exist" in text


@pytest.mark.parametrize(("model", "task", "says"), [
    (TOY, "{kind: generation, prefill: 24, decode_tokens: 16}", "cannot hold the task's prefill 24 + decode_tokens 16"),
    (TOY, "{kind: classification, dataset: d}", "needs the generation task"),
    ("{builder: tutorial_cnn}", GENERATION, "runs `generative` models"),
    ("{generative: {family: qwen3-0.6b, heads: 4}}", GENERATION, "`embedding_dim` and `heads` size the toy family"),
    ("{generative: {family: toy, embedding_dim: 100, heads: 3}}", GENERATION, "not a multiple of heads"),
    ("{generative: {family: llama9}}", GENERATION, "family"),
    (TOY, "{kind: generation, prompts: text.txt}", "prompts"),
])
def test_a_wrong_generative_suite_is_one_line(tmp_path: Path, model: str, task: str, says: str) -> None:
    assert says in _one_line(*_validate(tmp_path, model, task))


def test_without_the_torch_extra_the_error_names_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = generative.importlib.util.find_spec
    monkeypatch.setattr(generative.importlib.util, "find_spec",
                        lambda name, *a: None if name == "litert_torch" else real(name, *a))
    with pytest.raises(HarnessError, match=r"quantbench\[torch\]"):
        generative.require_extra()
    assert "quantbench[torch]" in _one_line(*_validate(tmp_path))


def test_position_snr_is_per_position() -> None:
    reference = np.ones((2, 3, 4), dtype=np.float32)
    noisy = reference.copy()
    noisy[1, 2] += 0.1  # one position drifts: 10 log10(4 / 0.04) = 20 dB
    snr = position_snr_db(noisy, reference)
    assert snr.shape == (2, 3) and snr[1, 2] == pytest.approx(20.0) and np.all(snr[0] > 200)


def test_timing_metrics_pool_every_repeats_runs() -> None:
    def raw(prefill: float, decode: float, rss: float) -> dict:
        runs = [{"prefill_ms": prefill, "ttft_ms": prefill + decode, "decode_ms": decode}] * 3
        return {"generation": {"prefill_tokens": 8, "decode_tokens": 4, "runs": runs}, "peak_rss_mb": rss}

    metrics = timing_metrics([raw(2.0, 0.5, 70.0), raw(2.0, 0.5, 80.0)])
    assert metrics == {"ttft_ms": 2.5, "prefill_tokens_per_s": 4000.0, "decode_tokens_per_s": 2000.0,
                       "peak_rss_mb": 80.0}


def test_a_litert_lm_recipe_takes_one_component() -> None:
    from pydantic import ValidationError

    from harness.errors import NotApplicable
    from harness.schemes.recipe import RecipeOptions, build_recipe

    decoder = build_recipe(RecipeOptions(recipe="gemma4_mixed48_b32", component="tf_lite_prefill_decode"))
    assert {str(getattr(e["operation"], "value", e["operation"])) for e in decoder} == {"FULLY_CONNECTED"}
    with pytest.raises(ValidationError, match="has no component 'decoder' \\(it has tf_lite_embedder"):
        RecipeOptions(recipe="gemma4_mixed48_b32", component="decoder")
    with pytest.raises(ValidationError, match="is one recipe"):
        RecipeOptions(recipe="dynamic_wi8_afp32", component="tf_lite_prefill_decode")
    with pytest.raises(NotApplicable, match="give `component:`"):
        build_recipe(RecipeOptions(recipe="gemma4_mixed48_b32"))


def test_a_generation_cell_on_a_device_without_the_loop_is_na(tmp_path: Path) -> None:
    """Phones time with benchmark_model, which has no prefill/decode loop: the cell says so (n/a), never
    a latency of some other invoke."""
    import threading

    from harness.devices import Device
    from harness.plan import plan_cells
    from harness.runner.devices import RunDevices
    from harness.runner.measure import Measurement
    from harness.suite.loader import load_suite

    class Phone(Device):  # a device kind that does not time generation (runs_generation: the base's False)
        name, remote = "phone", True

        def measure_latency(self, model: Path, settings: object) -> dict:
            raise AssertionError("a generation cell must not be timed with benchmark_model")

    suite = tmp_path / "suite.yaml"
    suite.write_text(BASE.replace("{MODEL}", TOY).replace("{TASK}", GENERATION))
    loaded = load_suite(suite)
    (cell,) = plan_cells(loaded)
    devices = RunDevices(tmp_path, load=lambda name, base: Phone())  # type: ignore[arg-type,return-value]
    measurement = Measurement(loaded, tmp_path, devices, None, None, lambda *a: None,  # type: ignore[arg-type]
                              threading.Lock())
    record = {"status": "ok", "error": None, "artifact": {"path": str(tmp_path / "m.tflite")}, "metrics": {},
              "timings_s": {}, "generation": {"prompts": "synthetic"}}
    measurement.measured(cell, record)  # type: ignore[arg-type]
    assert record["status"] == "n/a" and "runs on local devices only" in str(record["error"])
