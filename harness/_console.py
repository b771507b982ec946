"""The Rich consoles of the `bench` commands: markup off, so no user string (a path, a model or cell
name, an error message) is ever read as Rich markup; styled output is built with rich.text.Text."""

from __future__ import annotations

import sys

from rich.console import Console


def plain_console(*, stderr: bool = False) -> Console:
    """A console that prints strings as they are (tables and progress descriptions included)."""
    stream = sys.stderr if stderr else sys.stdout
    return Console(stderr=stderr, markup=False, width=None if stream.isatty() else 160)
