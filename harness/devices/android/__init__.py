"""Android phones over adb: the device (`device`: push, big core, `benchmark_model`, parse), its
probe (getprop, CPUs, the big core), its state (temperatures, frequencies), the host transports
(`transport`: the adb-shell library or Debian's adb client; `connection`: opening and tracing),
the ADB wire protocol (`wire`), the `benchmark_model` log parser (`benchmark_log`), and in `sim`
an ADB device simulator for tests, imported only by code that asks for it."""

from harness.devices.android.device import Adb, AndroidDevice

__all__ = ["Adb", "AndroidDevice"]
