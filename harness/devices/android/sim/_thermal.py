"""The simulated `dumpsys thermalservice`: Android's thermal HAL view, as the platform prints it.

The text follows ThermalManagerService's dump (Android 10+): `Thermal Status: N` (the platform's
throttling level, 0 none … 6 shutdown), then the cached and current HAL temperatures as
`Temperature{mValue=…, mType=…, mName=…, mStatus=…}` lines. Temperatures are read from the
sandbox's thermal zones, so `set_temperature` shows up here too.
"""

from __future__ import annotations

import re

from harness.devices.android.sim.fs import Sandbox

THERMAL = "/sys/class/thermal"
# android.os.Temperature's TYPE_* constants for the zone names the simulator uses.
_TYPES = (("cpu", 0), ("gpu", 1), ("battery", 2), ("skin", 3), ("usb", 4))


def _zone_temps(fs: Sandbox) -> list[tuple[str, float]]:
    base = fs.host_path(THERMAL)
    names = sorted((p.name for p in base.iterdir() if re.fullmatch(r"thermal_zone\d+", p.name)),
                   key=lambda n: int(n.removeprefix("thermal_zone"))) if base.is_dir() else []
    temps = []
    for name in names:
        try:
            kind = (base / name / "type").read_text().strip()
            temps.append((kind, int((base / name / "temp").read_text().strip()) / 1000))
        except (OSError, ValueError):
            continue
    return temps


def _type_of(name: str) -> int:
    return next((code for prefix, code in _TYPES if name.lower().startswith(prefix)), -1)


def _temperature_lines(temps: list[tuple[str, float]], status: int) -> list[str]:
    return [f"\tTemperature{{mValue={celsius:g}, mType={_type_of(name)}, mName={name}, mStatus={status}}}"
            for name, celsius in temps]


def thermalservice_dump(fs: Sandbox, status: int) -> str:
    """What `dumpsys thermalservice` prints on a phone whose platform thermal status is `status`."""
    temps = _zone_temps(fs)
    lines = ["IsStatusOverride: false", "ThermalEventListeners:", "\tcallbacks: 1", "\tkilled: false",
             "\tbroadcasts count: -1", "ThermalStatusListeners:", "\tcallbacks: 1", "\tkilled: false",
             "\tbroadcasts count: -1", f"Thermal Status: {status}", "Cached temperatures:",
             *_temperature_lines(temps, status), "HAL Ready: true", "HAL connection:",
             "\tThermalHAL AIDL 1  connected: yes", "Current temperatures from HAL:",
             *_temperature_lines(temps, status), "Current cooling devices from HAL:"]
    return "\n".join(lines) + "\n"
