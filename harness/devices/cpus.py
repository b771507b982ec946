"""CPU topology: find the fastest core from cpufreq, as `taskset` and the docs' "single big core" mean."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class CoreChoice:
    core: int
    reason: str

    @property
    def mask(self) -> str:
        """The core as a hex affinity mask, the form `taskset` takes."""
        return f"{1 << self.core:x}"


def read_max_freqs(sysfs_cpu: Path = Path("/sys/devices/system/cpu"), cpus: list[int] | None = None) -> dict[int, int]:
    """Max frequency (kHz) per CPU from cpufreq; CPUs without a readable value are left out."""
    cpus = cpus if cpus is not None else sorted(os.sched_getaffinity(0))
    freqs: dict[int, int] = {}
    for cpu in cpus:
        for name in ("cpuinfo_max_freq", "scaling_max_freq"):
            try:
                freqs[cpu] = int((sysfs_cpu / f"cpu{cpu}" / "cpufreq" / name).read_text().strip())
                break
            except (OSError, ValueError):
                continue
    return freqs


def choose_fastest(cpus: list[int], max_freqs: dict[int, int]) -> CoreChoice:
    """The highest-numbered CPU of the fastest cluster (big cores are usually numbered last)."""
    if not cpus:
        raise ValueError("no CPUs to choose from")
    known = {cpu: freq for cpu, freq in max_freqs.items() if cpu in cpus}
    if not known:
        return CoreChoice(max(cpus), f"cpufreq not readable; using the highest-numbered CPU {max(cpus)}")
    top = max(known.values())
    cluster = sorted(cpu for cpu, freq in known.items() if freq == top)
    return CoreChoice(cluster[-1], f"fastest cluster by cpuinfo_max_freq ({top / 1e6:.2f} GHz): CPUs {cluster}")


def pick_local_core(setting: str | int) -> CoreChoice:
    """Resolve a profile's `core` setting (`auto` or a CPU number) on this machine."""
    allowed = sorted(os.sched_getaffinity(0))
    if setting == "auto":
        return choose_fastest(allowed, read_max_freqs(cpus=allowed))
    core = int(setting)
    if core not in allowed:
        raise ValueError(f"CPU {core} is not available to this process (allowed: {allowed})")
    return CoreChoice(core, "set in the device profile")


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo (or the machine type)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware", "processor\t: arm")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return os.uname().machine
