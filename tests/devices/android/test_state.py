"""Reading a phone's thermal state from `dumpsys thermalservice` text as Android prints it."""

from __future__ import annotations

from harness.devices.android.state import parse_thermalservice

DUMP = """IsStatusOverride: false
ThermalEventListeners:
\tcallbacks: 2
\tkilled: false
\tbroadcasts count: -1
Thermal Status: 1
Cached temperatures:
\tTemperature{mValue=0.0, mType=2, mName=SUBBAT, mStatus=0}
\tTemperature{mValue=38.1, mType=0, mName=AP, mStatus=0}
HAL Ready: true
HAL connection:
\tThermalHAL AIDL 1  connected: yes
Current temperatures from HAL:
\tTemperature{mValue=44.8, mType=0, mName=AP, mStatus=1}
\tTemperature{mValue=32.2, mType=2, mName=BAT, mStatus=0}
\tTemperature{mValue=38.000004, mType=3, mName=SKIN, mStatus=1}
Current cooling devices from HAL:
\tCoolingDevice{mValue=0, mType=2, mName=cpu0}
"""


def test_status_and_the_hals_current_temperatures_not_the_cached_ones() -> None:
    state = parse_thermalservice(DUMP)
    assert state["thermal_status"] == 1 and state["thermal_status_name"] == "light"
    assert state["hal_temps_c"] == {"AP": 44.8, "BAT": 32.2, "SKIN": 38.000004}


def test_a_phone_without_the_service_gives_nothing() -> None:
    assert parse_thermalservice("Can't find service: thermalservice\n") == {}


def test_an_unknown_status_value_is_named_unknown() -> None:
    assert parse_thermalservice("Thermal Status: 9\n") == {"thermal_status": 9, "thermal_status_name": "unknown"}
