"""The ADB simulator's file system: device paths mapped into a host sandbox directory.

Every device path is normalised against `/` (so `..` stops at the device root) and then
resolved on the host; a result outside the sandbox (through a symlink) is refused with
EACCES. `/sys/devices/system/cpu` is synthesised from a CPU spec such as
"4x1.9GHz+4x2.45GHz".
"""

from __future__ import annotations

import errno
import os
import posixpath
import re
import shutil
from pathlib import Path
from typing import Any

DEFAULT_DIRS = ("/data/local/tmp", "/sdcard", "/system/bin", "/vendor/bin")
CPU_SYSFS = "/sys/devices/system/cpu"
_CPU_GROUP = re.compile(r"^\s*(\d+)\s*x\s*(\d+(?:\.\d+)?)\s*(GHz|MHz)\s*$", re.IGNORECASE)


class SandboxEscape(PermissionError):
    """A device path resolved to a host path outside the sandbox."""

    def __init__(self, device_path: str) -> None:
        super().__init__(errno.EACCES, os.strerror(errno.EACCES), device_path)


class Sandbox:
    """Maps device paths to host paths under `root`, never outside it."""

    def __init__(self, root: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.root = Path(os.path.realpath(root))

    def normalize(self, device_path: str, cwd: str = "/") -> str:
        """The absolute, `..`-free device path for `device_path` seen from `cwd`."""
        joined = posixpath.normpath(posixpath.join(cwd, device_path))
        return "/" + joined.lstrip("/")

    def host_path(self, device_path: str, cwd: str = "/") -> Path:
        """The host path for a device path; raises SandboxEscape if symlinks lead outside."""
        device = self.normalize(device_path, cwd)
        real = Path(os.path.realpath(self.root / device.lstrip("/")))
        if real != self.root and self.root not in real.parents:
            raise SandboxEscape(device_path)
        return real

    def make_dirs(self, device_paths: tuple[str, ...] = DEFAULT_DIRS) -> None:
        """Create the given device directories (and parents) inside the sandbox."""
        for path in device_paths:
            self.host_path(path).mkdir(parents=True, exist_ok=True)

    def write_text(self, device_path: str, text: str) -> None:
        """Create or replace a small text file, creating its parent directories."""
        host = self.host_path(device_path)
        host.parent.mkdir(parents=True, exist_ok=True)
        host.write_text(text)


def parse_cpu_spec(spec: str) -> list[int]:
    """Per-CPU maximum frequencies in kHz for a spec like "4x1.9GHz+4x2.45GHz" (cpu0 first)."""
    freqs: list[int] = []
    for group in spec.split("+"):
        match = _CPU_GROUP.match(group)
        if not match:
            raise ValueError(f"bad CPU group {group!r} in {spec!r}; expected e.g. 4x1.9GHz")
        count, value, unit = int(match[1]), float(match[2]), match[3].lower()
        if count < 1:
            raise ValueError(f"CPU group {group!r} has no cores")
        khz = round(value * (1_000_000 if unit == "ghz" else 1_000))
        freqs.extend([khz] * count)
    return freqs


def cpu_range(cpus: list[int]) -> str:
    """Kernel cpulist syntax for contiguous CPU ids: "0-7" (or "0" for one CPU)."""
    return str(cpus[0]) if len(cpus) == 1 else f"{cpus[0]}-{cpus[-1]}"


def write_cpu_sysfs(fs: Sandbox, freqs_khz: list[int], with_cpufreq: bool) -> None:
    """Write possible/present/online and, optionally, cpuN/cpufreq/cpuinfo_max_freq files."""
    ids = list(range(len(freqs_khz)))
    for name in ("possible", "present", "online"):
        fs.write_text(f"{CPU_SYSFS}/{name}", cpu_range(ids) + "\n")
    for cpu, khz in enumerate(freqs_khz):
        cpufreq = f"{CPU_SYSFS}/cpu{cpu}/cpufreq"
        if with_cpufreq:
            fs.write_text(f"{cpufreq}/cpuinfo_max_freq", f"{khz}\n")
        else:  # a reused sandbox must not keep files from an earlier run
            fs.host_path(f"{CPU_SYSFS}/cpu{cpu}").mkdir(parents=True, exist_ok=True)
            shutil.rmtree(fs.host_path(cpufreq), ignore_errors=True)


def write_thermal_sysfs(fs: Sandbox, device: Any, freqs_khz: list[int], with_cpufreq: bool) -> None:
    """Thermal zones (millidegrees), the battery temperature (tenths of a degree) and each core's
    current frequency and governor, as a phone's sysfs has them."""
    for index, (kind, celsius) in enumerate(device.thermal_c.items()):
        fs.write_text(f"/sys/class/thermal/thermal_zone{index}/type", f"{kind}\n")
        set_temperature(fs, index, celsius)
    if device.battery_temp_c is not None:
        fs.write_text("/sys/class/power_supply/battery/temp", f"{round(device.battery_temp_c * 10)}\n")
    if with_cpufreq:
        for cpu, khz in enumerate(freqs_khz):
            fs.write_text(f"{CPU_SYSFS}/cpu{cpu}/cpufreq/scaling_cur_freq", f"{khz}\n")
            fs.write_text(f"{CPU_SYSFS}/cpu{cpu}/cpufreq/scaling_governor", f"{device.governor}\n")


def set_temperature(fs: Sandbox, zone: int, celsius: float) -> None:
    """Change a simulated thermal zone's temperature (°C)."""
    fs.write_text(f"/sys/class/thermal/thermal_zone{zone}/temp", f"{round(celsius * 1000)}\n")
