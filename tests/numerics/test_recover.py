"""`recover:` — automatic selective quantization: the bound logic, the step schedule, the ranking, and the
loop end to end on the digits CNN (real conversion, QuantizationDebugger, LiteRT evaluation)."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import pytest
from pydantic import ValidationError

from harness.config.schema import RecoverSpec
from harness.errors import NotApplicable
from harness.numerics.recover import bound_holds, layer_of, rank_layers, run, snr_drops, step_sizes
from harness.results import read_results
from harness.schemes.int8 import Int8Options
from tests.conftest import run_bench

SUITE = """
name: recover_tiny
datasets:
  train: {kind: digits, split: train}
  test: {kind: digits, split: test}
models:
  - name: digits_cnn
    builder: tutorial_cnn
    input_shape: [8, 8, 1]
    filters: 8
    train: {dataset: train, epochs: 3, batch_size: 64, learning_rate: 0.01}
task: {kind: classification, dataset: test}
calibration: {dataset: train, samples: 32}
schemes:
  - float32
  - int8
  - {scheme: int8, id: met_at_once, recover: {metric: top1, max_abs_drop: 0.2, max_float_layers: 4}}
  - {scheme: int8, id: never_met, recover: {metric: snr_db, min: 1000, max_float_layers: 3, steps: one_by_one, unit: op,
                                         rank_by: rmse_per_scale}}
  - {scheme: int8, id: by_drop, recover: {metric: snr_db, min: 1000, max_float_layers: 1, rank_by: snr_drop_db}}
devices: [local]
latency: {float_pairs: 0, warmup_runs: 1, num_runs: 3, min_secs: 0}
"""


def test_step_sizes_double_or_count_up_to_the_budget() -> None:
    assert step_sizes(10, 50, "doubling") == [1, 2, 4, 8, 10]
    assert step_sizes(8, 50, "doubling") == [1, 2, 4, 8]
    assert step_sizes(10, 3, "doubling") == [1, 2, 3]  # capped by the ranked layers
    assert step_sizes(3, 50, "one_by_one") == [1, 2, 3]
    assert step_sizes(5, 0, "doubling") == []


def test_bound_forms_higher_and_lower_is_better_and_nan() -> None:
    top1 = RecoverSpec(metric="top1", max_abs_drop=0.01)
    assert bound_holds(top1, 0.905, 0.91) and not bound_holds(top1, 0.899, 0.91)
    assert bound_holds(top1, 0.95, 0.91)  # better than float
    assert not bound_holds(top1, math.nan, 0.91)
    relative = RecoverSpec(metric="wer", max_rel_drop=0.1)  # lower is better: a rise is a drop
    assert bound_holds(relative, 0.21, 0.2) and not bound_holds(relative, 0.23, 0.2)
    floor = RecoverSpec(metric="snr_db", min=30)
    assert bound_holds(floor, math.inf, None) and not bound_holds(floor, 29.9, None)
    assert bound_holds(RecoverSpec(metric="nrmse", max=0.1), 0.05, None)
    with pytest.raises(Exception, match="needs the float baseline's top1"):
        bound_holds(top1, 0.9, None)


def test_bad_options_are_refused_clearly() -> None:
    with pytest.raises(ValidationError, match="unknown metric 'topone'"):
        Int8Options(recover={"metric": "topone", "min": 0.5})
    with pytest.raises(ValidationError, match="at least one of max_abs_drop"):
        Int8Options(recover={"metric": "top1"})
    with pytest.raises(ValidationError, match="float_layers or recover, not both"):
        Int8Options(float_layers=["dense"], recover={"metric": "top1", "min": 0.5})
    with pytest.raises(ValidationError, match="greater than or equal to 1"):
        Int8Options(recover={"metric": "top1", "min": 0.5, "max_float_layers": 0})


def test_a_bad_recover_option_in_a_suite_points_at_its_line(tmp_path: Path) -> None:
    from harness.suite import load_suite

    (tmp_path / "bad.yaml").write_text(SUITE.replace("{metric: top1, max_abs_drop: 0.2,", "{metric: topx, max_abs_drop: 0.2,"))
    with pytest.raises(Exception, match=r"bad.yaml:17: schemes\[2\]\.recover\.metric: unknown metric 'topx'"):
        load_suite(tmp_path / "bad.yaml")


def test_ranking_is_worst_local_error_first_with_nan_last() -> None:
    statistics = {"m/a/x": {"rmse_per_scale": 0.3}, "m/b/y": {"rmse_per_scale": math.nan},
                  "m/c/z": {"rmse_per_scale": 2.5}, "m/d/w": {}, "m/a/v;m/a/u": {"rmse_per_scale": 4.0}}
    ops = rank_layers(statistics, "op", "rmse_per_scale")
    assert [r["layer"] for r in ops][:3] == ["m/a/v;m/a/u", "m/c/z", "m/a/x"]
    assert {r["layer"] for r in ops[3:]} == {"m/b/y", "m/d/w"}
    layers = rank_layers(statistics, "layer", "rmse_per_scale")  # a Keras layer's ops go together, ranked by the worst
    assert [(r["layer"], r["rmse_per_scale"]) for r in layers][:2] == [("m/a", 4.0), ("m/c", 2.5)]
    assert sorted(layers[0]["tensors"]) == ["m/a/v;m/a/u", "m/a/x"]
    assert layer_of("model/conv/Relu;model/conv/BiasAdd") == "model/conv" and layer_of("Identity:0") == "Identity:0"
    snr = rank_layers({"m/a/x": {"local_snr_db": 30.0}, "m/b/y": {"local_snr_db": 8.0}, "m/a/z": {"local_snr_db": 5.0},
                       "m/c/w": {"local_snr_db": math.nan}}, "layer", "local_snr_db")  # lowest SNR is worst
    assert [(r["layer"], r["local_snr_db"]) for r in snr][:2] == [("m/a", 5.0), ("m/b", 8.0)]
    assert snr[2]["layer"] == "m/c" and math.isnan(snr[2]["local_snr_db"])


def test_snr_drops_blame_the_layer_where_the_accumulated_snr_falls() -> None:
    graph = [(["input"], ["q"]),                      # QUANTIZE: no float counterpart
             (["q", "w0"], ["m/conv/out"]),           # 35 dB
             (["m/conv/out"], ["m/norm/var"]),         # the layer norm takes it to 8 dB ...
             (["m/norm/var"], ["m/norm/out"]),         # ... and back to 12
             (["m/norm/out", "w1"], ["m/dense/out"])]  # 11 dB: loses 1 more
    snr = {"m/conv/out": 35.0, "m/norm/var": 8.0, "m/norm/out": 12.0, "m/dense/out": 11.0}
    rows = snr_drops(graph, snr, "layer")
    assert [(r["layer"], r["snr_drop_db"]) for r in rows] == [("m/norm", 27.0), ("m/dense", 1.0), ("m/conv", 0.0)]
    assert rows[0]["tensors"] == ["m/norm/var", "m/norm/out"]
    assert [r["layer"] for r in snr_drops(graph, snr, "op")][0] == "m/norm/var"


def test_tflite_sources_cannot_rank_with_the_debugger() -> None:
    options = Int8Options(recover={"metric": "top1", "min": 0.5, "rank_by": "local_snr_db"})
    with pytest.raises(NotApplicable, match="needs a TFLiteConverter source"):
        run(None, options, SimpleNamespace(format="tflite"), lambda: Path("x"), None, Path("x"), lambda p: {}, None, None)


@pytest.fixture(scope="module")
def records(tmp_path_factory: pytest.TempPathFactory, session_cache: Path) -> dict[str, dict]:
    folder = tmp_path_factory.mktemp("recover")
    (folder / "recover.yaml").write_text(SUITE)
    done = run_bench("run", str(folder / "recover.yaml"), "--out", str(folder / "run"), "--cache", str(session_cache),
                     "--no-history")
    assert done.returncode == 0, done.stdout + done.stderr
    return {r["scheme"]: r for r in read_results(folder / "run")}


@pytest.mark.slow  # trains the digits CNN (cached per session) and converts 9 int8 models: about 30 s
def test_recover_loop_end_to_end(records: dict[str, dict]) -> None:
    assert all(r["status"] == "ok" for r in records.values()), {s: r["error"] for s, r in records.items()}
    base, int8 = records["float32"], records["int8"]
    met = records["met_at_once"]["recovery"]
    assert met["met"] and met["float_layers"] == [] and len(met["steps"]) == 1
    assert met["reference"] == base["metrics"]["top1"] and met["steps"][0]["metric"] == int8["metrics"]["top1"]
    assert records["met_at_once"]["artifact"]["sha256"] == int8["artifact"]["sha256"]  # nothing kept float

    never = records["never_met"]
    recovery = never["recovery"]
    assert not recovery["met"] and recovery["reference"] is None  # a `min` bound needs no baseline value
    assert [s["float_layers"] for s in recovery["steps"]] == [0, 1, 2, 3]
    assert recovery["float_layers"] == [r["layer"] for r in recovery["ranking"][:3]]
    assert recovery["float_tensors"] == [t for r in recovery["ranking"][:3] for t in r["tensors"]]
    assert recovery["steps"][0]["metric"] == int8["metrics"]["snr_db"]
    assert recovery["steps"][-1]["metric"] == never["metrics"]["snr_db"]  # the cell's model is the last step's
    assert recovery["steps"][-1]["size_bytes"] == never["size_bytes"]
    assert all(s["latency_ms"] > 0 for s in recovery["steps"]) and never["timings_s"]["recover"] > 0
    assert never["audit"]["ops_by_kind"]["float"] > int8["audit"]["ops_by_kind"]["float"]
    ranks = [r["rmse_per_scale"] for r in recovery["ranking"]]
    assert ranks == sorted(ranks, reverse=True)

    by_drop = records["by_drop"]["recovery"]  # ranked on the accumulated error of the step-0 model
    assert [s["float_layers"] for s in by_drop["steps"]] == [0, 1] and not by_drop["met"]
    drops = [r["snr_drop_db"] for r in by_drop["ranking"]]
    assert drops == sorted(drops, reverse=True) and by_drop["float_layers"] == [by_drop["ranking"][0]["layer"]]
