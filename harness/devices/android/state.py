"""A phone's thermal and frequency state, read before and after each cell: where a slow cell was
measured hot or throttled, the record says so.

Read from sysfs with plain `ls` and `cat` (no globbing, works on every Android build):
`/sys/class/thermal/thermal_zone*/{type,temp}` (millidegrees), the battery's
`/sys/class/power_supply/battery/temp` (tenths of a degree) and each core's
`cpufreq/scaling_cur_freq` and `scaling_governor`. Anything unreadable is left out.
"""

from __future__ import annotations

import re
from typing import Any, Protocol

from harness.devices.android.connection import quote_args

THERMAL = "/sys/class/thermal"
BATTERY_TEMP = "/sys/class/power_supply/battery/temp"
CPU = "/sys/devices/system/cpu"


class _Shell(Protocol):
    def shell(self, cmd: str, timeout: float) -> Any: ...


def _read(transport: _Shell, path: str, timeout: float) -> str | None:
    result = transport.shell(quote_args(["cat", path]), timeout)
    return result.stdout.strip() if result.exit_code == 0 and result.stdout.strip() else None


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


def _zones(transport: _Shell, timeout: float) -> dict[str, float]:
    listing = transport.shell(quote_args(["ls", THERMAL]), timeout)
    names = sorted(n for n in listing.stdout.split() if re.fullmatch(r"thermal_zone\d+", n)) if listing.exit_code == 0 else []
    zones = {}
    for name in names:
        millidegrees = _number(_read(transport, f"{THERMAL}/{name}/temp", timeout))
        if millidegrees is not None:
            label = _read(transport, f"{THERMAL}/{name}/type", timeout) or name
            zones[label] = millidegrees / 1000 if abs(millidegrees) > 200 else millidegrees  # some report °C
    return zones


def _cores(transport: _Shell, cpus: tuple[int, ...], timeout: float) -> list[dict[str, Any]]:
    cores = []
    for cpu in cpus:
        base = f"{CPU}/cpu{cpu}/cpufreq"
        cores.append({"cpu": cpu, "cur_freq_khz": _number(_read(transport, f"{base}/scaling_cur_freq", timeout)),
                      "governor": _read(transport, f"{base}/scaling_governor", timeout)})
    return cores


def read_state(transport: _Shell, cpus: tuple[int, ...], timeout: float) -> dict[str, Any]:
    """Thermal zones (°C), the hottest of them, battery temperature (°C) and each core's frequency."""
    zones = _zones(transport, timeout)
    battery = _number(_read(transport, BATTERY_TEMP, timeout))
    return {"thermal_c": zones, "max_temp_c": max(zones.values(), default=None),
            "battery_temp_c": battery / 10 if battery is not None else None, "cores": _cores(transport, cpus, timeout)}
