"""Versions of the tools that shape results (part of cache keys and run metadata)."""

from __future__ import annotations

import functools
import hashlib
import platform
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path

import harness

# The harness code that produces artifacts (builders, training, bridges, converters, normalizers):
# its digest is part of every artifact key, so a change to it never reuses an artifact it made.
_PRODUCERS = ("models", "schemes", "tflite")
_PACKAGES = ("tensorflow", "tf-keras", "keras", "tensorflow-model-optimization",
             "ai-edge-litert", "litert-quantizer", "numpy")


@functools.cache
def tool_versions() -> dict[str, str]:
    """Installed versions of the conversion/runtime stack, plus Python, quantbench and the digest of
    its artifact-producing code."""
    return {"python": platform.python_version(), "quantbench": harness.__version__,
            "quantbench_producers": producer_digest(), **package_versions(_PACKAGES)}


def package_versions(names: Iterable[str]) -> dict[str, str]:
    """Each package's installed version ("absent" when it is not installed)."""
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "absent"
    return versions


@functools.cache
def producer_digest() -> str:
    """sha256 (first 16 hex digits) of the Python sources under harness/{models,schemes,tflite}."""
    root, digest = Path(harness.__file__).parent, hashlib.sha256()
    for file in sorted(f for folder in _PRODUCERS for f in (root / folder).rglob("*.py")):
        digest.update(str(file.relative_to(root)).encode() + b"\0" + file.read_bytes())
    return digest.hexdigest()[:16]
