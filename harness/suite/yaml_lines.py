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


def load_yaml_with_lines(text: str, path: str) -> tuple[Any, dict[Path_, int]]:
    """Parse `text`; return the data and a map from key path to 1-based line number."""
    loader = _UniqueKeyLoader(text)
    loader.name = path
    try:
        node = loader.get_single_node()
        if node is None:
            return None, {}
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise ConfigError(path, line, None, f"malformed YAML: {exc.problem or exc.context}") from None
    finally:
        loader.dispose()
    lines: dict[Path_, int] = {(): node.start_mark.line + 1}
    _collect_lines(node, (), lines)
    return data, lines


def _collect_lines(node: yaml.Node, path: Path_, lines: dict[Path_, int]) -> None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            child = (*path, key_node.value)
            lines[child] = key_node.start_mark.line + 1
            _collect_lines(value_node, child, lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            child = (*path, index)
            lines[child] = item.start_mark.line + 1
            _collect_lines(item, child, lines)


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
