"""The Ray executor on a real three-node Ray cluster on 127.0.0.1 (head + two workers), each worker
declaring one simulated phone (`device:<name>`), and on a bad address."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("ray")

from harness.cache import ArtifactCache
from harness.errors import HarnessError
from harness.executors import make_executor
from harness.plan import plan_cells
from harness.results import read_results
from harness.runner import SuiteRunner
from harness.suite import load_suite
from tests.conftest import run_bench
from tests.devices.android.conftest import SPEC_A, SPEC_B, StartSim, write_profile, write_suite
from tests.executors.conftest import LocalCluster

pytestmark = pytest.mark.slow  # starts Ray clusters


def _phones(start_sim: StartSim, binary: Path, root: Path) -> Path:
    write_profile(root, "pa", start_sim("pa", SPEC_A), binary)
    write_profile(root, "pb", start_sim("pb", SPEC_B), binary)
    return write_suite(root, ["pa", "pb"])


def _run(suite: Path, cache: Path, address: str, progress=None) -> tuple[list[dict], Path]:
    loaded = load_suite(suite)
    run_dir = suite.parent.parent / "run"
    run_dir.mkdir(exist_ok=True)
    runner = SuiteRunner(loaded, run_dir, ArtifactCache(cache), progress=progress,
                         executor=make_executor("ray", address))
    outcome = runner.run(plan_cells(loaded), ["pytest"])
    return outcome.records, run_dir


def test_cells_land_on_both_worker_nodes(cluster: LocalCluster, start_sim: StartSim, binary: Path, home: Path,
                                         tmp_path: Path, session_cache: Path) -> None:
    cluster.head().worker("wa", {"device:pa": 1}).worker("wb", {"device:pb": 1})
    suite = _phones(start_sim, binary, tmp_path)
    records, run_dir = _run(suite, session_cache, cluster.address)
    assert [(r["scheme"], r["device"], r["status"]) for r in records] == [
        ("float32", "pa", "ok"), ("int8", "pa", "ok"), ("float32", "pb", "ok"), ("int8", "pb", "ok")]
    measured_on = {r["device"]: {r2["executed_on"]["node_id"] for r2 in records if r2["device"] == r["device"]}
                   for r in records}
    assert all(len(nodes) == 1 for nodes in measured_on.values())
    assert measured_on["pa"] != measured_on["pb"]  # each phone's cells ran on the node declaring it
    assert all(r["latency_ms"]["median"] > 0 for r in records)
    assert all(v["pass"] for r in records for v in r["verdicts"]) and all(r["verdicts"] for r in records[1::2])
    # one conversion per model × scheme: the second device's cell is a cache hit
    by_scheme = {s: [r["artifact"] for r in records if r["scheme"] == s] for s in ("float32", "int8")}
    assert all(len({a["sha256"] for a in arts}) == 1 for arts in by_scheme.values())
    assert [a["cached"] for a in by_scheme["int8"]].count(False) <= 1
    assert len(read_results(run_dir)) == 4
    assert json.loads((run_dir / "run.json").read_text())["status"] == "finished"
    loaded = load_suite(suite)  # --resume through the cluster: every cell is kept, nothing re-runs
    again = SuiteRunner(loaded, run_dir, ArtifactCache(session_cache), executor=make_executor("ray", cluster.address))
    assert again.run(plan_cells(loaded), ["pytest", "--resume"]).skipped == 4 and len(read_results(run_dir)) == 4


def test_killed_worker_node_leaves_a_complete_results_file(cluster: LocalCluster, start_sim: StartSim, binary: Path,
                                                           home: Path, tmp_path: Path, session_cache: Path) -> None:
    cluster.head().worker("wa", {"device:pa": 1}).worker("wb", {"device:pb": 1})
    suite = _phones(start_sim, binary, tmp_path)
    killed: list[str] = []

    def progress(cell: str, stage: str, record: dict | None) -> None:
        if stage == "done" and record and record["device"] == "pb" and not killed:
            cluster.kill_node("wb")  # mid-run: pb's int8 cell is still to be measured
            killed.append(cell)

    records, run_dir = _run(suite, session_cache, cluster.address, progress)
    assert killed == ["digits_cnn/float32@pb"]
    status = {(r["scheme"], r["device"]): r for r in records}
    assert set(status) == {("float32", "pa"), ("int8", "pa"), ("float32", "pb"), ("int8", "pb")}
    assert all(status[(s, "pa")]["status"] == "ok" for s in ("float32", "int8"))
    assert status[("float32", "pb")]["status"] == "ok"
    lost = status[("int8", "pb")]
    assert lost["status"] == "failed" and "device:pb" in lost["error"], lost["error"]
    on_disk = read_results(run_dir)  # complete and valid: every cell once, each ok or failed with a reason
    assert sorted((r["scheme"], r["device"]) for r in on_disk) == sorted(status)
    assert json.loads((run_dir / "run.json").read_text())["status"] == "finished"


def test_bad_ray_address_is_a_clear_error(tmp_path: Path) -> None:
    for address, says in (("not an address;rm", "expected HOST:PORT"), ("127.0.0.1:1", "cannot join a Ray cluster")):
        done = run_bench("run", "tests/data/tiny.yaml", "--executor", "ray", "--ray-address", address,
                         "--out", str(tmp_path / "run"), "--no-history", timeout=120,
                         process=True)  # ray.init in a process of its own, not in pytest's
        assert done.returncode == 2, done.stdout + done.stderr
        assert says in done.stderr + done.stdout and "Traceback" not in done.stderr, done.stderr


def test_ctrl_c_stops_a_ray_run_keeping_finished_cells(cluster: LocalCluster, start_sim: StartSim, binary: Path,
                                                       home: Path, tmp_path: Path, session_cache: Path) -> None:
    cluster.head({"device:pa": 1, "device:pb": 1}, cpus=2)  # one node may declare several phones

    def progress(cell: str, stage: str, record: dict | None) -> None:
        if stage == "done":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _run(_phones(start_sim, binary, tmp_path), session_cache, cluster.address, progress)
    run_dir = tmp_path / "run"
    assert json.loads((run_dir / "run.json").read_text())["status"] == "interrupted"
    assert [r["status"] for r in read_results(run_dir)] == ["ok"]  # appended before the interrupt, nothing after


def test_executor_names_and_options_are_checked() -> None:
    with pytest.raises(HarnessError, match="expected one of inprocess, ray"):
        make_executor("dask")
    with pytest.raises(HarnessError, match="only for --executor ray"):
        make_executor("inprocess", "127.0.0.1:6379")
    assert make_executor("inprocess").name == "inprocess"
