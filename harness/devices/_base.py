"""Device kinds and device profiles (`devices/<name>.yaml`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

from harness.config.schema import CooldownSpec, LatencySpec, check_name
from harness.config.yaml_lines import Path_, decode_text, load_yaml_with_lines, locate
from harness.errors import ConfigError
from harness.record import DeviceReading
from harness.registry import Registry, UnknownName

if TYPE_CHECKING:
    from harness.cache import ArtifactCache


class DeviceOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: str


class Device:
    """Something that measures the latency of a .tflite file: what a device kind's `open` returns.

    Subclass it. `describe` and `measure_latency` are required; every other member is optional and
    its default here is what the runner does for a device without it (none is looked up by name)."""

    name: str
    remote: bool = False  # another machine: its measurement takes no host lock and may overlap host work
    runs_generation: bool = False  # times prefill + decode of generative models (harness.tflite.generation)
    notes: Sequence[str] = ()  # what close() could not do, for run.json's notes

    def describe(self) -> dict[str, Any]:
        """Facts for run.json: CPU model, the core used and why, threads."""
        raise NotImplementedError

    def measure_latency(self, model: Path, settings: LatencySpec) -> dict[str, Any]:
        """init/first/warmup_mean (ms), memory figures, and `stats` (the device's own statistics over
        every timed run, `samples` then only a bounded sample of them) or `samples` (ms per timed run)."""
        raise NotImplementedError

    def inventory(self) -> dict[str, Any]:
        """What `bench devices` shows of it (model, ABI, cores, the core mask, ...). Default: describe()."""
        return self.describe()

    def check(self) -> None:
        """Problems that should stop a run before any work (the CLI exits 2); run once per device
        (on the Ray node that declares it). Default: none."""

    def device_state(self, cooldown: CooldownSpec | None = None) -> DeviceReading | None:
        """A reading before and after each cell (temperatures, frequencies, host load), which the
        cool-down waits on. `cooldown`: the limits the reading before a cell is compared with (None:
        no cool-down, or the reading after the cell), so a kind reads what takes time to read only
        when it decides something. None: this kind cannot tell (no `device_state` in its records)."""
        return None

    def check_numerics(self, model: Path, x: Any, count: int, settings: LatencySpec) -> dict[str, Any] | None:
        """`latency.device_check: N`: the device's outputs for N samples vs the host's. None: this kind
        cannot run them (the check is not run, its device_* metrics are not produced and a bound on
        them fails)."""
        return None

    def use_cache(self, cache: ArtifactCache) -> None:
        """The run's artifact cache, where the device may keep what depends only on content (the local
        kind: its acceleration probes); given once, when the run opens the device. Default: unused."""

    def close(self) -> None:
        """Remove what was put on the device and disconnect; once per run. Default: nothing to do."""


class BinaryDevice(Device):
    """A device timed by a benchmark binary it is given (a phone's benchmark_model): it can time a
    model with another binary, for the paired A/B against the earlier run's."""

    def measure_latency(self, model: Path, settings: LatencySpec, binary: Path | None = None) -> dict[str, Any]:
        raise NotImplementedError


class DeviceKind:
    """What a device kind is: subclass it and register the subclass with `@DEVICE_KINDS.register(kind, summary)`."""

    Options: ClassVar[type[DeviceOptions]] = DeviceOptions

    def open(self, name: str, options: Any) -> Device:
        raise NotImplementedError


DEVICE_KINDS: Registry[DeviceKind] = Registry("device kind", "harness.devices", base=DeviceKind)

# Used when no devices/local.yaml profile exists.
BUILTIN_PROFILES: dict[str, dict[str, Any]] = {"local": {"kind": "local"}}


def profile_dirs(suite_dir: Path) -> list[Path]:
    """Where profiles are looked up: next to the suites folder, then the working directory."""
    return [suite_dir.parent / "devices", suite_dir / "devices", Path.cwd() / "devices"]


def find_profile(name: str, suite_dir: Path) -> Path | None:
    check_name(name, "device")  # a device name is a file name, never a path
    for directory in profile_dirs(suite_dir):
        candidate = directory / f"{name}.yaml"
        if candidate.exists():
            return candidate
    return None


def load_device(name: str, suite_dir: Path) -> Device:
    """Open device `name` from its profile (or a built-in default); ConfigError if invalid."""
    kind, options = profile_options(name, suite_dir)
    return kind.open(name, options)


def profile_options(name: str, suite_dir: Path) -> tuple[DeviceKind, DeviceOptions]:
    """The kind and validated options of device `name`'s profile, without opening the device
    (`bench validate` checks profiles with it); ConfigError names file, line and field."""
    path = find_profile(name, suite_dir)
    lines: dict[Path_, int] = {}
    if path is None:
        if name not in BUILTIN_PROFILES:
            looked = ", ".join(str(d) for d in profile_dirs(suite_dir))
            raise ConfigError(f"{name}.yaml", None, None, f"no device profile {name!r} (looked in {looked})")
        data, where = BUILTIN_PROFILES[name], f"<built-in {name}>"
    else:
        data, lines = load_yaml_with_lines(decode_text(path.read_bytes(), str(path)), str(path))
        where = str(path)
    if not isinstance(data, dict) or "kind" not in data:
        raise ConfigError(where, 1, "kind", "a device profile is a mapping with `kind:` (e.g. local)")
    try:
        kind = DEVICE_KINDS.get(str(data["kind"]))
        options = kind.Options.model_validate(data)
    except UnknownName as exc:
        raise ConfigError(where, lines.get(("kind",)), "kind", str(exc)) from None
    except ValidationError as exc:
        error = exc.errors()[0]
        line, field = locate(error["loc"], lines)
        message = "unknown key" if error["type"] == "extra_forbidden" else error["msg"]
        raise ConfigError(where, line, field, message) from None
    return kind, options
