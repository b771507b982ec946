"""The history's one error type."""

from __future__ import annotations

from harness.errors import HarnessError


class HistoryError(HarnessError):
    """The history store cannot be opened, read or written."""
