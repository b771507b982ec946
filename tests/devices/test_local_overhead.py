"""What a local cell costs beyond its own timing (issues 22 and 25): the acceleration probe runs in the
measurement process, once per model: kept in the artifact cache by what determines it (a warm re-run
asks for none), and the latency process sends the statistics of every run and a bounded sample of them,
never every run. Counted, never timed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from harness._latency import latency_stats, repeat_of, time_ab
from harness.cache import ArtifactCache
from harness.config.schema import LatencySpec
from harness.devices import Device, load_device
from harness.devices.local import _child, acceleration
from harness.devices.local.latency_process import answer, measure
from harness.stats import SAMPLE_LIMIT
from tests.conftest import latest, run_bench


def add_model(path: Path) -> Path:
    """A one-op model (y = x + constant, [1, 8] float32) written with LiteRT's flatbuffer schema: an
    invocation takes about a microsecond, and no TensorFlow is imported to make it."""
    from harness.tflite._flatbuffer import schema, write_object

    s = schema()
    tensors = []
    for index, name in enumerate(("x", "bias", "y")):
        tensor = s.TensorT()
        tensor.name, tensor.shape, tensor.type, tensor.buffer = name, [1, 8], s.TensorType.FLOAT32, index + 1
        tensors.append(tensor)
    code, op, graph, model = s.OperatorCodeT(), s.OperatorT(), s.SubGraphT(), s.ModelT()
    code.builtinCode = code.deprecatedBuiltinCode = s.BuiltinOperator.ADD
    code.version = 1
    op.opcodeIndex, op.inputs, op.outputs = 0, [0, 1], [2]
    op.builtinOptionsType, op.builtinOptions = s.BuiltinOptions.AddOptions, s.AddOptionsT()
    graph.tensors, graph.inputs, graph.outputs, graph.operators = tensors, [0], [2], [op]
    buffers = [s.BufferT() for _ in range(4)]
    buffers[2].data = np.frombuffer(np.arange(8, dtype=np.float32).tobytes(), np.uint8)
    model.version, model.operatorCodes, model.subgraphs, model.buffers = 3, [code], [graph], buffers
    path.write_bytes(write_object(model))
    return path


@pytest.fixture()
def add(tmp_path: Path) -> Path:
    return add_model(tmp_path / "add.tflite")


def test_the_process_sends_every_runs_statistics_and_a_bounded_sample(add: Path) -> None:
    """A microsecond model at `min_secs: 1` (and at least 5,000 runs, however loaded the machine): the
    answer holds at most SAMPLE_LIMIT values, its median is the median of every run, `count` says how many."""
    timed = measure(str(add), threads=1, warmup_runs=0, num_runs=5 * SAMPLE_LIMIT, min_secs=1, max_secs=60)
    runs = np.asarray(timed["samples"])
    sent = answer(timed)
    assert len(runs) >= 5 * SAMPLE_LIMIT and len(sent["samples"]) <= SAMPLE_LIMIT
    assert sent["stats"]["count"] == len(runs) and sent["stats"]["median"] == float(np.median(runs))
    assert (sent["stats"]["min"], sent["stats"]["max"]) == (runs.min(), runs.max())
    assert sent["stats"]["p90"] == float(np.percentile(runs, 90))
    assert sent["samples"] == sorted(sent["samples"]) and sent["samples"][0] == float(f"{runs.min():.6g}")
    assert len(json.dumps(sent)) < 40_000  # ~12 KB; every run at ~20 characters each would be MBs


def test_the_local_device_records_the_processs_statistics_not_its_sample(add: Path, tmp_path: Path) -> None:
    """Through the real process: the cell's latency is the process's statistics of all its runs."""
    device = load_device("local", tmp_path / "suites")
    raw = device.measure_latency(add, LatencySpec(warmup_runs=0, num_runs=3 * SAMPLE_LIMIT, min_secs=0))
    assert len(raw["samples"]) <= SAMPLE_LIMIT < 3 * SAMPLE_LIMIT <= raw["stats"]["count"]
    stats = latency_stats(raw)
    assert stats["count"] == raw["stats"]["count"]
    assert stats["median"] == pytest.approx(raw["stats"]["median"], rel=1e-5)  # kept to 6 significant digits


class Summarising(Device):
    """A device whose answer is like the local process's: full statistics beside a coarse bounded sample."""

    name = "summarising"

    def __init__(self, medians: dict[str, float]) -> None:
        self.medians = medians

    def measure_latency(self, model: Path, settings: LatencySpec) -> dict[str, Any]:
        median = self.medians[model.name]
        return {"stats": {"median": median, "mean": median, "count": 250_000, "min": median / 2, "max": median * 9},
                "samples": [median / 2, median * 9]}  # a sample whose own median is not the median


def test_statistics_and_pairs_use_the_devices_statistics_not_the_bounded_sample() -> None:
    device = Summarising({"a.tflite": 1.0, "b.tflite": 1.25})
    raw = device.measure_latency(Path("b.tflite"), LatencySpec())
    assert repeat_of(raw) == {"stats": raw["stats"], "samples": None}
    stats = latency_stats([raw, raw])
    assert (stats["median"], stats["count"], stats["repeats"]) == (1.25, 500_000, 2)
    ab = time_ab(device, Path("a.tflite"), Path("b.tflite"), LatencySpec(ab_pairs=2, ab_max_pairs=2))
    assert ab["pairs"] == [[1.0, 1.25], [1.0, 1.25]] and ab["ratio"] == pytest.approx(1.25)
    assert repeat_of({"samples": [3.0, 1.0, 2.0]})["stats"]["median"] == 2.0  # a kind returning runs only


def counting(monkeypatch: pytest.MonkeyPatch, replace: str | None = None) -> list[str]:
    """List the models each measurement process started by the local device was asked to probe; with
    `replace`, run that Python source as the process instead of latency_process.py (same arguments)."""
    calls: list[str] = []
    real = _child.command

    def command(name: str, *args: str) -> list[str]:
        if "--probe" in args:
            calls.append(args[0])
        return real(name, *args) if replace is None else [sys.executable, "-c", replace, *args]

    monkeypatch.setattr(_child, "command", command)
    return calls


# The real measurement process whose probe crashes (SIGABRT) once the timing is printed.
CRASHING_PROBE = """\
import os, sys
import harness.tflite.runtime as runtime
runtime.acceleration = lambda *args: os.abort()
from harness.devices.local import latency_process
latency_process.main(sys.argv[1:])
"""


def test_a_probe_crash_keeps_the_timing_records_why_and_keeps_nothing(
        add: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = ArtifactCache(tmp_path / "cache")
    device = load_device("local", tmp_path / "suites")
    device.use_cache(cache)
    calls = counting(monkeypatch, CRASHING_PROBE)
    settings = LatencySpec(warmup_runs=0, num_runs=3, min_secs=0)
    raw = device.measure_latency(add, settings)
    assert raw["stats"]["count"] == 3 and raw["host"]["core"] == device.core.core
    assert raw["acceleration"]["error"].startswith("the acceleration probe failed (exit -6)")
    assert not list((tmp_path / "cache").rglob("*.json"))  # a failure is never kept
    assert device.measure_latency(add, settings)["acceleration"] == raw["acceleration"]  # known in this run
    assert calls == [str(add)]
    monkeypatch.undo()
    again = load_device("local", tmp_path / "suites")  # the next run probes again, and keeps a good answer
    again.use_cache(cache)
    assert again.measure_latency(add, settings)["acceleration"]["delegated_nodes"] == 1
    assert acceleration.known(add, 1, cache) == again.measure_latency(add, settings)["acceleration"]


def test_the_key_is_what_determines_the_answer(add: Path, tmp_path: Path) -> None:
    cache = ArtifactCache(tmp_path / "cache")
    acceleration.keep(add, 1, cache, acceleration.failed("failed (exit 1): boom"))
    assert acceleration.known(add, 1, cache) is None
    good = {"delegate": "XNNPACK", "nodes": 1, "delegated_nodes": 1}
    acceleration.keep(add, 1, cache, good)
    assert acceleration.known(add, 1, cache) == good and acceleration.known(add, 2, cache) is None
    key = acceleration.probe_key(add, 1)
    assert key != acceleration.probe_key(add, 2)
    other = add_model(tmp_path / "copy.tflite")
    assert acceleration.probe_key(other, 1) == key  # the same bytes elsewhere: the same answer
    assert acceleration.known(other, 1, cache) == good
    other.write_bytes(other.read_bytes() + b"\0")
    assert acceleration.probe_key(other, 1) != key


SUITE = """\
name: probes
datasets:
  noise: {kind: synthetic, count: 4, low: -1, high: 1}
models:
  - {name: add, path: add.tflite}
task: {kind: fidelity, dataset: noise}
schemes: [float32]
latency: {float_pairs: 0, warmup_runs: 0, num_runs: 2, min_secs: 0}
"""


def test_a_warm_rerun_probes_nothing_and_a_damaged_entry_is_probed_again_with_a_warning(
        add: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.results import read_results

    (tmp_path / "suite.yaml").write_text(SUITE)
    calls = counting(monkeypatch)

    def run() -> tuple[dict[str, Any], str]:
        ran = run_bench("run", "suite.yaml", "--reports", "reports", "--cache", "cache", "--no-history", cwd=tmp_path)
        assert ran.returncode == 0, ran.stdout + ran.stderr
        [record] = read_results(latest(tmp_path / "reports" / "probes"))
        return record["acceleration"], ran.stdout + ran.stderr

    cold, _ = run()
    assert len(calls) == 1 and cold["delegated_nodes"] == cold["nodes"] == 1
    warm, _ = run()
    assert len(calls) == 1 and warm == cold
    [entry] = (tmp_path / "cache" / acceleration.CACHE_KIND).rglob("*.json")
    entry.write_text(entry.read_text().replace('"nodes": 1', '"nodes": 7'))  # changed by hand: never trusted
    again, said = run()
    assert len(calls) == 2 and again == cold
    assert "warning:" in said and "discarded and rebuilt" in said and str(entry.name) in said.replace("\n", "")


def test_the_measurement_process_loads_no_pydantic_yaml_or_tensorflow(add: Path) -> None:
    """What every local measurement starts pays for its imports: the record's types (pydantic), the suite's
    YAML and TensorFlow stay out of it, its probe included."""
    script = _child.command("latency_process")[-1]
    check = ("import runpy, sys; sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')\n"
             "heavy = sorted({'pydantic', 'yaml', 'tensorflow', 'scipy'} & set(sys.modules))\n"
             "assert not heavy, heavy")
    done = subprocess.run([sys.executable, "-P", "-c", check, script, str(add), "--core", str(min(os.sched_getaffinity(0))),
                           "--warmup-runs", "0", "--num-runs", "2", "--min-secs", "0", "--probe"],
                          capture_output=True, text=True, env=_child.environment(), timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert [json.loads(line) for line in done.stdout.splitlines()][1]["delegated_nodes"] == 1
