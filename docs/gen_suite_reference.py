"""The suite file reference, generated from the code that validates suite files: the schema
(harness/config/schema.py), each registered dataset kind's, builder's, task's, scheme's and device kind's
options model, and every metric a threshold may name.

Run by the MkDocs hook (docs/hooks.py) on every build; `python docs/gen_suite_reference.py` prints it.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

ROOT = Path(__file__).resolve().parent.parent


def _literal(text: str) -> str:
    """Text shown as written in a Markdown table cell: no HTML, emphasis, links or table breaks."""
    text = text.replace("\\", "\\\\").replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.replace("*", "\\*").replace("_", "\\_").replace("[", "\\[").replace("|", "\\|")


def prose(text: str) -> str:
    """A description: `code spans` kept as code, the rest literal."""
    parts = " ".join(text.split()).split("`")
    return "`".join(part.replace("|", "\\|") if i % 2 else _literal(part) for i, part in enumerate(parts))


def cell(text: str) -> str:
    """A one-line literal (whitespace collapsed)."""
    return _literal(" ".join(text.split()))


def code(text: str) -> str:
    return "`" + text.replace("|", "\\|").replace("`", "'") + "`"


def type_name(annotation: Any) -> str:
    """`int | None`, `list[str]`, `Literal['a', 'b']`, a model's class name."""
    if isinstance(annotation, type) and not getattr(annotation, "__args__", None):
        return annotation.__name__
    text = re.sub(r"\b(?:[a-z_][a-z0-9_]*\.)+([A-Za-z_]\w*)", r"\1", repr(annotation)).replace("NoneType", "None")
    return re.sub(r"Annotated\[(\w+), [^\[\]]*(?:\[[^\]]*\])?[^\[\]]*\]", r"\1", text)


def nested_models(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models a field's type holds (for their own sections)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in getattr(annotation, "__args__", ()) for m in nested_models(arg)]


def default_text(info: FieldInfo) -> str:
    if info.is_required():
        return "required"
    if info.default_factory is not None:
        return code(repr(info.default_factory()))  # type: ignore[call-arg]
    if info.default is PydanticUndefined:
        return ""
    if isinstance(info.default, BaseModel):
        return "(its defaults)"
    return code(repr(info.default)) if info.default is not None else "none"


def constraints(info: FieldInfo) -> str:
    """`≥ 1`, `< 150`, `pattern ...`, `at least 1 item` from the field's metadata."""
    symbols = {"ge": "≥", "gt": ">", "le": "≤", "lt": "<"}
    found = []
    for item in info.metadata:
        for attr, symbol in symbols.items():
            if getattr(item, attr, None) is not None:
                found.append(f"{symbol} {getattr(item, attr)}")
        if getattr(item, "min_length", None):
            found.append(f"at least {item.min_length} item(s)")
        if getattr(item, "pattern", None):
            found.append(f"matches {code(item.pattern)}")
    return ", ".join(found)


def model_rows(model: type[BaseModel]) -> list[str]:
    rows = ["| key | type | default | constraint | meaning |", "|---|---|---|---|---|"]
    for name, info in model.model_fields.items():
        key = info.alias or name
        rows.append(f"| `{key}` | {code(type_name(info.annotation))} | {default_text(info)} | {constraints(info)} "
                    f"| {prose(info.description or '')} |")
    return rows


def model_section(model: type[BaseModel], title: str, seen: set[type], level: str = "###") -> list[str]:
    """A model's table, then the tables of the models its fields hold (each once on the page)."""
    seen.add(model)
    lines = [f"{level} {title}", ""]
    doc = (model.__doc__ or "").strip()
    if doc and not doc.startswith(("!!!", "Usage docs")) and model.__doc__ is not BaseModel.__doc__:
        lines += [prose(doc.split("\n\n")[0]), ""]
    if getattr(model, "model_config", {}).get("extra") == "allow":
        lines += ["Other keys are the options of the registered implementation it names (below).", ""]
    lines += [*model_rows(model), ""] if model.model_fields else ["No keys.", ""]
    for info in model.model_fields.values():
        for inner in nested_models(info.annotation):
            if inner not in seen:
                lines += model_section(inner, f"`{inner.__name__}`", seen, level)
    return lines


def schema_markdown() -> str:
    """Every key of a suite file, from the top-level `Suite` model down."""
    sys.path.insert(0, str(ROOT))
    from harness.config.schema import Suite

    lines = ["Generated from `harness/config/schema.py`: every key, its type, default and constraint. "
             "An unknown key anywhere is an error.", ""]
    return "\n".join(lines + model_section(Suite, "`Suite` (the file)", set()))


def registries() -> list[tuple[str, str, Any]]:
    """(suite key, `bench list` word, registry) of every plugin kind."""
    from harness.datasets import DATASETS
    from harness.devices import DEVICE_KINDS
    from harness.models import BUILDERS
    from harness.schemes import SCHEMES
    from harness.tasks import TASKS

    return [("datasets: {NAME: {kind: K, ...}}", "datasets", DATASETS),
            ("models: [{builder: B, ...}]", "models", BUILDERS),
            ("task: {kind: K, ...}", "tasks", TASKS),
            ("schemes: [{scheme: S, ...}]", "schemes", SCHEMES),
            ("devices/NAME.yaml: {kind: K, ...}", "devices", DEVICE_KINDS)]


def options_markdown() -> str:
    """Each registered implementation's own keys (its `Options` model)."""
    sys.path.insert(0, str(ROOT))
    lines = ["Generated from the registries (`bench list ...`): each implementation's `Options` model, "
             "which validates the extra keys of its entry.", ""]
    seen: set[type] = set()
    for where, word, registry in registries():
        lines += [f"### {word}", "", f"Where: `{where}`.", ""]
        for name, summary in registry.summaries():
            lines += [f"#### {word}: `{name}`", "", prose(summary), ""]
            options = registry.get(name).Options
            extra = [f for f in options.model_fields if f != "kind"]
            lines += [*_only(model_rows(options), extra), ""] if extra else ["No options.", ""]
            lines += _nested(options, seen)
    return "\n".join(lines)


def _only(rows: list[str], keys: list[str]) -> list[str]:
    return rows[:2] + [row for row in rows[2:] if row.split("`")[1] in keys]


def _nested(model: type[BaseModel], seen: set[type]) -> list[str]:
    lines = []
    for info in model.model_fields.values():
        for inner in nested_models(info.annotation):
            if inner not in seen:
                lines += model_section(inner, f"`{inner.__name__}`", seen, "#####")
    return lines


def metrics_markdown() -> str:
    """Every metric name a threshold may bound (harness.tasks.all_metrics)."""
    sys.path.insert(0, str(ROOT))
    from harness.tasks._base import all_metrics

    lines = ["Generated from `harness/tasks/_base.py` and the registered tasks: every name `thresholds:` accepts.", "",
             "| metric | better | vs float | meaning |", "|---|---|---|---|"]
    for name, metric in sorted(all_metrics().items()):
        better = "higher" if metric.higher_is_better else "lower"
        lines.append(f"| `{name}` | {better} | {'yes' if metric.vs_float else ''} | {prose(metric.description)} |")
    return "\n".join(lines + [""])


if __name__ == "__main__":
    print(schema_markdown(), options_markdown(), metrics_markdown(), sep="\n\n")
