"""YAML loading that remembers the line of every mapping key and sequence item."""

from __future__ import annotations

from typing import Any

import yaml

from harness.errors import ConfigError

Path_ = tuple[Any, ...]


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate mapping keys instead of keeping the last one."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise ConfigError(
                    self.name, key_node.start_mark.line + 1, str(key),
                    f"duplicate key (first defined on line {seen[key]})",
                )
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


MAX_NODES = 100_000  # a suite has hundreds; more is an alias bomb
MAX_DEPTH = 64


def decode_text(raw: bytes, path: str) -> str:
    """A suite's bytes as text: UTF-8 (a BOM is allowed), else a ConfigError naming the line."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        hint = " (it looks like UTF-16: save it as UTF-8)" if raw[:2] in (b"\xff\xfe", b"\xfe\xff") else ""
        raise ConfigError(path, line, None, f"not UTF-8 text: byte 0x{raw[exc.start]:02x} at offset {exc.start}"
                          f"{hint}") from None


def load_yaml_with_lines(text: str, path: str) -> tuple[Any, dict[Path_, int]]:
    """Parse `text`; return the data and a map from key path to 1-based line number.

    Aliases are counted as they expand: a document larger than MAX_NODES nodes (an alias bomb)
    or deeper than MAX_DEPTH levels is refused before anything is built from it."""
    try:
        loader = _UniqueKeyLoader(text)  # the reader already refuses control characters
    except yaml.reader.ReaderError as exc:
        raise ConfigError(path, text[: exc.position].count("\n") + 1, None,
                          f"malformed YAML: character #x{exc.character:04x} is not allowed") from None
    loader.name = path
    try:
        node = loader.get_single_node()
        if node is None:
            return None, {}
        lines: dict[Path_, int] = {(): node.start_mark.line + 1}
        _collect_lines(node, (), lines, _Budget(path))
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise ConfigError(path, line, None, f"malformed YAML: {exc.problem or exc.context}") from None
    except yaml.reader.ReaderError as exc:  # a control character further on in the stream
        raise ConfigError(path, text[: exc.position].count("\n") + 1, None,
                          f"malformed YAML: character #x{exc.character:04x} is not allowed") from None
    except yaml.YAMLError as exc:
        raise ConfigError(path, None, None, f"malformed YAML: {exc}") from None
    except RecursionError:
        raise ConfigError(path, None, None, f"nested more than {MAX_DEPTH} levels deep") from None
    finally:
        loader.dispose()
    return data, lines


class _Budget:
    """Counts the nodes of the expanded document."""

    def __init__(self, path: str) -> None:
        self.path, self.nodes = path, 0

    def spend(self, node: yaml.Node, depth: int) -> None:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise ConfigError(self.path, node.start_mark.line + 1, None,
                              f"the document expands to more than {MAX_NODES:,} nodes (aliases that repeat "
                              "aliases?): refused")
        if depth > MAX_DEPTH:
            raise ConfigError(self.path, node.start_mark.line + 1, None, f"nested more than {MAX_DEPTH} levels deep")


def _collect_lines(node: yaml.Node, path: Path_, lines: dict[Path_, int], budget: _Budget) -> None:
    budget.spend(node, len(path))
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            child = (*path, key_node.value)
            lines[child] = key_node.start_mark.line + 1
            _collect_lines(value_node, child, lines, budget)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            child = (*path, index)
            lines[child] = item.start_mark.line + 1
            _collect_lines(item, child, lines, budget)


def locate(loc: Path_, lines: dict[Path_, int]) -> tuple[int | None, str]:
    """Map a validation error location to (line, dotted field), skipping non-YAML parts.

    Pydantic locations can contain union tags that are not keys in the file; only parts
    that exist in the YAML tree are kept, plus a final missing field's name.
    """
    path: Path_ = ()
    for position, part in enumerate(loc):
        candidate = (*path, part)
        if candidate in lines:
            path = candidate
        elif position == len(loc) - 1 and isinstance(part, str):
            path = candidate  # a required field that is missing: name it, point at its parent
    probe = path
    while probe and probe not in lines:
        probe = probe[:-1]
    return lines.get(probe), format_field(path)


def format_field(path: Path_) -> str:
    """('models', 0, 'train') -> 'models[0].train'."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out
