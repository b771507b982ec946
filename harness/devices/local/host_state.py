"""How busy this host is around and during a local latency measurement (Linux /proc and /sys).

Snapshots before and after a cell: load average, other runnable tasks on the pinned core (state R
and `processor` = the core in /proc/<pid>/task/<tid>/stat), the core's busy share over a short
window, and its cpufreq frequency and governor where readable. During a measurement (`CoreWatch`):
the pinned core's busy jiffies (/proc/stat) minus the measuring process's own utime + stime over
the same interval is other work on that core; the core's steal jiffies are the hypervisor's.
Anything unreadable (another OS, a locked-down /proc) is None, never a guess.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from harness.record import DeviceReading, HostDuring

PROC = Path("/proc")
SYSFS_CPU = Path("/sys/devices/system/cpu")
WINDOW_S = 0.2  # a snapshot's busy-share window
MIN_WINDOW_JIFFIES = 10  # below this many jiffies of the core a share is too coarse to tell
_BUSY_FIELDS = (0, 1, 2, 5, 6)  # user nice system irq softirq (guest time is inside user)
_STEAL = 7


@dataclass(frozen=True)
class CoreTimes:
    """One CPU's line of /proc/stat, in jiffies (USER_HZ)."""

    busy: int
    total: int
    steal: int

    def minus(self, earlier: CoreTimes) -> CoreTimes:
        return CoreTimes(self.busy - earlier.busy, self.total - earlier.total, self.steal - earlier.steal)


def core_times(core: int, proc: Path = PROC) -> CoreTimes | None:
    """The core's cumulative jiffies (None: /proc/stat unreadable or no such CPU)."""
    try:
        lines = (proc / "stat").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        name, *fields = line.split()
        if name == f"cpu{core}":
            values = [int(v) for v in fields[:8]] + [0] * max(0, 8 - len(fields))
            return CoreTimes(sum(values[i] for i in _BUSY_FIELDS), sum(values[:8]), values[_STEAL])
    return None


def _stat_fields(path: Path) -> list[str] | None:
    """The fields after `comm` of a /proc stat file (comm may hold spaces and parentheses)."""
    try:
        text = path.read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[-1].split()


def process_ticks(pid: int, proc: Path = PROC) -> int | None:
    """utime + stime of a process, all its threads (clock ticks; None once it is gone)."""
    fields = _stat_fields(proc / str(pid) / "stat")
    return int(fields[11]) + int(fields[12]) if fields and len(fields) > 12 else None


def runnable_on_core(core: int, exclude: frozenset[int], proc: Path = PROC) -> int | None:
    """Tasks (threads) of other processes running or waiting to run on `core` right now."""
    try:
        pids = [int(entry.name) for entry in proc.iterdir() if entry.name.isdigit()]
    except OSError:
        return None
    count = 0
    for pid in pids:
        if pid not in exclude:
            count += sum(1 for fields in _task_fields(proc / str(pid)) if fields[0] == "R" and fields[36] == str(core))
    return count


def _task_fields(process: Path) -> list[list[str]]:
    try:
        tasks = list((process / "task").iterdir())
    except OSError:
        return []
    return [fields for task in tasks if (fields := _stat_fields(task / "stat")) and len(fields) > 36]


def load_average(proc: Path = PROC) -> list[float] | None:
    try:
        return [float(v) for v in (proc / "loadavg").read_text().split()[:3]]
    except (OSError, ValueError):
        return None


def cpufreq(core: int, sysfs: Path = SYSFS_CPU) -> dict[str, Any]:
    """The core's current and maximum frequency (kHz) and governor, those that are readable."""
    found: dict[str, Any] = {}
    for key, name in (("freq_khz", "scaling_cur_freq"), ("max_freq_khz", "scaling_max_freq"),
                      ("governor", "scaling_governor")):
        try:
            text = (sysfs / f"cpu{core}" / "cpufreq" / name).read_text().strip()
        except OSError:
            continue
        found[key] = int(text) if text.isdigit() else text
    return found


def busy_share(core: int, window_s: float = WINDOW_S) -> float | None:
    """The share of `core` busy (any task) over `window_s` (None: unreadable or too short to tell)."""
    first = core_times(core)
    time.sleep(window_s)
    last = core_times(core)
    if first is None or last is None:
        return None
    delta = last.minus(first)
    return delta.busy / delta.total if delta.total >= MIN_WINDOW_JIFFIES // 2 else None


def snapshot(core: int, busy_window: bool = True) -> DeviceReading:
    """The host around the pinned core now (this process's own tasks left out of `runnable_on_core`);
    with `busy_window`, the core's busy share over the next WINDOW_S."""
    reading: DeviceReading = {"core": core, "loadavg": load_average(), "cpus": os.cpu_count(),
                              "runnable_on_core": runnable_on_core(core, frozenset({os.getpid()}))}
    if busy_window:
        reading["core_busy_share"] = busy_share(core)
    return cast(DeviceReading, {**reading, **cpufreq(core)})  # cpufreq: freq_khz, max_freq_khz, governor


class CoreWatch:
    """Other work on `core` while process `pid` (pinned to it) runs: sampled every `every_s` from
    the moment the process is pinned until it exits; `result()` sums the first to the last sample."""

    def __init__(self, core: int, pid: int, every_s: float = 0.1) -> None:
        self.core, self.pid, self.every_s = core, pid, every_s
        self._first: tuple[CoreTimes, int] | None = None
        self._last: tuple[CoreTimes, int] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"core-watch-{pid}", daemon=True)

    def __enter__(self) -> CoreWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._stop.is_set():
            if self._pinned():
                sample = self._sample()
                if sample is not None:
                    self._first = self._first or sample
                    self._last = sample
            self._stop.wait(self.every_s)

    def _pinned(self) -> bool:
        try:
            return os.sched_getaffinity(self.pid) == {self.core}
        except OSError:
            return False

    def _sample(self) -> tuple[CoreTimes, int] | None:
        times, ticks = core_times(self.core), process_ticks(self.pid)
        return (times, ticks) if times is not None and ticks is not None else None

    def result(self) -> dict[str, Any]:
        """{core, jiffies, other_jiffies, steal_jiffies, own_jiffies}: the core's time over the watched
        interval and how much of it went to other tasks, the hypervisor and the process itself."""
        if self._first is None or self._last is None:
            return {"core": self.core, "jiffies": 0, "other_jiffies": 0, "steal_jiffies": 0, "own_jiffies": 0}
        delta, own = self._last[0].minus(self._first[0]), self._last[1] - self._first[1]
        return {"core": self.core, "jiffies": delta.total, "other_jiffies": max(0, delta.busy - own),
                "steal_jiffies": delta.steal, "own_jiffies": own}


def during(watches: list[dict[str, Any]]) -> HostDuring:
    """Several measurements' watches summed: `other_share` and `steal_share` of the pinned core
    (None when the watched time is too short to tell), and the seconds watched."""
    total = sum(w["jiffies"] for w in watches)
    hz = os.sysconf("SC_CLK_TCK")
    enough = total >= MIN_WINDOW_JIFFIES
    return {"measurements": len(watches), "watched_s": round(total / hz, 3),
            "other_share": round(sum(w["other_jiffies"] for w in watches) / total, 4) if enough else None,
            "steal_share": round(sum(w["steal_jiffies"] for w in watches) / total, 4) if enough else None}
