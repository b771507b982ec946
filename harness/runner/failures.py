"""What a failed cell says: one paragraph, the user's error as written, a bug with where it happened."""

from __future__ import annotations

import traceback
from pathlib import Path

from harness.errors import HarnessError


class SourceFailed(Exception):
    """The model's source could not be built/loaded; every cell of the model fails with it."""


def describe(exc: BaseException) -> str:
    """A one-paragraph error, trimmed: an expected error (HarnessError) is its message, as the user
    acts on it; an unexpected one (a harness or library bug) also names its type and innermost frame."""
    message = str(exc).strip() or type(exc).__name__
    if len(message) > 2000:
        message = message[:1000] + " … " + message[-900:]
    if isinstance(exc, SourceFailed):
        return f"model source failed: {message}"
    if isinstance(exc, HarnessError):
        return message
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" (at {Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""
    return f"{type(exc).__name__}: {message}{where}"
