"""Error types the CLI turns into clear messages and exit codes."""

from __future__ import annotations


class HarnessError(Exception):
    """A problem the user can act on (missing file, bad device, ...): exit code 2."""


class ConfigError(HarnessError):
    """A suite or profile file is invalid; the message names file, line and field."""

    def __init__(self, path: str, line: int | None, field: str | None, message: str) -> None:
        self.path, self.line, self.field, self.message = path, line, field, message
        where = path if line is None else f"{path}:{line}"
        super().__init__(f"{where}: {field}: {message}" if field else f"{where}: {message}")


class NotApplicable(Exception):
    """A scheme or metric does not apply to this cell; recorded as status `n/a` with the reason."""
