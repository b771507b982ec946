"""A `.tflite` source that is not a TFLite flatbuffer is named as such in one line, never as the
runtime's ValueError from deep inside it."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import HarnessError
from harness.tflite._flatbuffer import check_tflite_file
from tests.kit import broken_model_suite, failed_run


@pytest.mark.parametrize("content, message", [
    (bytes(range(256)) * 4, "not a TFLite model (no TFL3 flatbuffer identifier)"),
    (b"", "not a TFLite model (no TFL3 flatbuffer identifier)"),
    (None, "no such file"),
])
def test_a_file_that_is_not_a_tflite_model_is_named(tmp_path: Path, content: bytes | None, message: str) -> None:
    path = tmp_path / "m.tflite"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(HarnessError, match="^" + str(path).replace(".", r"\.") + ": ") as caught:
        check_tflite_file(path)
    assert message in str(caught.value)


def test_a_run_records_the_reason_on_every_cell_of_that_model(tmp_path: Path) -> None:
    (tmp_path / "bad.tflite").write_bytes(bytes(range(256)) * 4)
    records = failed_run(tmp_path, broken_model_suite("bad.tflite", "{kind: synthetic, count: 4, shape: [8], seed: 1}",
                                                      "fidelity"))
    assert [r["status"] for r in records] == ["failed", "failed"]
    for record in records:
        assert f"{tmp_path / 'bad.tflite'}: not a TFLite model (no TFL3 flatbuffer identifier)" in record["error"]
        assert "ValueError" not in record["error"] and "(at " not in record["error"]
