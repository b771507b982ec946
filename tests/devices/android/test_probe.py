"""Device facts and the big-core choice, read from a simulated phone's getprop and sysfs."""

from __future__ import annotations

import pytest

from harness.devices.android.probe import clusters, parse_cpu_list, probe, select_cores
from harness.devices.android.sim.simulator import DeviceSpec, Faults
from harness.devices.android.transport import AdbShellTransport
from harness.errors import HarnessError
from tests.devices.android.conftest import SPEC_A, SPEC_B, StartSim


def test_parse_cpu_list() -> None:
    assert parse_cpu_list("0-7\n") == list(range(8))
    assert parse_cpu_list("0-3,6,8-9") == [0, 1, 2, 3, 6, 8, 9]
    assert parse_cpu_list("cat: /sys/x: No such file or directory") == []


def test_select_cores_auto_explicit_and_fallbacks() -> None:
    freqs = {0: 1_800_000, 1: 1_800_000, 2: 2_800_000, 3: 2_800_000}
    source = dict.fromkeys(freqs, "cpuinfo_max_freq")
    selection, _ = select_cores("auto", [0, 1, 2, 3], freqs, source)
    assert (selection.cpus, selection.mask) == ((3,), "8")
    assert "fastest cluster by cpuinfo_max_freq (2.80 GHz): CPUs [2, 3]" in selection.reason
    assert select_cores([4, 5], list(range(8)), {}, {})[0].mask == "30"
    assert select_cores(6, list(range(8)), {}, {})[0].reason == "set in the device profile"
    with pytest.raises(HarnessError, match=r"CPU\(s\) \[9\] do not exist"):
        select_cores([1, 9], list(range(8)), {}, {})
    # scaling_max_freq only: said so
    scaling, _ = select_cores("auto", [0, 1], {0: 1, 1: 2}, {0: "scaling_max_freq", 1: "scaling_max_freq"})
    assert scaling.cpus == (1,) and "scaling_max_freq" in scaling.reason and "cpuinfo" in scaling.reason
    # no cpufreq at all: the highest-numbered CPU
    blind, _ = select_cores("auto", [0, 1, 2], {}, {})
    assert blind.cpus == (2,) and "cpufreq not readable; using the highest-numbered CPU 2" in blind.reason


def test_clusters_string() -> None:
    assert clusters([0, 1, 2], {0: 1_900_000, 1: 1_900_000, 2: 2_450_000}) == "2x1.90GHz+1x2.45GHz"
    assert clusters([0, 1], {}) == "2x?"


@pytest.mark.parametrize(("spec", "core", "mask"), [(SPEC_A, 7, "80"), (SPEC_B, 1, "2")])
def test_probe_reads_props_and_picks_the_big_core(start_sim: StartSim, spec: DeviceSpec, core: int, mask: str) -> None:
    sim = start_sim("p", spec)
    with AdbShellTransport("127.0.0.1", sim.port, connect_timeout=5) as transport:
        facts = probe(transport, "auto", 10)
    assert facts.props["model"] == spec.model and facts.props["abi"] == "arm64-v8a"
    assert facts.props["android"] == "14" and facts.props["sdk"] == "34"
    assert facts.cpus == tuple(range(8)) and facts.selection.cpus == (core,) and facts.selection.mask == mask
    described = facts.to_dict()
    assert described["mask"] == f"0x{mask}" and described["core"] == core
    assert described["clusters"] == {"sim-a": "4x1.90GHz+4x2.45GHz", "sim-b": "2x2.80GHz+6x1.80GHz"}[spec.serial]


def test_probe_falls_back_to_scaling_max_freq(start_sim: StartSim) -> None:
    sim = start_sim("p", SPEC_A)
    for cpu in range(8):  # this kernel exposes only scaling_max_freq
        folder = f"/sys/devices/system/cpu/cpu{cpu}/cpufreq"
        sim.fs.host_path(f"{folder}/cpuinfo_max_freq").unlink()
        sim.fs.write_text(f"{folder}/scaling_max_freq", "2000000\n" if cpu == 2 else "1000000\n")
    with AdbShellTransport("127.0.0.1", sim.port, connect_timeout=5) as transport:
        facts = probe(transport, "auto", 10)
    assert facts.selection.cpus == (2,)
    assert set(facts.freq_source.values()) == {"scaling_max_freq"}
    assert "scaling_max_freq" in facts.selection.reason


def test_probe_without_cpufreq_uses_the_highest_cpu_and_says_so(start_sim: StartSim) -> None:
    sim = start_sim("p", DeviceSpec(cpus="2x2.8GHz+6x1.8GHz"), Faults(omit_cpufreq=True))
    with AdbShellTransport("127.0.0.1", sim.port, connect_timeout=5) as transport:
        facts = probe(transport, "auto", 10)
    assert facts.selection.cpus == (7,) and facts.max_freq_khz == {}
    assert "cpufreq not readable; using the highest-numbered CPU 7" in facts.selection.reason
