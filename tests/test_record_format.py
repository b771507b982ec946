"""Results format 3: the latency sample and the details beside results.jsonl (results.bin), every older
format upgraded in memory through update_to_N, a newer one refused in one line; the format-2 runs in
tests/fixtures/format2_run (recorded before format 3) still read, report, compare and resume."""

from __future__ import annotations

import contextlib
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.compare import cross_run_test
from harness.record import (
    FORMAT_VERSION,
    UPGRADES,
    CellRecord,
    RecordError,
    latency_sample,
    record_id,
    upgrade,
    validate_record,
)
from harness.report.charts import quartiles
from harness.results import (
    RESULTS,
    SIDECAR,
    ResultsFileError,
    ResultsWriter,
    decode_sample,
    encode_sample,
    join_record,
    read_results,
    rewrite_results,
    split_record,
)
from harness.stats import bounded_sample
from tests.conftest import ROOT, run_bench

FORMAT_2 = ROOT / "tests" / "fixtures" / "format2_run"
LINE_LIMIT = 4096  # bytes per cell in results.jsonl


def format_2_runs(tmp_path: Path) -> Path:
    folder = tmp_path / "format2"
    shutil.copytree(FORMAT_2, folder)
    return folder


def by_cell(records: list[CellRecord]) -> dict[str, CellRecord]:
    return {record_id(r): r for r in records}


def without_format(record: CellRecord) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in ("format_version", "sidecar")}


def line_sizes(run_dir: Path) -> list[int]:
    return [len(line.encode()) for line in (run_dir / RESULTS).read_text().splitlines(keepends=True)]


def test_a_format_2_run_is_read_upgraded_and_whole(tmp_path: Path) -> None:
    run_dir = format_2_runs(tmp_path) / "a"
    assert {json.loads(line)["format_version"] for line in (run_dir / RESULTS).read_text().splitlines()} == {2}
    records = read_results(run_dir)
    assert [r["format_version"] for r in records] == [FORMAT_VERSION] * 3
    assert all(len(latency_sample(r)) == 1000 and r["weights"]["layers"] and r["audit"]["ops"] for r in records)


def test_format_3_keeps_every_value_and_the_distribution_tests_give_the_same_answer(tmp_path: Path) -> None:
    """The recorded format-2 runs moved to format 3: each record reads back equal to what format 2 held, and
    the Mann–Whitney test of every cell (both directions: U and p) and its quartiles are exactly the same."""
    folder = format_2_runs(tmp_path)
    before = {run: by_cell(read_results(folder / run)) for run in ("a", "b")}
    for run in ("a", "b"):
        rewrite_results(folder / run, list(before[run].values()))
    after = {run: by_cell(read_results(folder / run)) for run in ("a", "b")}
    for run in ("a", "b"):
        sizes = line_sizes(folder / run)
        assert max(sizes) <= LINE_LIMIT, sizes  # 15.6 to 18.5 KB each in format 2
        assert [without_format(r) for r in after[run].values()] == [without_format(r) for r in before[run].values()]
        assert (folder / run / SIDECAR).stat().st_size < 3 * (4000 + 2000)  # 1,000 float32 and the details per cell
    for cell in before["a"]:
        for first, second in (("a", "b"), ("b", "a")):
            was = cross_run_test(before[first][cell], before[second][cell])
            now = cross_run_test(after[first][cell], after[second][cell])
            assert was is not None and was.method == "per-iteration samples" and now == was
        assert quartiles(after["a"][cell]) == quartiles(before["a"][cell]) is not None


def test_writing_again_reuses_the_parts_already_in_results_bin(tmp_path: Path) -> None:
    run_dir = format_2_runs(tmp_path) / "a"
    rewrite_results(run_dir, read_results(run_dir))
    size = (run_dir / SIDECAR).stat().st_size
    records = read_results(run_dir)
    rewrite_results(run_dir, records)
    assert (run_dir / SIDECAR).stat().st_size == size  # nothing appended: each part found where it was
    records[0]["latency_samples_ms"] = [1.0, 2.0]
    rewrite_results(run_dir, records)
    assert (run_dir / SIDECAR).stat().st_size > size and latency_sample(read_results(run_dir)[0]) == [1.0, 2.0]


def test_bench_report_and_compare_read_a_format_2_run(tmp_path: Path) -> None:
    folder = format_2_runs(tmp_path)
    done = run_bench("report", "a", cwd=folder)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "| mlp | int8 | local |" in (folder / "a" / "summary.md").read_text()
    done = run_bench("compare", "a", "b", cwd=folder)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "per-iteration samples" in " ".join(done.stdout.split())


@pytest.mark.slow  # quantizes the MLP again (its int8 cell) and times it
def test_a_format_2_run_resumes(tmp_path: Path, session_cache: Path) -> None:
    folder = format_2_runs(tmp_path)
    lines = [_current_key(folder, line) for line in (folder / "a" / RESULTS).read_text().splitlines(keepends=True)]
    (folder / "a" / RESULTS).write_text("".join(lines[:2]))  # the int8 cell was not done
    info = json.loads((folder / "a" / "run.json").read_text())
    (folder / "a" / "run.json").write_text(json.dumps({**info, "status": "interrupted"}))
    done = run_bench("run", "suite.yaml", "--out", "a", "--resume", "--cache", str(session_cache), "--no-history",
                     cwd=folder)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "resumed: 2 cell(s) were already done" in done.stdout
    stored = [json.loads(line)["format_version"] for line in (folder / "a" / RESULTS).read_text().splitlines()]
    assert stored == [2, 2, 3] and line_sizes(folder / "a")[2] <= LINE_LIMIT
    records = by_cell(read_results(folder / "a"))
    assert records["mlp/float32@local"]["finished_at"] == json.loads(lines[0])["finished_at"]  # kept, not re-run
    assert len(latency_sample(records["mlp/int8@local"])) == 1000 and records["mlp/int8@local"]["weights"]["layers"]


def _current_key(folder: Path, line: str) -> str:
    """The line (format 2 as it is) with the cell key today's suite schema gives its cell: a key hashes the
    suite's parsed entries with their defaults, so a schema that grew an option since the fixture was
    recorded re-runs the cell (its inputs changed), which is not what this test is about."""
    from harness.plan import cell_key, plan_cells
    from harness.suite import load_suite

    with contextlib.chdir(folder):  # as `bench run` there sees it (device profiles are looked up in ./devices too)
        loaded = load_suite(Path("suite.yaml"))
        keys = {cell.id: cell_key(loaded, cell) for cell in plan_cells(loaded)}
    data = json.loads(line)
    return json.dumps({**data, "cell_key": keys[record_id(data)]}) + "\n"


@pytest.mark.parametrize("where", [f"{RESULTS}:2", "run.json"])
def test_a_newer_format_is_one_error_line(tmp_path: Path, where: str) -> None:
    folder = format_2_runs(tmp_path)
    newer = FORMAT_VERSION + 1
    if where == "run.json":
        info = json.loads((folder / "a" / "run.json").read_text())
        (folder / "a" / "run.json").write_text(json.dumps({**info, "format_version": newer}))
    else:
        lines = (folder / "a" / RESULTS).read_text().splitlines()
        lines[1] = json.dumps({**json.loads(lines[1]), "format_version": newer})
        (folder / "a" / RESULTS).write_text("\n".join(lines) + "\n")
    done = run_bench("report", "a", cwd=folder)
    assert done.returncode == 2 and "Traceback" not in done.stderr + done.stdout
    assert done.stderr.strip() == (f"error: a/{where}: format_version: {newer} is newer than this quantbench reads "
                                   f"(up to {FORMAT_VERSION}); upgrade quantbench to read it")


def test_every_older_format_upgrades_through_the_chain() -> None:
    assert sorted(UPGRADES) == list(range(2, FORMAT_VERSION + 1))
    unversioned = {"model": "m", "scheme": "int8", "device": "local", "status": "failed", "error": "boom"}
    assert upgrade(unversioned)["format_version"] == FORMAT_VERSION and "format_version" not in unversioned
    assert validate_record(unversioned)["format_version"] == FORMAT_VERSION  # a history row is read so too
    assert validate_record({**unversioned, "format_version": 2})["format_version"] == FORMAT_VERSION
    for version in (FORMAT_VERSION + 1, 0, "3", True):
        with pytest.raises(RecordError, match="^format_version: "):
            validate_record({**unversioned, "format_version": version})


@pytest.mark.parametrize("damage", ["flipped", "cut", "missing", "foreign"])
def test_a_damaged_or_missing_results_bin_is_one_error_line(tmp_path: Path, damage: str) -> None:
    run_dir = format_2_runs(tmp_path) / "a"
    rewrite_results(run_dir, read_results(run_dir))
    sidecar = run_dir / SIDECAR
    data = bytearray(sidecar.read_bytes())
    if damage == "flipped":
        data[10] ^= 1
        sidecar.write_bytes(bytes(data))
    elif damage == "cut":
        sidecar.write_bytes(bytes(data[:-1]))
    elif damage == "missing":
        sidecar.unlink()
    else:
        sidecar.write_bytes(bytes(reversed(data)))
    with pytest.raises(ResultsFileError, match=rf"^{run_dir / RESULTS}:\d: sidecar: ") as error:
        read_results(run_dir)
    assert "\n" not in str(error.value)
    done = run_bench("report", str(run_dir), cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(min_value=1e-9, max_value=1e9, allow_nan=False), min_size=1, max_size=2000))
def test_a_bounded_sample_reads_back_value_for_value_as_float32(values: list[float]) -> None:
    sample = bounded_sample(values)
    data, dtype = encode_sample(sample)
    assert dtype == "float32" and len(data) == 4 * len(sample) and decode_sample(data, dtype) == sample


@given(st.lists(st.floats(allow_nan=False, allow_infinity=False, width=64), min_size=1, max_size=50))
def test_any_sample_reads_back_value_for_value(values: list[float]) -> None:
    data, dtype = encode_sample(values)
    assert decode_sample(data, dtype) == values


REAL = """\
name: small
datasets:
  train: {{kind: digits, split: train}}
  test: {{kind: digits, split: test}}
models:
  - {{name: digits_cnn, path: "{model}"}}
task: {{kind: classification, dataset: test}}
calibration: {{dataset: train, samples: 32}}
schemes: [float32, float16, dynamic_range, int8, int8_only, int16x8]
latency: {{warmup_runs: 2, num_runs: 300, min_secs: 0, repeats: 3, float_pairs: 2}}  # n_pairs >= 2 below
thresholds:
  defaults:
    top1: {{max_abs_drop: 0.2}}
    size_ratio: {{max: 1.0}}
"""


@pytest.mark.slow  # converts the session's tiny CNN with every post-training scheme and times each
def test_a_real_small_run_keeps_each_cell_within_4_kb(tmp_path: Path, kit: Any, session_cache: Path) -> None:
    (tmp_path / "suite.yaml").write_text(REAL.format(model=kit.keras_path))
    done = run_bench("run", "suite.yaml", "--out", "run", "--cache", str(session_cache), "--no-history", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    sizes = line_sizes(tmp_path / "run")
    print(f"results.jsonl bytes per cell: mean {sum(sizes) / len(sizes):.0f}, max {max(sizes)}; "
          f"results.bin {(tmp_path / 'run' / SIDECAR).stat().st_size} bytes for {len(sizes)} cells")
    assert len(sizes) == 6 and max(sizes) <= LINE_LIMIT, sizes
    for record in read_results(tmp_path / "run"):
        assert record["status"] == "ok", record.get("error")
        assert len(latency_sample(record)) == 900 and record["latency_ms"]["count"] == 900  # 3 repeats of 300
        assert record["weights"]["layers"] and record["audit"]["ops"] and record["outputs"]
        assert record["scheme"] == "float32" or record["latency_vs_float"]["n_pairs"] >= 2


def test_bytes_a_crash_left_in_results_bin_are_never_read(tmp_path: Path) -> None:
    """A crash between a cell's part and its line leaves bytes no line names: the next line's part goes after
    them, and every line reads back its own."""
    run_dir = format_2_runs(tmp_path) / "a"
    records = read_results(run_dir)
    rewrite_results(run_dir, records[:1])
    with open(run_dir / SIDECAR, "ab") as handle:
        handle.write(b"\x00" * 999)  # the part of a cell whose line was never written
    ResultsWriter(run_dir).extend(records[1:])
    back = read_results(run_dir)
    assert [without_format(r) for r in back] == [without_format(r) for r in records]
    assert back[1]["sidecar"]["offset"] == back[0]["sidecar"]["offset"] + back[0]["sidecar"]["length"] + 999


def test_split_and_join_give_the_record_back(tmp_path: Path) -> None:
    """What another store (the history) may keep: the compact line and the part as a blob."""
    for record in read_results(FORMAT_2 / "a"):
        line, part, count, dtype = split_record(record)
        assert "latency_samples_ms" not in line and "layers" not in line["weights"] and count == 1000
        assert len(json.dumps(line)) < LINE_LIMIT and dtype == "float32"
        assert join_record(line, part, count, dtype) == record


def test_a_cell_without_a_sample_or_details_reads_back_as_it_was(tmp_path: Path) -> None:
    """A failed cell and a phone timed by statistics only (`latency_samples_ms` None) keep their line as is."""
    failed: CellRecord = {"model": "m", "scheme": "int8", "device": "local", "status": "failed", "error": "boom",
                          "latency_samples_ms": None, "verdicts": []}
    phone: CellRecord = {**failed, "device": "phone", "status": "ok", "error": None,
                         "device_state": {"before": {"max_temp_c": 31.5, "cores": [{"cpu": 4, "governor": "walt"}]},
                                          "hot": False}}
    ResultsWriter(tmp_path).extend([failed, phone])
    lines = [json.loads(line) for line in (tmp_path / RESULTS).read_text().splitlines()]
    assert "sidecar" not in lines[0] and lines[1]["device_state"] == {"hot": False} and lines[1]["sidecar"]["samples"] == 0
    assert [without_format(r) for r in read_results(tmp_path)] == [failed, phone]


@pytest.mark.parametrize("log", sorted((ROOT / "tests" / "fixtures" / "benchmark_model_logs").glob("*.log")),
                         ids=lambda p: p.name[:2])
def test_real_benchmark_model_logs_give_delegates_and_op_profiles_the_record_types_accept(log: Path) -> None:
    from harness.devices.android.benchmark_log import parse_benchmark_log

    parsed = parse_benchmark_log(log.read_text(errors="replace"))
    record = {"model": "m", "scheme": "float32", "device": "phone", "status": "ok",
              "delegates": parsed.delegates.to_dict(), "op_profile": parsed.op_profile.to_dict() if parsed.op_profile else None}
    assert validate_record(json.loads(json.dumps(record)))["delegates"] == record["delegates"]
