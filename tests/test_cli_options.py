"""Every `bench` option reads plainly (issue 21): no double negative (`--no-no-history`), every default
shown in --help, and README's command table lists each command's real options and defaults."""

from __future__ import annotations

import re
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from harness.cli import app
from tests.conftest import ROOT


def _is_option(param: Any) -> bool:
    """An option of ours (typer's click parameters are its own classes: told apart by their kind)."""
    return param.param_type_name == "option" and param.name != "help"


def _commands(command: Any, path: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    found = {path: command}
    for name, sub in getattr(command, "commands", {}).items():
        found.update(_commands(sub, (*path, name)))
    return found


COMMANDS = {path: cmd for path, cmd in _commands(typer.main.get_command(app)).items()}
OPTIONS = [(path, param) for path, cmd in COMMANDS.items() for param in cmd.params
           if _is_option(param)]


def _id(case: tuple[tuple[str, ...], Any]) -> str:
    return " ".join(("bench", *case[0], case[1].opts[0]))


@pytest.mark.parametrize("case", OPTIONS, ids=_id)
def test_no_option_name_is_a_double_negative(case: tuple[tuple[str, ...], Any]) -> None:
    _, option = case
    names = option.opts + option.secondary_opts
    assert all(name.count("no-") <= 1 for name in names), names
    if option.is_flag and not option.secondary_opts:  # a lone flag can only turn something on
        assert option.default is False, names


@pytest.mark.parametrize("case", OPTIONS, ids=_id)
def test_every_option_has_a_default_to_show(case: tuple[tuple[str, ...], Any]) -> None:
    _, option = case
    described = isinstance(option.show_default, str) and option.show_default
    shown = option.show_default is not False and option.default is not None and not (
        option.is_flag and not option.secondary_opts)
    assert described or shown, f"{option.opts}: no default in --help (give show_default a description)"


@pytest.mark.parametrize("path", [p for p in COMMANDS if p], ids=lambda p: " ".join(p))
def test_help_shows_every_default(path: tuple[str, ...]) -> None:
    done = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "250"}, terminal_width=250)
    params = COMMANDS[path].params  # the options, and an argument that has a default (bench list WHAT)
    shown = [p for p in params if _is_option(p) or (p.param_type_name == "argument" and p.default is not None)]
    assert done.exit_code == 0 and done.output.count("[default: ") == len(shown), done.output
    assert "no-no-" not in done.output


def test_help_shows_brackets_as_written() -> None:  # rich markup once ate "[@device]" from --only's help
    done = CliRunner().invoke(app, ["run", "--help"], env={"COLUMNS": "250"}, terminal_width=250)
    assert "model/scheme or model/scheme@device" in done.output, done.output


def _readme_rows() -> dict[tuple[str, ...], str]:
    """README's command table: the command path of each row and its first cell."""
    text = (ROOT / "README.md").read_text()
    rows = {}
    for cell in re.findall(r"^\| `(bench [^`]*)` \|", text, flags=re.M):
        words = cell.split()[1:]
        path = max((p for p in COMMANDS if tuple(words[: len(p)]) == p), key=len)
        assert path not in rows, f"two README rows for bench {' '.join(path)}"
        rows[path] = cell
    return rows


def test_readme_lists_every_command_with_its_real_options_and_defaults() -> None:
    rows = _readme_rows()
    assert set(rows) == {p for p in COMMANDS if p and not getattr(COMMANDS[p], "commands", None)} | {("devices",)}
    for path, row in rows.items():
        options = [p for p in COMMANDS[path].params if _is_option(p)]
        real = {name for option in options for name in option.opts + option.secondary_opts}
        assert set(re.findall(r"--[a-z][a-z0-9-]*", row)) <= real, f"{row}: options bench {' '.join(path)} lacks"
        for option in options:
            names = option.opts + option.secondary_opts
            assert any(name in row for name in names), f"{row}: no {names[0]}"
            if option.is_flag or option.default is None or isinstance(option.show_default, str):
                continue
            default = str(option.default)
            default = f'"{default}"' if " " in default else default
            assert any(f"{name} {default}" in row for name in names), f"{row}: {names[0]} {default} (its default)"
