"""Versions of the tools that shape results (part of cache keys and run metadata)."""

from __future__ import annotations

import functools
import platform
from importlib import metadata

import harness

_PACKAGES = ("tensorflow", "tf-keras", "keras", "tensorflow-model-optimization",
             "ai-edge-litert", "litert-quantizer", "numpy")


@functools.cache
def tool_versions() -> dict[str, str]:
    """Installed versions of the conversion/runtime stack, plus Python and quantbench."""
    versions = {"python": platform.python_version(), "quantbench": harness.__version__}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "absent"
    return versions
