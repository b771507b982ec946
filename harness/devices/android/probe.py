"""What an Android device is: getprop facts, CPUs with their max frequency, and the big core.

Everything is read with two shell commands (props and CPU list, then every cpufreq file),
each file separated by a marker line, so a missing file costs nothing extra. Frequencies
come from `cpuinfo_max_freq`, else `scaling_max_freq`; with neither, the highest-numbered
CPU is used — and the reason says so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

from harness.devices.android.transport import Transport, quote_args
from harness.devices.cpus import CoreChoice, choose_fastest
from harness.errors import HarnessError

CPU_SYSFS = "/sys/devices/system/cpu"
FREQ_FILES = ("cpuinfo_max_freq", "scaling_max_freq")
PROPS = {
    "serial": "ro.serialno", "model": "ro.product.model", "manufacturer": "ro.product.manufacturer",
    "abi": "ro.product.cpu.abi", "android": "ro.build.version.release", "sdk": "ro.build.version.sdk",
}
_MARK = "@@quantbench@@"


@dataclass(frozen=True)
class CoreSelection:
    """The CPUs benchmark_model is pinned to, as `taskset` takes them."""

    cpus: tuple[int, ...]
    reason: str

    @property
    def mask(self) -> str:
        """Hex affinity mask without prefix ("80"), the form toybox and util-linux taskset take."""
        return f"{sum(1 << cpu for cpu in self.cpus):x}"


@dataclass(frozen=True)
class DeviceFacts:
    props: dict[str, str]
    cpus: tuple[int, ...]
    max_freq_khz: dict[int, int]
    freq_source: dict[int, str]  # cpu -> which cpufreq file gave its frequency
    selection: CoreSelection
    notes: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.props,
            "cores": [{"cpu": cpu, "max_freq_khz": self.max_freq_khz.get(cpu), "source": self.freq_source.get(cpu)}
                      for cpu in self.cpus],
            "clusters": clusters(self.cpus, self.max_freq_khz),
            "core": self.selection.cpus[0] if len(self.selection.cpus) == 1 else list(self.selection.cpus),
            "mask": f"0x{self.selection.mask}",
            "core_reason": self.selection.reason,
        }


def _sections(text: str, count: int) -> list[str]:
    parts = [part.strip() for part in text.split(_MARK)]
    return (parts + [""] * count)[:count]


def _joined(commands: list[list[str]], redirect: bool) -> str:
    """One command line running each command in turn, a marker line between their outputs."""
    suffix = " 2>&1" if redirect else ""
    return f" ; echo {_MARK} ; ".join(quote_args(argv) + suffix for argv in commands)


def parse_cpu_list(text: str) -> list[int]:
    """Kernel cpulist syntax ("0-3,6,8-9") as CPU numbers; [] if it does not parse."""
    cpus: list[int] = []
    for part in text.strip().split(","):
        match = re.fullmatch(r"\s*(\d+)(?:-(\d+))?\s*", part)
        if not match:
            return []
        low, high = int(match[1]), int(match[2] or match[1])
        cpus.extend(range(low, high + 1))
    return sorted(set(cpus))


def clusters(cpus: tuple[int, ...] | list[int], freqs: dict[int, int]) -> str:
    """A short topology string like "4x1.90GHz+4x2.45GHz" (CPUs in order, runs of equal speed)."""
    groups: list[list[Any]] = []
    for cpu in cpus:
        freq = freqs.get(cpu)
        if groups and groups[-1][1] == freq:
            groups[-1][0] += 1
        else:
            groups.append([1, freq])
    return "+".join(f"{n}x{f / 1e6:.2f}GHz" if f else f"{n}x?" for n, f in groups)


def read_props(transport: Transport, timeout: float) -> tuple[dict[str, str], list[int]]:
    """getprop values and the CPU numbers (present, else possible) in one command."""
    commands = [["getprop", prop] for prop in PROPS.values()]
    commands += [["cat", f"{CPU_SYSFS}/present"], ["cat", f"{CPU_SYSFS}/possible"]]
    result = transport.shell(_joined(commands, redirect=True), timeout)
    sections = _sections(result.stdout, len(commands))
    props = dict(zip(PROPS, sections[:len(PROPS)]))
    cpus = parse_cpu_list(sections[-2]) or parse_cpu_list(sections[-1])
    if not cpus:
        listing = transport.shell(quote_args(["ls", CPU_SYSFS]), timeout).stdout
        cpus = sorted(int(m) for m in re.findall(r"^cpu(\d+)$", listing, re.MULTILINE))
    if not cpus:
        raise HarnessError(f"cannot read the CPU list of the device ({CPU_SYSFS}/present, possible)")
    return props, cpus


def read_max_freqs(transport: Transport, cpus: list[int], timeout: float) -> tuple[dict[int, int], dict[int, str]]:
    """Max frequency (kHz) per CPU from cpuinfo_max_freq, else scaling_max_freq; unreadable ones left out."""
    commands = [["cat", f"{CPU_SYSFS}/cpu{cpu}/cpufreq/{name}"] for cpu in cpus for name in FREQ_FILES]
    sections = _sections(transport.shell(_joined(commands, redirect=True), timeout).stdout, len(commands))
    freqs: dict[int, int] = {}
    sources: dict[int, str] = {}
    for index, cpu in enumerate(cpus):
        for offset, name in enumerate(FREQ_FILES):
            text = sections[index * len(FREQ_FILES) + offset]
            if text.isdigit() and int(text) > 0:
                freqs[cpu], sources[cpu] = int(text), name
                break
    return freqs, sources


def select_cores(setting: Literal["auto"] | int | list[int], cpus: list[int], freqs: dict[int, int],
                 sources: dict[int, str]) -> tuple[CoreSelection, tuple[str, ...]]:
    """`auto`: one core of the fastest cluster (choose_fastest); else the CPUs the profile names."""
    notes: list[str] = []
    if setting != "auto":
        wanted = [setting] if isinstance(setting, int) else list(setting)
        missing = sorted(set(wanted) - set(cpus))
        if missing:
            raise HarnessError(f"core: CPU(s) {missing} do not exist on the device (CPUs: {cpus})")
        return CoreSelection(tuple(sorted(set(wanted))), "set in the device profile"), ()
    choice: CoreChoice = choose_fastest(cpus, freqs)
    unreadable = [cpu for cpu in cpus if cpu not in freqs]
    scaling = [cpu for cpu, source in sources.items() if source == "scaling_max_freq"]
    if scaling:
        notes.append(f"cpuinfo_max_freq missing on CPUs {scaling}: used scaling_max_freq")
    if unreadable and len(unreadable) < len(cpus):
        notes.append(f"no cpufreq on CPUs {unreadable}: left out")
    reason = choice.reason
    if scaling and len(scaling) == len(freqs):
        reason = reason.replace("cpuinfo_max_freq", "scaling_max_freq")
    return CoreSelection((choice.core,), "; ".join([reason, *notes])), tuple(notes)


def probe(transport: Transport, core: Literal["auto"] | int | list[int], timeout: float) -> DeviceFacts:
    """Read the device's facts and choose the core(s) to pin to."""
    props, cpus = read_props(transport, timeout)
    freqs, sources = read_max_freqs(transport, cpus, timeout)
    selection, notes = select_cores(core, cpus, freqs, sources)
    return DeviceFacts(props, tuple(cpus), freqs, sources, selection, notes)
