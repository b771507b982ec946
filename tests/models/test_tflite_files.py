"""A `.tflite` source that is not a TFLite flatbuffer is named as such in one line, never as the
runtime's ValueError from deep inside it."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import HarnessError
from harness.results import read_results
from harness.tflite._flatbuffer import check_tflite_file
from tests.conftest import run_bench


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
    (tmp_path / "s.yaml").write_text("""name: t
datasets:
  test: {kind: synthetic, count: 4, shape: [8], seed: 1}
models:
  - {name: bad, path: bad.tflite}
task: {kind: fidelity, dataset: test}
schemes: [float32, dynamic_range]
latency: {float_pairs: 0, warmup_runs: 1, num_runs: 3, min_secs: 0}
""")
    done = run_bench("run", str(tmp_path / "s.yaml"), "--reports", str(tmp_path / "r"), "--cache",
                     str(tmp_path / "c"), "--no-history")
    assert done.returncode == 1 and "Traceback" not in done.stdout + done.stderr, done.stdout + done.stderr
    [run_dir] = (tmp_path / "r" / "t").iterdir()
    records = read_results(run_dir)
    assert [r["status"] for r in records] == ["failed", "failed"]
    for record in records:
        assert f"{tmp_path / 'bad.tflite'}: not a TFLite model (no TFL3 flatbuffer identifier)" in record["error"]
        assert "ValueError" not in record["error"] and "(at " not in record["error"]
