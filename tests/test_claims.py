"""A scheme is what it claims: every scheme states its claims (harness/claims.py), each cell's record
checks them against the produced .tflite (`claims` part) and each is a verdict the suite may accept.

Fast tests use audits and weight statistics shaped as the readers write them; the slow ones convert
real models: MediaPipe's iris landmark model (53 PRELU) under int8_only, and QAT of a tiny tf_keras
model whose Conv1D and PReLU TFMOT leaves float."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from harness.cache import ArtifactCache
from harness.claims import Claim, check_claim, check_claims, short_name
from harness.config.schema import CLAIM_NAMES, ClaimBound, ThresholdOverride, Thresholds
from harness.errors import ConfigError
from harness.plan import plan_cells
from harness.record import validate_record
from harness.runner import SuiteRunner
from harness.schemes import SCHEMES
from harness.suite.loader import load_suite
from harness.verdicts import claim_verdicts, claims_for, judge


def ops(**rows: tuple[int, int, int]) -> dict[str, dict[str, int]]:
    """An audit's `ops` table from op → (float, int8, int16)."""
    return {op: {"count": sum(row), "float": row[0], "int8": row[1], "int16": row[2], "other": 0, "hybrid": 0}
            for op, row in rows.items()}


def kernel(name: str, dtype: str, weights: int = 2048) -> dict[str, Any]:
    return {"layer": name, "op": "CONV_2D", "dtype": dtype, "shape": [weights], "weights": weights}


INTEGER_AUDIT = {"ops": ops(CONV_2D=(0, 5, 0), ADD=(0, 2, 0)), "integer_only": True, "integer_only_breakers": [],
                 "stayed_float": []}
HOLDING: dict[str, dict[str, Any]] = {  # a record each claim holds on
    "integer_only": {"audit": INTEGER_AUDIT},
    "quantized_ops_share": {"audit": INTEGER_AUDIT},
    "weights_quantized": {"weights": {"layers": [kernel("conv/kernel", "int8"), kernel("dense/kernel", "int16")]}},
    "weights_float16": {"weights": {"layers": [kernel("conv/kernel", "float16")]}},
}


def prelu_audit(prelus: int = 53) -> dict[str, Any]:
    """What the audit finds in litert-quantizer's int8_only of a model with PRELU: each one float between
    a DEQUANTIZE and a QUANTIZE."""
    return {
        "ops": ops(CONV_2D=(0, 55, 0), PRELU=(prelus, 0, 0), DEQUANTIZE=(prelus, 0, 0), QUANTIZE=(prelus, 0, 0)),
        "integer_only": False,
        "integer_only_breakers": [f"DEQUANTIZE ×{prelus} runs in float (dequantizes for PRELU)",
                                  f"PRELU ×{prelus} runs in float", f"QUANTIZE ×{prelus} runs in float"],
        "stayed_float": [{"op": "DEQUANTIZE", "count": prelus, "reason": "dequantizes for PRELU",
                          "outputs": ["conv2d_dequant"]},
                         {"op": "PRELU", "count": prelus, "reason": None,
                          "outputs": ["p_re_lu", "p_re_lu_1", "p_re_lu_2"]}],
    }


# -- every registered scheme states checkable claims ----------------------------------------------
@pytest.mark.parametrize("name", SCHEMES.names())
def test_every_scheme_declares_checkable_claims(name: str) -> None:
    scheme = SCHEMES.get(name)
    assert isinstance(scheme.claims, tuple) and all(isinstance(c, Claim) for c in scheme.claims)
    assert len({c.name for c in scheme.claims}) == len(scheme.claims)
    options = scheme.Options.model_construct()  # defaults, unvalidated (a recipe needs its `recipe`)
    for claim in scheme.claims:
        assert claim.name in CLAIM_NAMES and 0 < claim.min <= 1 and claim.statement()
        assert all(field in type(options).model_fields for field in claim.waived_by), claim.waived_by
        held = check_claim(claim, options, HOLDING[claim.name].get("audit"), HOLDING[claim.name].get("weights"))
        assert held["pass"] is True and held["value"] is not None, held
        missing = check_claim(claim, options, None, None)  # nothing read back: fails, never passes quietly
        assert missing["pass"] is False and missing["value"] is None and "not produced" in missing["found"]


def test_schemes_claim_what_they_are() -> None:
    claims = {name: {c.name for c in SCHEMES.get(name).claims} for name in SCHEMES.names()}
    assert claims["float32"] == claims["prune"] == claims["cluster"] == claims["prune+cluster"] == set()
    assert claims["int8_only"] == claims["prune+int8_only"] == {"integer_only", "weights_quantized"}
    for name in ("int8", "int16x8", "qat", "prune+qat", "cluster+qat", "prune+cluster+qat", "cluster+int8"):
        assert claims[name] == {"weights_quantized", "quantized_ops_share"}, name
    assert claims["float16"] == claims["prune+float16"] == {"weights_float16"}
    assert claims["dynamic_range"] == {"weights_quantized"}
    assert [c.min_elements for c in SCHEMES.get("dynamic_range").claims] == [1024]


# -- what the file holds, named --------------------------------------------------------------------
def test_integer_only_names_the_float_ops() -> None:
    result = check_claims([Claim("integer_only")], {}, {"audit": prelu_audit()})[0]
    assert result["pass"] is False and result["value"] == 0.0
    assert result["found"] == ("53 ops run in float: PRELU ×53 (p_re_lu, p_re_lu_1, p_re_lu_2, …); "
                               "106 QUANTIZE/DEQUANTIZE around them")
    assert result["left_float"] == ["PRELU ×53 (p_re_lu, p_re_lu_1, p_re_lu_2, …)"]
    validate_record({"model": "m", "scheme": "s", "device": "d", "status": "ok", "claims": [result]})


def test_integer_only_names_float_model_io() -> None:
    audit = {**INTEGER_AUDIT, "integer_only": False, "ops": ops(QUANTIZE=(1, 0, 0), CONV_2D=(0, 3, 0)),
             "integer_only_breakers": ["QUANTIZE ×1 runs in float", "input x is float32"]}
    found = check_claim(Claim("integer_only"), {}, audit, None)["found"]
    assert found == "1 QUANTIZE/DEQUANTIZE run in float; input x is float32"


def test_share_counts_compute_ops_only_and_caps_the_list() -> None:
    float_ops = {f"OP{i}": (i + 1, 0, 0) for i in range(7)}  # 28 float ops of 7 types
    audit = {"ops": ops(CONV_2D=(0, 70, 2), QUANTIZE=(30, 0, 0), **float_ops), "stayed_float": []}
    result = check_claim(Claim("quantized_ops_share", min=0.9), {}, audit, None)
    assert result["value"] == pytest.approx(72 / 100) and result["pass"] is False
    assert result["found"] == ("72 of 100 compute ops run in int8/int16; 28 in float: OP6 ×7, OP5 ×6, OP4 ×5, "
                               "OP3 ×4, OP2 ×3, +2 more")
    assert len(result["left_float"]) == 7


def test_weights_claims_name_the_float_kernels_and_their_bytes() -> None:
    weights = {"layers": [kernel("model/conv/Conv2D;model/conv/BiasAdd", "float32", 300_000),
                          kernel("model/dense/MatMul", "int8", 100_000), kernel("tiny", "float32", 10)]}
    result = check_claim(Claim("weights_quantized", min_elements=1024), {}, None, weights)
    assert result["value"] == pytest.approx(0.25) and result["pass"] is False
    assert result["found"] == ("1 of 2 kernels integer; 1 not (300,000 of 400,000 weights, 1.2 MB): "
                               "model/conv/Conv2D (float32)")
    assert check_claim(Claim("weights_quantized"), {}, None, {"layers": []})["pass"] is True  # nothing to store
    assert short_name("x" * 80).endswith("…") and len(short_name("x" * 80)) == 60


def test_an_option_that_keeps_layers_float_waives_the_claim() -> None:
    int8 = SCHEMES.get("int8")
    results = check_claims(int8.claims, int8.Options(float_layers=["dense"]), {"audit": prelu_audit()})
    assert {r["claim"]: (r["pass"], r.get("waived")) for r in results} == {
        "weights_quantized": (None, "`float_layers` keeps layers float on request"),
        "quantized_ops_share": (None, "`float_layers` keeps layers float on request")}
    record = {"model": "m", "scheme": "int8", "status": "ok", "claims": results}
    assert claim_verdicts(record) == []  # recorded, not checked


# -- verdicts and the suite's word -----------------------------------------------------------------
def int8_only_record(**extra: Any) -> dict[str, Any]:
    record = {"model": "iris", "scheme": "int8_only", "scheme_kind": "int8_only", "device": "local", "status": "ok",
              "scheme_options": {}, "audit": prelu_audit(),
              "weights": {"layers": [kernel("conv/kernel", "int8")]}, **extra}
    scheme = SCHEMES.get("int8_only")
    record["claims"] = check_claims(scheme.claims, scheme.Options(), record)
    return record


def test_a_claim_that_does_not_hold_fails_naming_the_ops() -> None:
    verdicts = {v["check"]: v for v in claim_verdicts(int8_only_record())}
    assert set(verdicts) == {"integer_only", "weights_quantized"}
    failed = verdicts["integer_only"]
    assert failed["pass"] is False and failed["threshold"] == 1.0 and failed["observed"] == 0.0
    assert failed["note"].startswith("integer_only: 53 ops run in float: PRELU ×53 (p_re_lu, ")
    assert verdicts["weights_quantized"]["pass"] is True


def test_the_suite_accepts_a_claim_or_restates_its_minimum() -> None:
    record = int8_only_record()
    accepted = {v["check"]: v for v in claim_verdicts(record, {"integer_only": False})}["integer_only"]
    assert accepted["pass"] is True and "accepted by the suite" in accepted["note"] and accepted["value"] == 0.0
    share = {**record, "scheme": "int8", "scheme_kind": "int8"}
    share["claims"] = check_claims(SCHEMES.get("int8").claims, {}, share)
    by_min = {v["check"]: v for v in claim_verdicts(share, {"quantized_ops_share": ClaimBound(min=0.5)})}
    assert by_min["quantized_ops_share"]["pass"] is True and by_min["quantized_ops_share"]["threshold"] == 0.5
    stricter = {v["check"]: v for v in claim_verdicts(share, {"quantized_ops_share": ClaimBound(min=0.9)})}
    assert stricter["quantized_ops_share"]["pass"] is False
    assert "the suite's minimum 0.9" in stricter["quantized_ops_share"]["note"]


def test_overrides_apply_claims_per_model_and_scheme_and_judge_uses_them() -> None:
    thresholds = Thresholds(overrides=[
        ThresholdOverride(models=["iris*"], schemes=["int8_only"], claims={"integer_only": False}),
        ThresholdOverride(schemes=["int8*"], claims={"weights_quantized": ClaimBound(min=0.5)})])
    assert claims_for(thresholds, "iris", "int8_only") == {"integer_only": False,
                                                           "weights_quantized": ClaimBound(min=0.5)}
    assert claims_for(thresholds, "other", "int8_only") == {"weights_quantized": ClaimBound(min=0.5)}
    assert claims_for(thresholds, "iris", "float16") == {}
    judged = judge([int8_only_record(), int8_only_record(model="other")], thresholds)
    assert [[v["check"] for v in r["verdicts"] if not v["pass"]] for r in judged] == [[], ["integer_only"]]


def test_a_record_without_a_claims_part_is_checked_from_its_audit_or_fails() -> None:
    record = int8_only_record()
    del record["claims"]
    assert [v["pass"] for v in claim_verdicts(record)] == [False, True]  # computed from the audit
    bare = {k: v for k, v in record.items() if k not in ("audit", "weights")}
    verdicts = claim_verdicts(bare)
    assert [v["pass"] for v in verdicts] == [False, False] and all(math.isnan(v["value"]) for v in verdicts)
    assert all("not produced" in v["note"] for v in verdicts)


CLAIMS_SUITE = """\
datasets:
  noise: {kind: synthetic, count: 4}
models:
  - path: m.tflite
schemes: [int8_only]
thresholds:
  overrides:
    - schemes: [int8_only]
      claims: {CLAIMS}
"""


@pytest.mark.parametrize(("claims", "message"), [
    ("{integer_onyl: false}", "unknown claim 'integer_onyl' (known: integer_only, weights_quantized"),
    ("{integer_only: 0.5}", "integer_only: give true, false (accepted) or {min: x}, not 0.5"),
    ("{quantized_ops_share: {min: 2}}", "quantized_ops_share.min: Input should be less than or equal to 1"),
    ("{weights_quantized: {max: 1}}", "weights_quantized.min: Field required"),
])
def test_a_bad_claim_setting_names_file_and_line(tmp_path: Path, claims: str, message: str) -> None:
    (tmp_path / "m.tflite").write_bytes(b"")
    suite = tmp_path / "suite.yaml"
    suite.write_text(CLAIMS_SUITE.replace("{CLAIMS}", claims))
    with pytest.raises(ConfigError) as error:
        load_suite(suite)
    assert error.value.line == 9 and message in str(error.value), str(error.value)


# -- real models ------------------------------------------------------------------------------------
IRIS = "package:mediapipe/modules/iris_landmark/iris_landmark.tflite"
IRIS_SUITE = """\
name: claims
datasets:
  noise: {{kind: synthetic, count: 4, low: 0, high: 1, seed: 3}}
models:
  - name: iris
    path: "{path}"
task: {{kind: classification, dataset: noise}}
calibration: {{dataset: noise, samples: 4}}
schemes: [int8_only]
latency: {{float_pairs: 0, warmup_runs: 1, num_runs: 2, min_secs: 0}}
{thresholds}"""


def run_suite(folder: Path, text: str, cache: Path) -> dict[str, dict[str, Any]]:
    folder.mkdir()
    (folder / "suite.yaml").write_text(text)
    loaded = load_suite(folder / "suite.yaml")
    (folder / "run").mkdir()
    outcome = SuiteRunner(loaded, folder / "run", ArtifactCache(cache)).run(plan_cells(loaded), [])
    return {r["scheme"]: r for r in outcome.records}


@pytest.mark.slow  # quantizes MediaPipe's iris landmark model with litert-quantizer (a few seconds)
def test_int8_only_of_a_model_with_prelu_fails_integer_only_unless_the_suite_accepts_it(tmp_path: Path) -> None:
    record = run_suite(tmp_path / "strict", IRIS_SUITE.format(path=IRIS, thresholds=""), tmp_path / "cache")["int8_only"]
    assert record["status"] == "ok", record["error"]
    claims = {c["claim"]: c for c in record["claims"]}
    assert claims["integer_only"]["pass"] is False and claims["weights_quantized"]["pass"] is True
    assert claims["integer_only"]["left_float"][0].startswith("PRELU ×53 (p_re_lu, p_re_lu_1, p_re_lu_2")
    failed = [v for v in record["verdicts"] if not v["pass"]]
    assert [v["check"] for v in failed] == ["integer_only"]
    assert failed[0]["note"].startswith("integer_only: 53 ops run in float: PRELU ×53 (p_re_lu, ")
    assert "106 QUANTIZE/DEQUANTIZE around them" in failed[0]["note"]

    accepting = "thresholds:\n  overrides:\n    - {models: [iris], schemes: [int8_only], claims: {integer_only: false}}\n"
    again = run_suite(tmp_path / "accepting", IRIS_SUITE.format(path=IRIS, thresholds=accepting), tmp_path / "cache")
    record = again["int8_only"]
    assert record["artifact"]["cached"] and all(v["pass"] for v in record["verdicts"]), record["verdicts"]
    assert "accepted by the suite" in next(v["note"] for v in record["verdicts"] if v["check"] == "integer_only")


QAT_SUITE = """\
name: qat_claims
datasets:
  digits: {{kind: digits, split: train}}
models:
  - name: partly
    path: "{path}"
task: {{kind: classification, dataset: digits, limit: 64}}
finetune: {{dataset: digits, epochs: 1, batch_size: 32, limit: 64}}
schemes: [qat]
latency: {{float_pairs: 0, warmup_runs: 1, num_runs: 2, min_secs: 0}}
"""


def partly_quantizable(path: Path) -> Path:
    """A tf_keras model on 8x8 digits whose Conv1D and PReLU TFMOT's 8-bit registry leaves float."""
    import tf_keras

    tf_keras.utils.set_random_seed(0)
    inputs = tf_keras.Input((8, 8, 1))
    x = tf_keras.layers.Conv2D(8, 3, activation="relu", name="conv")(inputs)
    x = tf_keras.layers.Reshape((36, 8))(x)
    x = tf_keras.layers.Conv1D(16, 3, name="conv1d_float")(x)
    x = tf_keras.layers.PReLU(name="prelu_float")(x)
    outputs = tf_keras.layers.Dense(10, name="dense")(tf_keras.layers.Flatten()(x))
    tf_keras.Model(inputs, outputs, name="partly").save(path)
    return path


@pytest.mark.slow  # fine-tunes and converts a (tiny) model with QAT
def test_qat_leaving_layers_float_fails_its_claims_naming_them(tmp_path: Path) -> None:
    source = partly_quantizable(tmp_path / "partly.h5")
    record = run_suite(tmp_path / "qat", QAT_SUITE.format(path=source), tmp_path / "cache")["qat"]
    assert record["status"] == "ok", record["error"]
    assert {row["layer"] for row in record["technique"]["untouched"]} >= {"conv1d_float", "prelu_float"}
    failed = {v["check"]: v["note"] for v in record["verdicts"] if not v["pass"]}
    assert set(failed) >= {"quantized_ops_share", "weights_quantized"}, record["verdicts"]
    assert "PRELU ×1 (partly/prelu_float/" in failed["quantized_ops_share"]
    assert "partly/conv1d_float/" in failed["weights_quantized"] and "(float32)" in failed["weights_quantized"]
    claims = {c["claim"]: c for c in record["claims"]}
    assert claims["quantized_ops_share"]["value"] < 0.9 and claims["weights_quantized"]["value"] < 1


# -- reports ---------------------------------------------------------------------------------------
def test_a_failing_claim_needs_attention_in_every_report(tmp_path: Path) -> None:
    import html
    import xml.etree.ElementTree as ET

    from typer.testing import CliRunner

    from harness.cli import app
    from tests.report.runs import plain, standard_cells, unpacked, with_verdicts, write_run

    records = standard_cells()
    int8 = next(r for r in records if r["scheme"] == "int8")
    int8["claims"] = check_claims(SCHEMES.get("int8").claims, {}, {
        "audit": prelu_audit(), "weights": {"layers": [kernel("conv/kernel", "int8")]}})
    run_dir = write_run(tmp_path, with_verdicts(records))
    done = CliRunner().invoke(app, ["report", str(run_dir)])
    assert done.exit_code == 1 and "FAIL: 1 cell(s) violate thresholds" in done.output, done.output
    summary = plain((run_dir / "summary.md").read_text())
    assert "quantized_ops_share" in summary.split("attention", 1)[-1], summary
    page = html.unescape(unpacked((run_dir / "report.html").read_text()))  # each cell's details are packed
    assert "quantized_ops_share: 55 of 108 compute ops run in int8/int16; 53 in float: PRELU ×53 (p_re_lu" in page
    assert "min 0.9" in page
    failures = [f.get("message") for f in ET.parse(run_dir / "junit.xml").iter("failure")]
    assert len(failures) == 1 and "PRELU ×53 (p_re_lu, p_re_lu_1, p_re_lu_2, …)" in failures[0], failures


def test_shape_reads_no_values_and_is_no_compute_op() -> None:
    """litert-quantizer keeps a Flatten's SHAPE on a dequantized tensor: not integer-only, but no compute in float."""
    audit = {"ops": ops(CONV_2D=(0, 1, 0), FULLY_CONNECTED=(0, 1, 0), RESHAPE=(0, 1, 0), SHAPE=(1, 0, 0),
                        DEQUANTIZE=(2, 0, 0), QUANTIZE=(1, 0, 0)),
             "integer_only": False, "integer_only_breakers": [], "stayed_float": [
                 {"op": "SHAPE", "count": 1, "reason": None, "outputs": ["model/flatten/Shape"]}]}
    share = check_claim(Claim("quantized_ops_share", min=0.9), {}, audit, None)
    assert share["value"] == 1.0 and share["found"] == "3 of 3 compute ops run in int8/int16"
    integer_only = check_claim(Claim("integer_only"), {}, audit, None)
    assert integer_only["found"] == ("1 op runs in float: SHAPE ×1 (model/flatten/Shape); "
                                     "3 QUANTIZE/DEQUANTIZE around them")
