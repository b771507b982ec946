"""Torch sources (a `.pt2` program and a module factory) through the schemes, converted with litert-torch."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.results import read_results
from tests.conftest import run_bench

HERE = Path(__file__).parent
SCHEMES = ["float32", "float16", "dynamic_range", "int8", "pt2e_int8", "pt2e_int8_dynamic",
           "{scheme: recipe, recipe: weight_only_wi8_afp32}", "qat"]


def suite_text(program: Path) -> str:
    schemes = "\n".join(f"  - {s}" for s in SCHEMES)
    return f"""
name: torch_test
datasets:
  images: {{kind: synthetic, count: 24, low: 0, high: 1, seed: 1}}
  calib: {{kind: synthetic, count: 8, low: 0, high: 1, seed: 2}}
models:
  - {{name: factory, torch: {{module: {HERE / 'tiny_torch.py'}, factory: tiny_cnn, input_shape: [1, 1, 28, 28]}}}}
  - {{name: program, path: {program}}}
task: {{kind: fidelity, dataset: images, batch_size: 1}}
calibration: {{dataset: calib, samples: 8}}
schemes:
{schemes}
latency: {{warmup_runs: 1, num_runs: 3, min_secs: 0, float_pairs: 0, ab_pairs: 0}}
"""


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One run of both sources (a module factory, and a `.pt2` exported here from the same module) through the
    schemes (one process start for both)."""
    import torch

    from tests.torch.tiny_torch import tiny_cnn

    folder = tmp_path_factory.mktemp("torch_sources")
    program = torch.export.export(tiny_cnn().eval(), (torch.zeros(1, 1, 28, 28),))
    torch.export.save(program, str(folder / "tiny.pt2"))
    suite = folder / "suite.yaml"
    suite.write_text(suite_text(folder / "tiny.pt2"))
    out = folder / "run"
    result = run_bench("run", str(suite), "--out", str(out), "--cache", str(folder / "cache"), "--no-history")
    assert (out / "results.jsonl").exists(), result.stdout + result.stderr
    return out


@pytest.fixture(scope="module")
def cells(run_dir: Path) -> dict[tuple[str, str], dict]:
    return {(r["model"], r["scheme"]): dict(r) for r in read_results(run_dir)}  # whole: details from results.bin


def check_cells(cells: dict[tuple[str, str], dict], model: str) -> None:
    for scheme in ("float32", "float16", "dynamic_range", "int8", "pt2e_int8", "pt2e_int8_dynamic",
                   "weight_only_wi8_afp32"):
        assert cells[model, scheme]["status"] == "ok", (scheme, cells[model, scheme]["error"])
        assert cells[model, scheme]["artifact"]["source_info"]["converter"] == "litert-torch"
    conversion = cells[model, "float32"]["conversion"]
    assert conversion["framework"] == "torch" and conversion["converter"] == "litert-torch"
    assert float(conversion["snr_db"]) >= 60, conversion  # the float .tflite vs torch itself
    assert conversion["samples"] == 24 and conversion["versions"]["torch"].startswith("2.13.0")
    pt2e = cells[model, "pt2e_int8"]
    assert pt2e["io_types"]["inputs"] == ["int8"] and pt2e["io_types"]["outputs"] == ["int8"]
    assert all(claim["pass"] for claim in pt2e["claims"]), pt2e["claims"]
    assert 10 < float(pt2e["conversion"]["cell_snr_db"]) < float(conversion["snr_db"])  # vs torch
    assert cells[model, "qat"]["status"] == "n/a" and "torch model" in cells[model, "qat"]["error"]


@pytest.mark.slow
def test_module_factory_source(cells: dict[tuple[str, str], dict]) -> None:
    check_cells(cells, "factory")


@pytest.mark.slow
def test_pt2_source(cells: dict[tuple[str, str], dict]) -> None:
    check_cells(cells, "program")
    assert cells["program", "float32"]["artifact"]["source"].endswith("tiny.pt2")


@pytest.mark.slow
def test_several_inputs_and_named_outputs(tmp_path: Path) -> None:
    """Named inputs (`input_shape` as a mapping: keyword arguments, the .tflite's input names), a dtype given,
    dict outputs matched by name: the conversion check and PT2E see every one."""
    suite = tmp_path / "suite.yaml"
    suite.write_text(f"""
datasets:
  noise: {{kind: synthetic, count: 16, low: -1, high: 1, seed: 3}}
models:
  - name: two
    torch:
      module: {HERE / 'tiny_torch.py'}
      factory: two_inputs
      input_shape: {{a: [1, 8], b: [1, 8], mask: {{shape: [1, 8], dtype: float32}}}}
task: {{kind: fidelity, dataset: noise}}
schemes: [float32, dynamic_range, pt2e_int8_dynamic]
latency: {{warmup_runs: 1, num_runs: 3, min_secs: 0, float_pairs: 0, ab_pairs: 0}}
""")
    out = tmp_path / "run"
    result = run_bench("run", str(suite), "--out", str(out), "--cache", str(tmp_path / "cache"), "--no-history")
    assert (out / "results.jsonl").exists(), result.stdout + result.stderr
    cells = {r["scheme"]: dict(r) for r in read_results(out)}
    for scheme, cell in cells.items():
        assert cell["status"] == "ok", (scheme, cell["error"])
        assert "error" not in cell["conversion"], cell["conversion"]
    assert sorted(o["name"] for o in cells["float32"]["outputs"]) == ["scores", "total"]
    assert float(cells["float32"]["conversion"]["snr_db"]) >= 60
    assert float(cells["pt2e_int8_dynamic"]["conversion"]["cell_snr_db"]) > 20


@pytest.mark.slow
def test_diagnose_takes_the_float_tflite_route(run_dir: Path) -> None:
    """`bench diagnose` on a torch cell compares its tensors with litert-torch's float .tflite; litert-quantizer's
    int8 is cross-checked with its validate() (the .tflite route), a PT2E model (quantized in torch, another
    graph) is not."""
    def diagnosed(cell: str) -> dict:
        done = run_bench("diagnose", str(run_dir), cell, "--samples", "4", "--top", "3")
        assert done.returncode == 0, done.stdout + done.stderr
        return json.loads((run_dir / "diagnose" / f"{cell.replace('/', '__').replace('@', '__')}.json").read_text())

    int8 = diagnosed("program/int8@local")
    assert int8["compared"] > 0 and int8["cross_check"]["agrees"] is True, int8.get("cross_check")
    pt2e = diagnosed("factory/pt2e_int8@local")
    assert pt2e["compared"] > 0 and "cross_check" not in pt2e
