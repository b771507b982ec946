"""The `bench` command reference, generated from the command itself (harness/cli.py's Typer app).

Run by the MkDocs hook (docs/hooks.py) on every build; `python docs/gen_cli_reference.py` prints it.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

ROOT = Path(__file__).resolve().parent.parent


def _cell(text: str) -> str:
    """Help text as literal text in a Markdown table cell (no HTML, no emphasis, no table break); its
    `code spans` stay code."""
    parts = " ".join(text.split()).split("`")
    return "`".join(part if i % 2 else _literal(part) for i, part in enumerate(parts)).replace("|", "\\|")


def _literal(text: str) -> str:
    text = text.replace("\\", "\\\\").replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.replace("*", "\\*").replace("_", "\\_").replace("[", "\\[")


def _names(param: click.Parameter) -> str:
    if param.param_type_name == "argument":
        return f"`{(param.name or '').upper()}`"
    flags = [*param.opts, *param.secondary_opts]
    return ", ".join(f"`{flag}`" for flag in flags)


def _default(param: click.Parameter) -> str:
    default: Any = param.default
    described = getattr(param, "show_default", None)
    if isinstance(described, str) and described:
        return _cell(described)
    if default is None or callable(default) or param.param_type_name == "argument":
        return ""
    if isinstance(default, bool):
        return "on" if default else "off"
    return f"`{default}`"


def param_rows(command: click.Command) -> list[str]:
    rows = []
    for param in command.params:
        if param.name == "help":
            continue
        help_text = getattr(param, "help", None) or ""
        required = " (required)" if param.required else ""
        rows.append(f"| {_names(param)} | {_default(param)} | {_cell(help_text)}{required} |")
    return rows


def command_markdown(path: str, command: click.Command) -> list[str]:
    lines = [f"### `{path}`", "", _cell(command.help or ""), ""]
    rows = param_rows(command)
    if rows:
        lines += ["| argument / option | default | meaning |", "|---|---|---|", *rows, ""]
    return lines


def walk(path: str, command: click.Command) -> list[str]:
    """This command's section, then its subcommands' (a group's own options are its section)."""
    lines = command_markdown(path, command)
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            lines += walk(f"{path} {name}", sub)
    return lines


def reference_markdown() -> str:
    """The generated part of docs/cli.md: every command, argument and option with its default."""
    sys.path.insert(0, str(ROOT))
    import typer

    from harness.cli import app

    root = typer.main.get_command(app)
    lines = ["Generated from the `bench` command itself (`harness/cli.py`); `bench COMMAND --help` prints the same.", ""]
    for name, command in root.commands.items():  # type: ignore[attr-defined]
        lines += walk(f"bench {name}", command)
    return "\n".join(lines)


if __name__ == "__main__":
    print(reference_markdown())
