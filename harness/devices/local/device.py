"""The local device: LiteRT on this machine, latency measured in a process pinned to one core."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from harness.config.schema import CooldownSpec, LatencySpec
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
        """Time `model` in a process pinned to the core; the first measurement of a model whose
        acceleration is not known yet probes it too, in the same process (harness.devices.local.acceleration)."""
        from harness.devices.local.acceleration import TIMEOUT_S

        known = self._known_acceleration(model)
        command = _child.command(
            "latency_process", str(model),
            "--core", str(self.core.core), "--threads", str(self.options.threads),
            "--warmup-runs", str(settings.warmup_runs), "--num-runs", str(settings.num_runs),
            "--min-secs", str(settings.min_secs), "--max-secs", str(settings.max_secs),
            "--parent", str(os.getpid()),
            *(["--decode-tokens", str(settings.decode_tokens)] if settings.decode_tokens else []),
            *(["--probe"] if known is None else []),
        )
        timeout = settings.max_secs * 2 + 120 + (TIMEOUT_S if known is None else 0)
        done = self._run(command, timeout)
        timed = done.timing(probing=known is None)
        if known is None:
            known = self._keep_acceleration(model, done.acceleration())
        return {**timed, "host": done.host, "acceleration": known}

    def _run(self, command: list[str], timeout: float) -> _Finished:
        """Run the measurement process in a session of its own: a Ctrl-C at the terminal reaches
        the whole foreground process group, and the run (not the terminal) decides what a stop does
        to a measurement. It never outlives the call: killed on a timeout (what it printed is kept)
        or an interrupt. The pinned core is watched meanwhile (`host`: other work on it,
        harness.devices.local.host_state)."""
        with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              start_new_session=True, env=_child.environment()) as process:
            self._process = process
            timed_out = False
            try:
                with CoreWatch(self.core.core, process.pid) as watch:
                    try:
                        stdout, stderr = process.communicate(timeout=timeout)
                    except subprocess.TimeoutExpired:
                        process.kill()
                        stdout, stderr = process.communicate()
                        timed_out = True
            except BaseException:
                process.kill()
                raise
            finally:
                self._process = None
        return _Finished(stdout, stderr, process.returncode, watch.result(), timeout if timed_out else None)

    def device_state(self, cooldown: CooldownSpec | None = None) -> DeviceReading:
        """The host around the pinned core now (harness.devices.local.host_state.snapshot); its busy
        share, a 0.2 s wait, only for a cool-down that bounds it (`max_other_load`): what decides a cell's
        `busy` is the watch of the core while it is measured (`during`), which needs no wait."""
        return snapshot(self.core.core, busy_window=cooldown is not None and cooldown.max_other_load is not None)

    def use_cache(self, cache: ArtifactCache) -> None:
        """Keep acceleration probes' answers in the run's artifact cache (harness.devices.local.acceleration)."""
        self._cache = cache

    def _known_acceleration(self, model: Path) -> dict[str, Any] | None:
        """The model's acceleration when this process or (with `use_cache`) the artifact cache knows
        it for the model's bytes on this host and runtime; None: the next measurement probes it."""
        from harness.devices.local.acceleration import known

        key = self._model_key(model)
        if key not in self._acceleration and self._cache is not None:
            found = known(model, self.options.threads, self._cache)
            if found is not None:
                self._acceleration[key] = found
        return self._acceleration.get(key)

    def _keep_acceleration(self, model: Path, answer: dict[str, Any]) -> dict[str, Any]:
        """Remember a probe's answer for this model file (and in the cache when it did not fail)."""
        from harness.devices.local.acceleration import keep

        self._acceleration[self._model_key(model)] = answer
        if self._cache is not None:
            keep(model, self.options.threads, self._cache, answer)
        return answer

    @staticmethod
    def _model_key(model: Path) -> tuple[str, int, int, int]:
        status = model.stat()
        return str(model), status.st_mtime_ns, status.st_size, status.st_ino

    def close(self) -> None:
        """Stop a measurement still running (the run was interrupted): it must not outlive the run."""
        process = self._process
        if process is not None and process.poll() is None:
            process.kill()


@dataclass(frozen=True)
class _Finished:
    """What a measurement process left: its output, exit code, the watch of its core, and the time
    limit it ran out of (None: it exited by itself)."""

    stdout: str
    stderr: str
    code: int
    host: dict[str, Any]
    timed_out: float | None

    def why(self) -> str:
        """Why it gave no (further) answer."""
        if self.timed_out is not None:
            return f"did not finish within {self.timed_out:.0f} s"
        return f"failed (exit {self.code}): {(self.stderr.strip().splitlines() or ['no output'])[-1]}"

    def line(self, index: int) -> dict[str, Any] | None:
        """Its `index`th line of output as a JSON object (None: not printed, or cut short)."""
        lines = self.stdout.splitlines()
        try:
            value = json.loads(lines[index]) if index < len(lines) else None
        except ValueError:
            return None
        return value if isinstance(value, dict) else None

    def timing(self, probing: bool) -> dict[str, Any]:
        """The first line. Without it, or without a clean exit when no probe followed it, the measurement failed."""
        timed = self.line(0)
        if timed is None or (not probing and (self.code != 0 or self.timed_out is not None)):
            raise HarnessError(f"latency measurement {self.why()}")
        return timed

    def acceleration(self) -> dict[str, Any]:
        """The probe's answer (the second line), or why there is none."""
        from harness.devices.local.acceleration import failed

        probed = self.line(1)
        return probed if probed is not None else failed(self.why())


@DEVICE_KINDS.register("local", "this machine: LiteRT, one thread, pinned to the fastest core")
class Local(DeviceKind):
    Options = LocalOptions

    def open(self, name: str, options: LocalOptions) -> LocalDevice:
        return LocalDevice(name, options)
