"""A phone's thermal and frequency state, read before and after each cell: where a slow cell was
measured hot or throttled, the record says so.

Read from sysfs with plain `ls` and `cat` (no globbing, works on every Android build):
`/sys/class/thermal/thermal_zone*/{type,temp}` (millidegrees), the battery's
`/sys/class/power_supply/battery/temp` (tenths of a degree) and each core's
`cpufreq/scaling_cur_freq` and `scaling_governor`; and `dumpsys thermalservice` (Android 10+): the
platform's thermal status (0 none, 1 light, 2 moderate … 6 shutdown: how hard the platform is
throttling) and the thermal HAL's current temperatures, which a shell can read on phones whose
SELinux policy hides the sysfs zones. Anything unreadable is left out.
"""

from __future__ import annotations

import re
from typing import Any, Protocol, cast

from harness.devices.android.connection import quote_args
from harness.record import DeviceReading

THERMAL = "/sys/class/thermal"
BATTERY_TEMP = "/sys/class/power_supply/battery/temp"
CPU = "/sys/devices/system/cpu"
# android.os.PowerManager's THERMAL_STATUS_* names, by value.
THERMAL_STATUS = ("none", "light", "moderate", "severe", "critical", "emergency", "shutdown")
_STATUS = re.compile(r"^Thermal Status:\s*(-?\d+)\s*$", re.MULTILINE)
_HAL_TEMP = re.compile(r"Temperature\{mValue=(-?[\d.]+(?:[eE]-?\d+)?), mType=(-?\d+), mName=([^,}]+)")


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


def parse_thermalservice(text: str) -> dict[str, Any]:
    """The thermal status and the HAL's current temperatures (°C, by sensor name) of a
    `dumpsys thermalservice` dump; empty when the dump has neither (no service, an old phone)."""
    found: dict[str, Any] = {}
    status = _STATUS.search(text)
    if status:
        value = int(status.group(1))
        found["thermal_status"] = value
        found["thermal_status_name"] = THERMAL_STATUS[value] if 0 <= value < len(THERMAL_STATUS) else "unknown"
    current = text.split("Current temperatures from HAL:", 1)
    if len(current) == 2:
        section = current[1].split("Current cooling devices", 1)[0]
        found["hal_temps_c"] = {m.group(3).strip(): float(m.group(1)) for m in _HAL_TEMP.finditer(section)}
    return found


def _thermalservice(transport: _Shell, timeout: float) -> dict[str, Any]:
    result = transport.shell(quote_args(["dumpsys", "thermalservice"]), timeout)
    return parse_thermalservice(result.stdout) if result.exit_code == 0 else {}


def read_state(transport: _Shell, cpus: tuple[int, ...], timeout: float) -> DeviceReading:
    """Thermal zones (°C), the platform thermal status and HAL temperatures, the hottest of all
    temperatures read, battery temperature (°C) and each core's frequency."""
    zones = _zones(transport, timeout)
    service = _thermalservice(transport, timeout)
    battery = _number(_read(transport, BATTERY_TEMP, timeout))
    temps = [*zones.values(), *service.get("hal_temps_c", {}).values()]
    return cast(DeviceReading, {"thermal_c": zones, **service, "max_temp_c": max(temps, default=None),  # service:
                                "battery_temp_c": battery / 10 if battery is not None else None,  # thermal_status,
                                "cores": _cores(transport, cpus, timeout)})  # its name, hal_temps_c
