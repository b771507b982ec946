"""The record reference, generated from harness/record.py: every TypedDict, its fields, their types and comments.

Run by the MkDocs hook (docs/hooks.py) on every build, so the page cannot go stale; run it alone to print
the Markdown: `python docs/gen_record_reference.py`. It reads the source (ast and tokenize, no import),
because the fields' descriptions are the comments beside them.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from dataclasses import dataclass
from pathlib import Path

RECORD_PY = Path(__file__).resolve().parent.parent / "harness" / "record.py"
FIRST = ("CellRecord", "RunInfo")  # the two top-level documents; every other type follows in file order


@dataclass(frozen=True)
class Field:
    name: str
    type: str
    required: bool
    comment: str


@dataclass(frozen=True)
class Shape:
    """One TypedDict of record.py."""

    name: str
    doc: str
    fields: tuple[Field, ...]


def line_comments(source: str) -> dict[int, str]:
    """Line number → the comment on that line (without '#')."""
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    return {tok.start[0]: tok.string.lstrip("#").strip() for tok in tokens if tok.type == tokenize.COMMENT}


def _unwrap(annotation: ast.expr) -> tuple[str, bool | None]:
    """The annotation's text without Required[...]/NotRequired[...], and which of the two it was."""
    if isinstance(annotation, ast.Subscript) and isinstance(annotation.value, ast.Name):
        if annotation.value.id in ("Required", "NotRequired"):
            return ast.unparse(annotation.slice), annotation.value.id == "Required"
    return ast.unparse(annotation), None


def _is_typeddict(node: ast.ClassDef) -> bool:
    return any(isinstance(base, ast.Name) and base.id == "TypedDict" for base in node.bases)


def _total(keywords: list[ast.keyword]) -> bool:
    for keyword in keywords:
        if keyword.arg == "total" and isinstance(keyword.value, ast.Constant):
            return bool(keyword.value.value)
    return True


def _field(name: str, annotation: ast.expr, total: bool, comment: str) -> Field:
    text, required = _unwrap(annotation)
    return Field(name, text, total if required is None else required, comment)


def class_shape(node: ast.ClassDef, comments: dict[int, str]) -> Shape:
    """A `class X(TypedDict, total=...)` definition."""
    total = _total(node.keywords)
    fields = tuple(_field(item.target.id, item.annotation, total, comments.get(item.lineno, ""))
                   for item in node.body
                   if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name)
                   and not item.target.id.startswith("__"))
    return Shape(node.name, ast.get_docstring(node) or "", fields)


def functional_shape(node: ast.Assign, comments: dict[int, str]) -> Shape | None:
    """`X = TypedDict("X", {...})` (for field names that are Python keywords, such as `pass`)."""
    call = node.value
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "TypedDict"):
        return None
    mapping = call.args[1] if len(call.args) > 1 else None
    if not isinstance(mapping, ast.Dict):
        return None
    total = _total(call.keywords)
    fields = tuple(_field(key.value, value, total, comments.get(key.lineno, ""))
                   for key, value in zip(mapping.keys, mapping.values) if isinstance(key, ast.Constant))
    return Shape(node.targets[0].id, "", fields)  # type: ignore[attr-defined]


def shapes(source: str) -> list[Shape]:
    """Every TypedDict of the module, CellRecord and RunInfo first."""
    tree, comments = ast.parse(source), line_comments(source)
    found: list[Shape] = []
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and _is_typeddict(node):
            found.append(class_shape(node, comments))
        elif isinstance(node, ast.Assign) and (shape := functional_shape(node, comments)):
            found.append(shape)
    return sorted(found, key=lambda s: FIRST.index(s.name) if s.name in FIRST else len(FIRST))


def aliases(source: str) -> dict[str, str]:
    """Module-level type aliases such as `Status = Literal[...]`, and constants such as FORMAT_VERSION."""
    found = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name, value = node.targets[0].id, node.value
            if name == "FORMAT_VERSION" or isinstance(value, ast.Subscript) and ast.unparse(value.value) == "Literal":
                found[name] = ast.unparse(value)
    return found


def detail_parts(source: str) -> list[str]:
    """`DETAIL_PARTS` (the parts results.bin keeps instead of the line) as dotted paths."""
    for node in ast.parse(source).body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.target.id == "DETAIL_PARTS":
            return [".".join(path) for path in ast.literal_eval(node.value)] if node.value else []
    return []


def _cell(text: str) -> str:
    """Text safe in a Markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


def _type_cell(text: str, known: set[str], alias: dict[str, str]) -> str:
    """A field's type as code, with links to the other types of the page."""
    out = []
    for word in _split_names(text, known | set(alias)):
        if word in known:
            out.append(f"[`{word}`](#{word.lower()})")
        elif word in alias:
            out.append(f"`{_cell(alias[word])}`")
        else:
            out.append(f"`{_cell(word)}`" if word.strip() else word)
    return "".join(out)


def _split_names(text: str, names: set[str]) -> list[str]:
    """`list[KernelStats] | None` → ['list[', 'KernelStats', '] | None'] (the page's type names kept whole)."""
    pattern = "|".join(sorted(map(re.escape, names), key=len, reverse=True)) or "(?!)"
    return [part for part in re.split(rf"\b({pattern})\b", text) if part]


def shape_markdown(shape: Shape, known: set[str], alias: dict[str, str]) -> list[str]:
    lines = [f"### {shape.name}", ""]
    if shape.doc:
        lines += [shape.doc, ""]
    lines += ["| field | type | required | description |", "|---|---|---|---|"]
    for field in shape.fields:
        required = "yes" if field.required else ""
        lines.append(f"| `{field.name}` | {_type_cell(field.type, known, alias)} | {required} | {_cell(field.comment)} |")
    return lines + [""]


def reference_markdown(path: Path = RECORD_PY) -> str:
    """The generated part of docs/record.md."""
    source = path.read_text(encoding="utf-8")
    found, alias = shapes(source), aliases(source)
    known = {shape.name for shape in found}
    lines = [f"Generated from `harness/record.py` (`FORMAT_VERSION = {alias.get('FORMAT_VERSION', '?')}`). "
             "Required fields are in every record of that type; the others appear when they apply.", ""]
    lines += [f"- `{name}` = `{_cell(value)}`" for name, value in alias.items() if name != "FORMAT_VERSION"]
    parts = detail_parts(source)
    if parts:
        lines.append("- In `results.bin`, not in the results.jsonl line (`DETAIL_PARTS`; read back into the record): "
                     + ", ".join(f"`{part}`" for part in parts))
    lines.append("")
    for shape in found:
        lines += shape_markdown(shape, known, alias)
    return "\n".join(lines)


if __name__ == "__main__":
    print(reference_markdown())
