"""The run's devices: each profile loaded once, described once, closed once, and what closing said."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.cache import ArtifactCache
from harness.devices import Device, load_device


class RunDevices:
    """Devices by name, each given the run's artifact cache (`cache`) when opened. `load` (for tests)
    replaces reading the profile (harness.devices.load_device)."""

    def __init__(self, base_dir: Path, load: Callable[[str, Path], Device] | None = None,
                 cache: ArtifactCache | None = None) -> None:
        self.base_dir, self._load, self._cache = base_dir, load, cache
        self._devices: dict[str, Device] = {}
        self._described: dict[str, dict[str, Any]] = {}  # describe() of each device, read once per run
        self._closed: set[str] = set()  # close() runs once
        self.notes: list[str] = []  # what closing the devices said (run.json notes)

    def get(self, name: str) -> Device:
        if name not in self._devices:
            device = (self._load or load_device)(name, self.base_dir)
            if self._cache is not None:
                device.use_cache(self._cache)
            self._devices[name] = device
        return self._devices[name]

    def is_remote(self, name: str) -> bool:
        """The device is another machine: its measurement does not use this host's CPUs."""
        return self.get(name).remote

    def described(self, name: str) -> dict[str, Any]:
        if name not in self._described:
            self._described[name] = self.get(name).describe()
        return self._described[name]

    def keep_description(self, name: str, described: dict[str, Any]) -> None:
        self._described[name] = described

    def close(self, names: list[str]) -> None:
        """Remove pushed files and disconnect (also when the run stops early); once per device."""
        for name in [n for n in names if n not in self._closed]:
            self._closed.add(name)
            device = self._devices.get(name)
            if device is None:
                continue
            try:
                device.close()
            except Exception:  # noqa: BLE001 - cleanup must not lose the finished run
                pass
            self.notes += [f"device {name}: {note}" for note in device.notes]
