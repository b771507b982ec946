"""Device kinds and device profiles (`devices/<name>.yaml`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, ValidationError

from harness.config.schema import LatencySpec, check_name
from harness.config.yaml_lines import Path_, decode_text, load_yaml_with_lines, locate
from harness.errors import ConfigError
from harness.registry import Registry, UnknownName


class DeviceOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: str


class Device(Protocol):
    """Something that measures the latency of a .tflite file."""

    name: str

    def describe(self) -> dict[str, Any]:
        """Facts for run.json: CPU model, the core used and why, threads."""
        ...

    def measure_latency(self, model: Path, settings: LatencySpec) -> dict[str, Any]:
        """init/first/warmup_mean (ms), `samples` (ms per timed run) and memory figures."""
        ...


class BinaryDevice(Device, Protocol):
    """A device timed by a benchmark binary it is given (a phone's benchmark_model): it can time a
    model with another binary, for the paired A/B against the earlier run's."""

    def measure_latency(self, model: Path, settings: LatencySpec, binary: Path | None = None) -> dict[str, Any]:
        ...


class DeviceKind(Protocol):
    @property
    def Options(self) -> type[DeviceOptions]: ...

    def open(self, name: str, options: Any) -> Device: ...


DEVICE_KINDS: Registry[DeviceKind] = Registry("device kind", "harness.devices")

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
