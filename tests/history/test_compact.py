"""A history row's compact record: at most LIMIT bytes, keeping what trend and attribution need."""

from __future__ import annotations

import json
import zlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.history._compact import DICTIONARIES, ESSENTIAL, LARGEST, LIMIT, _deflate, compact, decode, encode
from harness.record import validate_record
from tests.report.runs import standard_cells


def bloated() -> dict[str, Any]:
    """An int8 cell with every kind of detail a real record can carry, far beyond the limit."""
    record = standard_cells()[1]
    record["latency_samples_ms"] = [6.0 + i / 1000 for i in range(1000)]
    record["weights"] = {"layers": [{"layer": f"block{i}/conv/kernel", "op": "CONV_2D", "dtype": "int8",
                                     "shape": [32, 3, 3, 32], "weights": 9216, "zeros": i, "sparsity": i / 9216,
                                     "unique": 255, "unique_per_channel_max": 255} for i in range(200)],
                         "weights": 1_843_200, "zeros": 19_900, "sparsity": 0.0108, "max_unique": 255,
                         "max_unique_per_channel": 255}
    record["op_profile"] = {"run_order": [{"node_type": f"CONV_2D_{i}", "avg_ms": i / 7} for i in range(300)]}
    record["audit"] = {"op_count": 400, "ops_by_kind": {"float": 3, "int8": 397}, "integer_only": False,
                       "ops": {f"OP_{i}": {"count": 8, "float": 0, "int8": 8} for i in range(60)},
                       "bytes_by_dtype": {"int8": 1_843_200, "float32": 512}}
    record["quantization"] = {"ops": [{"op": "CONV_2D", "output": f"t{i}", "weights": "int8"} for i in range(200)],
                              "targeted": 200, "as_asked": 200, "coverage": 1.0}
    record["outputs"] = [{"name": f"out{i}", "shape": [450, 10], "snr_db": 30.0 + i} for i in range(20)]
    record["artifact"] = {"path": "/cache/tflite/ab/" + "ab" * 32 + ".tflite", "sha256": "ab" * 32,
                          "source_info": {"layers": [f"layer_{i}" for i in range(300)]}}
    record["latency_setup"] = {"core": 1, "runtime": "ai-edge-litert 2.3.0", "command": "x " * 400}
    record["evaluation"] = {"dataset": "test", "samples": 10_000, "per_class": list(range(1000))}
    record["device_state"] = {"before": {"core": 1, "loadavg": [1.0, 2.0, 3.0], "thermal": {f"zone{i}": 40.0 + i
                                                                                         for i in range(40)}},
                              "after": {"core": 1}, "hot": False, "busy": None}
    record["latency_vs_float"] = {"float_sha256": "cd" * 32, "float_path": "/cache/f.tflite", "ratio": 0.61,
                                  "pairs": [[10.0 + i / 100, 6.1] for i in range(100)]}
    record["executed_on"] = {"node_id": "local", "hostname": "ci-1", "retried": ["lost node"] * 30}
    record["device_numerics"] = {"status": "ok", "outputs": [{"name": f"o{i}", "snr_db": 40.0} for i in range(50)]}
    return record


def test_a_bloated_record_fits_and_keeps_what_verdicts_and_trends_read() -> None:
    record = bloated()
    blob = encode(record)
    back = validate_record(decode(blob))
    assert len(blob) <= LIMIT < len(zlib.compress(json.dumps(record).encode(), 9))
    for key in ("model", "scheme", "device", "status", "metrics", "verdicts", "latency_ms", "size_bytes"):
        assert back[key] == record[key], key
    assert back["artifact"] == {"path": record["artifact"]["path"], "sha256": "ab" * 32}
    assert back["weights"]["max_unique_per_channel"] == 255 and "layers" not in back["weights"]
    assert back["audit"]["ops_by_kind"] == {"float": 3, "int8": 397} and "ops" not in back["audit"]
    assert back["quantization"]["coverage"] == 1.0 and back["latency_setup"]["runtime"] == "ai-edge-litert 2.3.0"
    assert not {"latency_samples_ms", "op_profile", "outputs"} & set(back)
    kept = validate_record(decode(_deflate(compact(record))))  # before any field gives way: still a valid record
    assert kept["device_state"]["before"] == {"core": 1} and kept["latency_vs_float"]["float_sha256"] == "cd" * 32


@settings(max_examples=60, deadline=None)
@given(extra=st.dictionaries(st.text(min_size=1, max_size=12).filter(lambda k: k not in ESSENTIAL),
                             st.text(max_size=3000) | st.lists(st.floats(allow_nan=False), max_size=300),
                             max_size=6))
def test_any_other_field_gives_way_before_the_essential_ones(extra: dict[str, Any]) -> None:
    record = {**standard_cells()[2], **extra}
    back = decode(encode(record))
    assert {k: back[k] for k in ESSENTIAL if k in record} == {k: record[k] for k in ESSENTIAL if k in record}
    assert len(encode(record)) <= LIMIT


def test_the_dictionary_rows_were_written_with_never_changes() -> None:
    assert list(DICTIONARIES) == [2496084080]  # add a dictionary for a new one; never edit this one


@pytest.mark.parametrize(("blob", "message"), [
    (b"x\xbb\x00\x00\x00\x01" + b"\x00" * 20, "unknown zlib dictionary"),
    (zlib.compress(b" " * (LARGEST + 1)), "inflates beyond"),
    (b"plain text", "not zlib data"),
])
def test_a_damaged_or_hostile_blob_is_a_clear_error(blob: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        decode(blob)
