"""The local device: LiteRT on this machine, latency measured in a process pinned to one core."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from harness.config.schema import LatencySpec
from harness.devices._base import DEVICE_KINDS, Device, DeviceKind, DeviceOptions
from harness.devices.cpus import CoreChoice, cpu_model, pick_local_core, read_max_freqs
from harness.devices.local import _child
from harness.devices.local.host_state import CoreWatch, snapshot
from harness.errors import HarnessError
from harness.record import DeviceReading
from harness.versions import tool_versions

if TYPE_CHECKING:
    from harness.cache import ArtifactCache


class LocalOptions(DeviceOptions):
    kind: Literal["local"] = "local"
    core: int | Literal["auto"] = Field("auto", description="CPU to pin to; auto = fastest by cpufreq")
    threads: int = Field(1, ge=1)


class LocalDevice(Device):
    runs_generation = True  # times prefill + decode of generative models (harness.tflite.generation)

    def __init__(self, name: str, options: LocalOptions) -> None:
        self.name = name
        self.options = options
        self._process: subprocess.Popen[str] | None = None
        self._acceleration: dict[tuple[str, int, int, int], dict[str, Any]] = {}
        self._cache: ArtifactCache | None = None
        try:
            self.core: CoreChoice = pick_local_core(options.core)
        except ValueError as exc:
            raise HarnessError(f"device {name!r}: {exc}") from None

    def describe(self) -> dict[str, Any]:
        return {
            "kind": "local", "cpu_model": cpu_model(), "core": self.core.core,
            "core_reason": self.core.reason, "threads": self.options.threads,
            "runtime": f"ai-edge-litert {tool_versions()['ai-edge-litert']}",
        }

    def inventory(self) -> dict[str, Any]:
        """describe() and this host's CPUs: each one's maximum frequency, the clusters, the pinned core's mask."""
        from harness.devices.android.probe import clusters

        facts, cpus = self.describe(), sorted(os.sched_getaffinity(0))
        freqs = read_max_freqs(cpus=cpus)
        return {
            **facts, "reachable": True, "model": facts.get("cpu_model"), "abi": platform.machine(), "android": None,
            "cores": [{"cpu": cpu, "max_freq_khz": freqs.get(cpu)} for cpu in cpus],
            "clusters": clusters(cpus, freqs), "mask": f"0x{1 << self.core.core:x}",
        }

    def measure_latency(self, model: Path, settings: LatencySpec) -> dict[str, Any]:
        command = _child.command(
            "latency_process", str(model),
            "--core", str(self.core.core), "--threads", str(self.options.threads),
            "--warmup-runs", str(settings.warmup_runs), "--num-runs", str(settings.num_runs),
            "--min-secs", str(settings.min_secs), "--max-secs", str(settings.max_secs),
            "--parent", str(os.getpid()),
            *(["--decode-tokens", str(settings.decode_tokens)] if settings.decode_tokens else []),
        )
        timeout = settings.max_secs * 2 + 120
        stdout, stderr, code, host = self._run(command, timeout)
        if code != 0:
            tail = (stderr.strip().splitlines() or ["no output"])[-1]
            raise HarnessError(f"latency measurement failed (exit {code}): {tail}")
        return {**json.loads(stdout), "host": host, "acceleration": self.acceleration(model)}

    def _run(self, command: list[str], timeout: float) -> tuple[str, str, int, dict[str, Any]]:
        """Run the measurement process in a session of its own: a Ctrl-C at the terminal reaches
        the whole foreground process group, and the run (not the terminal) decides what a stop does
        to a measurement. It never outlives the call: killed on a timeout or an interrupt. The pinned
        core is watched meanwhile (`host`: other work on it, harness.devices.local.host_state)."""
        with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              start_new_session=True, env=_child.environment()) as process:
            self._process = process
            try:
                with CoreWatch(self.core.core, process.pid) as watch:
                    stdout, stderr = process.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                raise HarnessError(f"latency measurement did not finish within {timeout:.0f} s") from None
            except BaseException:
                process.kill()
                raise
            finally:
                self._process = None
        return stdout, stderr, process.returncode, watch.result()

    def device_state(self) -> DeviceReading:
        """The host around the pinned core now (harness.devices.local.host_state.snapshot)."""
        return snapshot(self.core.core)

    def use_cache(self, cache: ArtifactCache) -> None:
        """Keep acceleration probes' answers in the run's artifact cache (harness.devices.local.acceleration)."""
        self._cache = cache

    def acceleration(self, model: Path) -> dict[str, Any]:
        """How much of the model XNNPACK takes here (the record's `acceleration`): looked up once per
        model file in this process, and probed only when the artifact cache (with `use_cache`) has no
        answer for the model's bytes on this host and runtime."""
        from harness.devices.local.acceleration import cached_probe, probe

        status = model.stat()
        key = (str(model), status.st_mtime_ns, status.st_size, status.st_ino)
        if key not in self._acceleration:
            threads = self.options.threads
            self._acceleration[key] = (probe(model, threads) if self._cache is None
                                       else cached_probe(model, threads, self._cache))
        return self._acceleration[key]

    def close(self) -> None:
        """Stop a measurement still running (the run was interrupted): it must not outlive the run."""
        process = self._process
        if process is not None and process.poll() is None:
            process.kill()


@DEVICE_KINDS.register("local", "this machine: LiteRT, one thread, pinned to the fastest core")
class Local(DeviceKind):
    Options = LocalOptions

    def open(self, name: str, options: LocalOptions) -> LocalDevice:
        return LocalDevice(name, options)
