"""Torch sources (a `.pt2` program and a module factory) through the schemes, converted with litert-torch."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_bench

HERE = Path(__file__).parent
SCHEMES = ["float32", "float16", "dynamic_range", "int8", "pt2e_int8", "pt2e_int8_dynamic",
           "{scheme: recipe, recipe: weight_only_wi8_afp32}", "qat"]


def suite_text(model: str) -> str:
    schemes = "\n".join(f"  - {s}" for s in SCHEMES)
    return f"""
name: torch_test
datasets:
  images: {{kind: synthetic, count: 24, low: 0, high: 1, seed: 1}}
  calib: {{kind: synthetic, count: 8, low: 0, high: 1, seed: 2}}
models:
  - {model}
task: {{kind: fidelity, dataset: images, batch_size: 1}}
calibration: {{dataset: calib, samples: 8}}
schemes:
{schemes}
latency: {{warmup_runs: 1, num_runs: 3, min_secs: 0, float_pairs: 0, ab_pairs: 0}}
"""


def records(out: Path) -> dict[str, dict]:
    lines = (out / "results.jsonl").read_text().splitlines()
    return {r["scheme"]: r for r in map(json.loads, lines)}


def run_suite(tmp_path: Path, model: str) -> dict[str, dict]:
    suite = tmp_path / "suite.yaml"
    suite.write_text(suite_text(model))
    out = tmp_path / "run"
    result = run_bench("run", str(suite), "--out", str(out), "--cache", str(tmp_path / "cache"), "--no-history")
    assert (out / "results.jsonl").exists(), result.stdout + result.stderr
    return records(out)


def check_cells(cells: dict[str, dict]) -> None:
    for scheme in ("float32", "float16", "dynamic_range", "int8", "pt2e_int8", "pt2e_int8_dynamic",
                   "weight_only_wi8_afp32"):
        assert cells[scheme]["status"] == "ok", (scheme, cells[scheme]["error"])
    conversion = cells["float32"]["conversion"]
    assert conversion["framework"] == "torch" and conversion["converter"] == "litert-torch"
    assert float(conversion["snr_db"]) >= 60, conversion
    assert conversion["samples"] == 24 and conversion["versions"]["torch"].startswith("2.13.0")
    assert cells["pt2e_int8"]["io_types"]["inputs"] == ["int8"]
    assert float(cells["pt2e_int8"]["conversion"]["cell_snr_db"]) > 10
    assert cells["qat"]["status"] == "n/a" and "torch model" in cells["qat"]["error"]


@pytest.mark.slow
def test_module_factory_source(tmp_path: Path) -> None:
    model = (f"{{name: tiny, torch: {{module: {HERE / 'tiny_torch.py'}, factory: tiny_cnn, "
             "input_shape: [1, 1, 28, 28]}}")
    check_cells(run_suite(tmp_path, model))


@pytest.mark.slow
def test_pt2_source(tmp_path: Path) -> None:
    import torch

    from tests.torch.tiny_torch import tiny_cnn

    program = torch.export.export(tiny_cnn().eval(), (torch.zeros(1, 1, 28, 28),))
    torch.export.save(program, str(tmp_path / "tiny.pt2"))
    check_cells(run_suite(tmp_path, f"{{name: tiny, path: {tmp_path / 'tiny.pt2'}}}"))
