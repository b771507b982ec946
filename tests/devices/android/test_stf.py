"""STF device leases against the STF API simulator (real HTTP), serving ADB simulators' addresses:
the lease is released on success, on failure (half-way too) and on Ctrl-C."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.cache import ArtifactCache
from harness.devices.android.connection import open_transport
from harness.devices.android.device import AndroidDevice
from harness.devices.android.sim.stf import StfSimulator
from harness.devices.android.stf import StfLease, StfTarget
from harness.errors import HarnessError
from harness.runner import SuiteRunner, plan_cells
from harness.suite import load_suite
from tests.devices.android.conftest import SPEC_A, SPEC_B, StartSim, write_suite

RELEASED = ["DELETE /api/v1/user/devices/{s}/remoteConnect", "DELETE /api/v1/user/devices/{s}"]


@pytest.fixture
def farm(start_sim: StartSim, monkeypatch: pytest.MonkeyPatch):
    a, b = start_sim("a", SPEC_A), start_sim("b", SPEC_B)
    with StfSimulator({"SERIAL-A": (a.serial, "Sim A"), "SERIAL-B": (b.serial, "Sim B")}, token="tok") as stf:
        monkeypatch.setenv("STF_TOKEN", "tok")
        yield stf


def _url(stf: StfSimulator, tail: str) -> str:
    return f"stf+http://127.0.0.1:{stf.port}{tail}"


def _released(stf: StfSimulator, serial: str) -> bool:
    tail = [c for c in stf.calls if c.startswith("DELETE")][-2:]
    return tail == [r.format(s=serial) for r in RELEASED] and not stf.owned and not stf.connected


def test_a_lease_reserves_connects_and_releases(farm: StfSimulator) -> None:
    transport = open_transport(_url(farm, "/SERIAL-A"), "adb-shell", connect_timeout=10)
    try:
        assert farm.owned == {"SERIAL-A"} and farm.connected == {"SERIAL-A"}
        assert transport.shell("getprop ro.product.model", 10).stdout.strip() == "Sim A"
    finally:
        transport.close()
    assert farm.calls[:2] == ["POST /api/v1/user/devices", "POST /api/v1/user/devices/SERIAL-A/remoteConnect"]
    assert _released(farm, "SERIAL-A")


def test_model_match_takes_a_free_phone_of_that_model(farm: StfSimulator) -> None:
    farm.state["SERIAL-A"].owner = "someone-else"
    farm.state["SERIAL-B"].model = "Sim A"
    lease = StfLease.acquire(_url(farm, "?model=sim%20a"))
    try:
        assert lease.serial == "SERIAL-B" and farm.calls[0].startswith("GET /api/v1/devices")
    finally:
        lease.release()
    assert farm.owned == set()
    with pytest.raises(HarnessError, match="no device with model 'Pixel 9' could be reserved"):
        StfLease.acquire(_url(farm, "?model=Pixel 9"))


@pytest.mark.parametrize("where", ["remoteConnect", "adb connect"])
def test_failing_half_way_still_releases(farm: StfSimulator, where: str) -> None:
    if where == "remoteConnect":
        farm.fail["POST remoteConnect"] = (504, "Device is not responding")
    else:
        farm.state["SERIAL-A"].address = "127.0.0.1:1"  # nothing listens: the adb connection fails
    with pytest.raises(HarnessError, match="Device is not responding" if where == "remoteConnect" else "."):
        open_transport(_url(farm, "/SERIAL-A"), "adb-shell", connect_timeout=3)
    assert farm.owned == set() and farm.connected == set()
    assert "DELETE /api/v1/user/devices/SERIAL-A" in farm.calls


def test_bad_connections_token_and_refusals_are_clear(farm: StfSimulator, monkeypatch: pytest.MonkeyPatch) -> None:
    for bad in ("stf://host", "stf://host/a/b", "stf://host/S?model=x"):
        with pytest.raises(HarnessError, match="expected stf://HOST"):
            StfTarget.parse(bad)
    farm.state["SERIAL-A"].owner = "someone-else"
    with pytest.raises(HarnessError, match="HTTP 403: Device is being used or not available"):
        StfLease.acquire(_url(farm, "/SERIAL-A"))
    monkeypatch.setenv("STF_TOKEN", "wrong")
    with pytest.raises(HarnessError, match="HTTP 401"):
        StfLease.acquire(_url(farm, "/SERIAL-B"))
    monkeypatch.delenv("STF_TOKEN")
    with pytest.raises(HarnessError, match=r"\$STF_TOKEN"):
        StfLease.acquire(_url(farm, "/SERIAL-B"))


def _suite_on_stf(root: Path, stf: StfSimulator, binary: Path) -> Path:
    (root / "devices").mkdir(parents=True, exist_ok=True)
    (root / "devices" / "leased.yaml").write_text(
        f"kind: adb\nconnection: {_url(stf, '/SERIAL-B')}\ntransport: adb-shell\nbenchmark_binary: {binary}\n"
        "timeouts: {connect: 10}\n")
    return write_suite(root, ["leased"])


@pytest.mark.parametrize("ending", ["finished", "failed", "interrupted"])
def test_a_run_releases_its_lease(farm: StfSimulator, binary: Path, home: Path, tmp_path: Path, session_cache: Path,
                                  ending: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if ending != "finished":
        def broken(self, model, settings, binary=None):
            assert farm.owned == {"SERIAL-B"}  # leased while measuring
            raise KeyboardInterrupt if ending == "interrupted" else RuntimeError("benchmark_model crashed")
        monkeypatch.setattr(AndroidDevice, "_measure_once", broken)
    loaded = load_suite(_suite_on_stf(tmp_path, farm, binary))
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    runner = SuiteRunner(loaded, run_dir, ArtifactCache(session_cache))
    if ending == "interrupted":
        with pytest.raises(KeyboardInterrupt):
            runner.run(plan_cells(loaded), ["pytest"])
    else:
        outcome = runner.run(plan_cells(loaded), ["pytest"])
        expected = "ok" if ending == "finished" else "failed"
        assert [r["status"] for r in outcome.records] == [expected, expected], outcome.records[0]["error"]
    assert _released(farm, "SERIAL-B"), farm.calls
    info = json.loads((run_dir / "run.json").read_text())
    assert info["devices"]["leased"]["connection"].startswith("stf+http://")
