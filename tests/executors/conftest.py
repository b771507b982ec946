"""A real local Ray cluster: a head and worker nodes started with `ray start` on 127.0.0.1.

Each cluster has its own temp dir and ports; teardown stops exactly its own processes (found by
that temp dir in their command lines, ended by pid), so nothing else on the machine is hit."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.devices.android.conftest import binary, home, start_sim  # noqa: F401 - the phone fixtures, shared

RAY = Path(sys.executable).parent / "ray"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _env(temp: Path) -> dict[str, str]:
    return {**os.environ, "RAY_TMPDIR": str(temp), "RAY_USAGE_STATS_ENABLED": "0",
            "RAY_health_check_period_ms": "500", "RAY_health_check_failure_threshold": "3",
            "RAY_health_check_initial_delay_ms": "500", "PYTHONPATH": str(Path(__file__).resolve().parents[2])}


class LocalCluster:
    """`ray start` nodes on 127.0.0.1 under one private temp dir."""

    def __init__(self, temp: Path) -> None:
        self.temp, self.port = temp, free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.node_ports: dict[str, int] = {}

    def _start(self, name: str, args: list[str], resources: dict[str, float], cpus: int) -> None:
        self.node_ports[name] = free_port()
        argv = [str(RAY), "start", *args, "--node-ip-address=127.0.0.1", f"--num-cpus={cpus}",
                f"--resources={json.dumps(resources)}", f"--node-manager-port={self.node_ports[name]}",
                "--disable-usage-stats"]
        done = subprocess.run(argv, env=_env(self.temp), capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stdout + done.stderr

    def head(self, resources: dict[str, float] | None = None, cpus: int = 1) -> LocalCluster:
        self._start("head", ["--head", f"--port={self.port}", f"--temp-dir={self.temp}", "--include-dashboard=false",
                             f"--ray-client-server-port={free_port()}", f"--min-worker-port={free_port()}",
                             "--max-worker-port=0"], resources or {}, cpus)
        return self

    def worker(self, name: str, resources: dict[str, float], cpus: int = 1) -> LocalCluster:
        self._start(name, [f"--address={self.address}"], resources, cpus)
        return self

    def pids(self, marker: str | None = None) -> list[int]:
        """Processes of this cluster (optionally: whose command line also holds `marker`)."""
        found = []
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                environ = (proc / "environ").read_bytes()
            except OSError:
                continue
            ours = str(self.temp) in cmdline or f"RAY_TMPDIR={self.temp}".encode() in environ
            if ours and (marker is None or marker in cmdline) and int(proc.name) != os.getpid():
                found.append(int(proc.name))
        return found

    def kill_node(self, name: str) -> None:
        """SIGKILL a worker node's raylet (its workers die with it), as if the host went away."""
        port = self.node_ports[name]
        raylets = [p for p in self.pids(f"--node_manager_port={port}")]
        assert raylets, f"no raylet for node {name}"
        for pid in raylets:
            os.kill(pid, signal.SIGKILL)

    def stop(self) -> None:
        for _ in range(3):
            pids = self.pids()
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.5)


@pytest.fixture
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """A private cluster (nodes added by the test), torn down after it, also on failure."""
    import ray

    temp = Path("/tmp") / f"qb-ray-{os.getpid()}-{free_port()}"  # short: Ray's socket paths have a length limit
    temp.mkdir()
    made = LocalCluster(temp)
    try:
        yield made
    finally:
        if ray.is_initialized():
            ray.shutdown()
        made.stop()
        subprocess.run(["rm", "-rf", str(temp)], check=False)
