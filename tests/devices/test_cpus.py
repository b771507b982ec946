"""Choosing the single big core from cpufreq, with a fallback when cpufreq is missing."""

from __future__ import annotations

from pathlib import Path

from harness.devices.cpus import choose_fastest, read_max_freqs


def fake_sysfs(root: Path, freqs_khz: list[int | None]) -> Path:
    for cpu, freq in enumerate(freqs_khz):
        folder = root / f"cpu{cpu}" / "cpufreq"
        folder.mkdir(parents=True)
        if freq is not None:
            (folder / "cpuinfo_max_freq").write_text(f"{freq}\n")
    return root


def test_big_little_picks_a_big_core(tmp_path: Path) -> None:
    sysfs = fake_sysfs(tmp_path, [1_900_000] * 4 + [2_450_000] * 4)
    choice = choose_fastest(list(range(8)), read_max_freqs(sysfs, list(range(8))))
    assert choice.core == 7 and choice.mask == "80"
    assert "2.45 GHz" in choice.reason and "[4, 5, 6, 7]" in choice.reason


def test_prime_core_wins(tmp_path: Path) -> None:
    sysfs = fake_sysfs(tmp_path, [1_800_000] * 4 + [2_400_000] * 3 + [2_900_000])
    assert choose_fastest(list(range(8)), read_max_freqs(sysfs, list(range(8)))).core == 7


def test_scaling_max_freq_fallback(tmp_path: Path) -> None:
    sysfs = fake_sysfs(tmp_path, [None, None])
    (sysfs / "cpu0" / "cpufreq" / "scaling_max_freq").write_text("3000000")
    (sysfs / "cpu1" / "cpufreq" / "scaling_max_freq").write_text("2000000")
    assert choose_fastest([0, 1], read_max_freqs(sysfs, [0, 1])).core == 0


def test_no_cpufreq_falls_back_and_says_so(tmp_path: Path) -> None:
    choice = choose_fastest([0, 1, 2], read_max_freqs(fake_sysfs(tmp_path, [None] * 3), [0, 1, 2]))
    assert choice.core == 2 and "cpufreq not readable" in choice.reason
