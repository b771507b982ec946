"""Host state of a local device's pinned core, read from /proc and /sys trees written by the test
(the parsing and the busy rule are under test here; a real pinned CPU hog is in tests/test_float_pairs.py),
the cool-down's local limits, and how reports show busy cells and paired ratios."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from harness._latency import device_state, time_vs_float, with_after
from harness.cache import file_digest
from harness.config.schema import Bound, CooldownSpec, LatencySpec
from harness.devices import Device, load_device
from harness.devices.local import host_state
from harness.devices.local.host_state import CoreWatch, core_times, cpufreq, during, process_ticks, runnable_on_core
from harness.errors import HarnessError
from harness.report.rows import build_rows
from harness.verdicts import check

STAT = """\
cpu  100 0 50 800 0 0 0 10 0 0
cpu0 60 0 30 400 0 0 0 5 0 0
cpu1 40 0 20 400 0 2 3 5 7 0
intr 1 2 3
"""


def task_stat(pid: int, comm: str, state: str, processor: int, utime: int = 0, stime: int = 0) -> str:
    """A /proc/<pid>/stat line: fields 3.. after `(comm)`, with utime (14), stime (15), processor (39)."""
    fields = [state] + ["0"] * 49
    fields[14 - 3], fields[15 - 3], fields[39 - 3] = str(utime), str(stime), str(processor)
    return f"{pid} ({comm}) {' '.join(fields)}\n"


def fake_proc(root: Path, tasks: dict[int, list[tuple[str, int]]]) -> Path:
    """/proc with /proc/stat and processes whose threads have the given (state, processor)."""
    (root / "stat").parent.mkdir(parents=True, exist_ok=True)
    (root / "stat").write_text(STAT)
    for pid, threads in tasks.items():
        (root / str(pid)).mkdir()
        (root / str(pid) / "stat").write_text(task_stat(pid, "p", threads[0][0], threads[0][1], 7, 5))
        for tid, (state, cpu) in enumerate(threads, start=pid):
            (root / str(pid) / "task" / str(tid)).mkdir(parents=True)
            (root / str(pid) / "task" / str(tid) / "stat").write_text(task_stat(tid, "a b) (c", state, cpu))
    return root


def test_core_times_sum_busy_fields_and_keep_steal_apart(tmp_path: Path) -> None:
    proc = fake_proc(tmp_path, {})
    times = core_times(1, proc)
    assert times is not None and (times.busy, times.steal) == (40 + 20 + 2 + 3, 5)
    assert times.total == 40 + 20 + 400 + 2 + 3 + 5  # guest (7) is already inside user
    assert core_times(5, proc) is None and core_times(0, tmp_path / "nowhere") is None


def test_runnable_tasks_on_the_core_count_threads_of_other_processes(tmp_path: Path) -> None:
    proc = fake_proc(tmp_path, {100: [("R", 1), ("R", 1), ("S", 1)], 200: [("R", 0)], 300: [("R", 1)]})
    assert runnable_on_core(1, frozenset({300}), proc) == 2
    assert runnable_on_core(0, frozenset(), proc) == 1
    assert runnable_on_core(1, frozenset(), tmp_path / "nowhere") is None
    assert process_ticks(100, proc) == 12 and process_ticks(999, proc) is None


@settings(max_examples=60, deadline=None)
@given(comm=st.text(alphabet=st.characters(blacklist_characters="\n\x00", blacklist_categories=("Cs",)),
                    max_size=15), utime=st.integers(0, 10**9), stime=st.integers(0, 10**9))
def test_a_process_name_with_spaces_and_parentheses_never_shifts_the_fields(
        tmp_path_factory: pytest.TempPathFactory, comm: str, utime: int, stime: int) -> None:
    proc = tmp_path_factory.mktemp("proc")
    (proc / "42").mkdir()
    (proc / "42" / "stat").write_text(task_stat(42, comm, "R", 1, utime, stime))
    assert process_ticks(42, proc) == utime + stime


def test_cpufreq_reads_what_is_there(tmp_path: Path) -> None:
    folder = tmp_path / "cpu3" / "cpufreq"
    folder.mkdir(parents=True)
    (folder / "scaling_cur_freq").write_text("1800000\n")
    (folder / "scaling_governor").write_text("schedutil\n")
    assert cpufreq(3, tmp_path) == {"freq_khz": 1800000, "governor": "schedutil"}
    assert cpufreq(4, tmp_path) == {}


def watch(jiffies: int, other: int, steal: int = 0) -> dict[str, Any]:
    return {"core": 1, "jiffies": jiffies, "other_jiffies": other, "steal_jiffies": steal, "own_jiffies": 0}


def test_during_sums_the_watches_and_says_when_too_short_to_tell() -> None:
    summed = during([watch(100, 10), watch(100, 30, 4)])
    assert (summed["other_share"], summed["steal_share"], summed["measurements"]) == (0.2, 0.02, 2)
    assert during([watch(3, 3)])["other_share"] is None


SPEC = LatencySpec(busy_share=0.1)


@pytest.mark.parametrize(("watches", "busy", "reason"), [
    ([watch(100, 5)], False, None),
    ([watch(100, 40)], True, "other tasks took 40% of the pinned core"),
    ([watch(100, 0, 20)], True, "steal time took 20%"),
    ([watch(4, 4)], None, "unknown: the pinned core was watched"),
])
def test_a_cell_is_busy_when_other_work_or_steal_passes_the_share(watches: list[dict[str, Any]], busy: bool | None,
                                                                   reason: str | None) -> None:
    state = with_after({"before": {"runnable_on_core": 0}, "cooldown_s": 0.0, "hot": False},
                       {"runnable_on_core": 1}, [{"samples": [1.0], "host": w} for w in watches], SPEC)
    assert state["busy"] is busy and state["throttled"] is False
    assert (reason is None and state["busy_reason"] is None) or reason in str(state["busy_reason"])


class QuietingHost(Device):
    """A local device whose pinned core has 3, then 2, then 0 other runnable tasks."""

    def __init__(self, counts: list[int]) -> None:
        self.counts = counts

    def device_state(self, cooldown: CooldownSpec | None = None) -> dict[str, Any]:
        return {"runnable_on_core": self.counts.pop(0) if len(self.counts) > 1 else self.counts[0],
                "core_busy_share": 0.5}


def test_the_cooldown_waits_for_a_quiet_core_and_marks_a_cell_that_never_got_one() -> None:
    quiet = device_state(QuietingHost([3, 2, 0]),  # type: ignore[arg-type]
                         LatencySpec(cooldown=CooldownSpec(max_runnable=0, poll_s=0.01)))
    assert quiet is not None and quiet["before"]["runnable_on_core"] == 0 and "busy_reason" not in quiet
    crowded = device_state(QuietingHost([3]),  # type: ignore[arg-type]
                           LatencySpec(cooldown=CooldownSpec(max_other_load=0.2, wait_s=0.03, poll_s=0.01)))
    assert crowded is not None and crowded["cooldown_s"] == 0.03
    assert "50% busy with other work (max_other_load 0.2)" in crowded["busy_reason"]
    marked = with_after(crowded, {}, [{"host": watch(100, 0)}], SPEC)
    assert marked["busy"] is True and marked["busy_reason"].startswith("after the cool-down wait")


def test_the_suite_names_the_new_latency_fields() -> None:
    assert LatencySpec().float_pairs == 6 and LatencySpec().busy_share == 0.1 and LatencySpec().cooldown is None
    with pytest.raises(ValidationError, match="give max_temp_c .phones., max_runnable or max_other_load"):
        CooldownSpec()
    with pytest.raises(ValidationError):
        LatencySpec(float_pairs=-1)
    assert CooldownSpec(max_temp_c=40).max_runnable is None


def test_a_core_watch_sees_a_pinned_process_and_its_own_time() -> None:
    core = max(os.sched_getaffinity(0))
    code = f"import os,time\nos.sched_setaffinity(0,{{{core}}})\nend=time.process_time()+0.5\n" \
           "while time.process_time()<end: pass\n"
    with subprocess.Popen([sys.executable, "-c", code]) as child, CoreWatch(core, child.pid, every_s=0.02) as seen:
        child.wait(timeout=120)
    result = seen.result()
    assert result["core"] == core and result["own_jiffies"] >= 0 and result["jiffies"] >= result["other_jiffies"]


def record(scheme: str, median: float, paired: dict[str, Any] | None = None, state: dict | None = None) -> dict:
    return {"model": "m", "scheme": scheme, "device": "local", "status": "ok", "latency_ms": {"median": median},
            "size_bytes": 10, "verdicts": [], **({"latency_vs_float": paired} if paired else {}),
            **({"device_state": state} if state else {})}


def test_rows_and_verdicts_prefer_the_paired_ratio_and_say_when_it_cannot_tell() -> None:
    base = record("float32", 2.0, state={"before": {}, "busy": True})
    ns = record("a", 3.0, {"float_sha256": "x", "float_path": "p", "ratio": 0.98, "ci": [0.95, 1.02], "n_pairs": 6})
    fast = record("b", 3.0, {"float_sha256": "x", "float_path": "p", "ratio": 0.5, "ci": [0.45, 0.55], "n_pairs": 6})
    rows = {row.scheme: row for row in build_rows([base, ns, fast])}
    assert rows["float32"].thermal == "busy"
    assert rows["a"].latency_ratio == 0.98 and rows["a"].latency_ratio_text == "≈1 (n.s.) [0.95–1.02]"
    assert rows["b"].latency_ratio_text == "0.50 [0.45–0.55]"
    unpaired = record("c", 3.0)
    assert build_rows([base, unpaired])[1].latency_ratio_text == "1.50"
    (verdict,) = check(fast, base, {"latency_ratio": Bound(max=1.1)})
    assert verdict["observed"] == 0.5 and verdict["pass"] and "paired ratio over 6 pairs" in verdict["note"]
    (verdict,) = check(unpaired, base, {"latency_ratio": Bound(max=1.1)})
    assert verdict["observed"] == 1.5 and not verdict["pass"] and "measured apart" in verdict["note"]


def test_a_snapshot_reads_this_host() -> None:
    snap = host_state.snapshot(max(os.sched_getaffinity(0)))
    assert set(snap) >= {"core", "loadavg", "cpus", "runnable_on_core", "core_busy_share"}
    assert snap["runnable_on_core"] is not None and snap["runnable_on_core"] >= 0


def test_the_local_device_waits_for_a_busy_share_only_for_a_cooldown_that_bounds_it(tmp_path: Path) -> None:
    device = load_device("local", tmp_path)
    assert "core_busy_share" not in device.device_state()  # after a cell, or no cool-down: `during` decides
    assert "core_busy_share" not in device.device_state(CooldownSpec(max_runnable=0))
    assert "core_busy_share" in device.device_state(CooldownSpec(max_other_load=0.5))


class PairDevice(Device):
    """Times every model at 1 ms, its core half busy with other work; `fail` raises as a lost device would."""

    def __init__(self, fail: bool = False) -> None:
        self.fail, self.models = fail, []

    def measure_latency(self, model: Path, settings: LatencySpec) -> dict[str, Any]:
        if self.fail:
            raise HarnessError("latency measurement failed (exit 1): boom")
        self.models.append(model.name)
        return {"samples": [1.0], "host": watch(100, 50)}


def test_float_pairs_alternate_watch_the_core_and_say_why_they_are_missing(tmp_path: Path) -> None:
    float_model, cell_model = tmp_path / "float.tflite", tmp_path / "cell.tflite"
    float_model.write_bytes(b"float"), cell_model.write_bytes(b"cell")
    reference = {"float_sha256": file_digest(float_model), "float_path": str(float_model)}
    device = PairDevice()
    paired = time_vs_float(device, reference, cell_model, LatencySpec(float_pairs=4))  # type: ignore[arg-type]
    assert device.models == ["float.tflite", "cell.tflite", "cell.tflite", "float.tflite"] * 2
    assert paired["ratio"] == 1.0 and paired["n_pairs"] == 4 and paired["during"]["measurements"] == 8
    assert "other tasks took 50%" in str(paired["busy_reason"])
    failed = time_vs_float(PairDevice(fail=True), reference, cell_model, LatencySpec())  # type: ignore[arg-type]
    assert failed["unavailable"].startswith("timing the float model beside it failed: latency measurement failed")
    float_model.write_bytes(b"changed")
    gone = time_vs_float(device, reference, cell_model, LatencySpec())  # type: ignore[arg-type]
    assert "gone or changed" in gone["unavailable"] and "pairs" not in gone
