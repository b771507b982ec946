"""The harness's packages are layers, bottom to top, with no circle.

Every module under harness/ is parsed with `ast`; every import counts (module level, inside a function, under
`if TYPE_CHECKING:`). A unit is a subpackage (harness/devices/...) or a top-level module (harness/stats.py).
A unit may import units of its own layer or of a layer below it, never one above, and the units of one layer
never import each other in a circle. docs/extending/index.md describes the same order.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Bottom to top. Plugins may import the bottom, config and tflite, and each other only downward in this order.
LAYERS: tuple[tuple[str, ...], ...] = (
    # the bottom: the typed record, statistics, errors, the registry, the cache, versions, input samples and
    # the per-output fidelity numbers (pure NumPy); `harness` is the package's own __init__ (its version)
    ("harness", "errors", "registry", "record", "stats", "cache", "versions", "samples", "fidelity", "heap"),
    ("config",),  # the suite file's shape: schema and YAML line tracking
    ("claims",),  # what a scheme claims about its file, checked against the record's audit (verdicts: the top)
    ("tflite",),  # reading .tflite files and the host LiteRT runtime
    ("datasets",),  # plugins, each a registry, in their one order
    ("models",),
    ("tasks",),
    ("schemes",),
    ("numerics",),  # diagnose, validate and recover drive schemes and tasks
    ("devices",),
    # the top: the loader, planning, running, storing, reporting and the command line
    ("suite", "plan", "pipeline", "results", "history", "compare", "verdicts", "_latency", "runner", "executors",
     "report", "_console", "_interrupt", "cli", "cli_devices", "cli_numerics", "cli_reports"),
)

# Circles being removed on another branch, each with why it is tolerated until then. An entry whose circle is
# gone fails test_known_circles_are_still_there: delete it then.
KNOWN_CIRCLES: dict[tuple[str, ...], str] = {}


@dataclass(frozen=True)
class Import:
    source: str  # the importing module, e.g. harness.devices._base
    target: str  # the imported module, e.g. harness.config.schema
    where: str  # file:line

    def __str__(self) -> str:
        return f"{self.where}: {self.source} → {self.target}"


def module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_module(name: str, root: Path) -> bool:
    """Whether `name` (harness.x.y) is a module or package under `root`."""
    path = root.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def absolute(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    """The module a `from ... import` names, relative imports resolved."""
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def targets(node: ast.AST, module: str, is_package: bool, root: Path) -> list[str]:
    """The modules an import statement imports: `from harness import results` imports harness.results."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    base = absolute(node, module, is_package)
    named = [f"{base}.{alias.name}" for alias in node.names if is_module(f"{base}.{alias.name}", root)]
    return named if len(named) == len(node.names) else [base, *named]


def imports(root: Path) -> Iterator[Import]:
    """Every import of a harness module by a harness module under `root` (the folder holding harness/)."""
    for path in sorted((root / "harness").rglob("*.py")):
        module, where = module_name(path, root), path.relative_to(root)
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            for target in targets(node, module, path.name == "__init__.py", root):
                if target == "harness" or target.startswith("harness."):
                    yield Import(module, target, f"{where}:{node.lineno}")


def unit(module: str) -> str:
    """harness.devices.android.device → devices; harness.stats → stats; harness → harness."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def layer_of(name: str) -> int:
    for index, units in enumerate(LAYERS):
        if name in units:
            return index
    raise KeyError(name)


def unplaced(root: Path) -> list[str]:
    """Units under `root` that LAYERS does not place."""
    found = {unit(module_name(path, root)) for path in (root / "harness").rglob("*.py")}
    return sorted(name for name in found if not any(name in units for units in LAYERS))


def upward(found: list[Import]) -> list[str]:
    """Each import of a unit in a higher layer, named: file:line: from → to (layer names)."""
    return [f"{edge} imports upward: {unit(edge.target)!r} is above {unit(edge.source)!r}" for edge in found
            if layer_of(unit(edge.target)) > layer_of(unit(edge.source))]


def cycles(found: list[Import]) -> list[list[str]]:
    """The units that import each other in a circle, within one layer (strongly connected components)."""
    graph: dict[str, set[str]] = {}
    for edge in found:
        a, b = unit(edge.source), unit(edge.target)
        if a != b and layer_of(a) == layer_of(b):
            graph.setdefault(a, set()).add(b)
            graph.setdefault(b, set())
    return [sorted(component) for component in strongly_connected(graph) if len(component) > 1]


def strongly_connected(graph: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's algorithm, iteratively over a small graph."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    components: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for succ in sorted(graph[node]):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component: set[str] = set()
            while node not in component:
                component.add(stack.pop())
            components.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def circle_report(found: list[Import], members: list[str]) -> str:
    edges = [str(edge) for edge in found if unit(edge.source) != unit(edge.target)
             and unit(edge.source) in members and unit(edge.target) in members]
    return f"{' ⇄ '.join(members)} import each other in a circle:\n  " + "\n  ".join(edges)


def violations(root: Path, known: Mapping[tuple[str, ...], str] = KNOWN_CIRCLES) -> list[str]:
    """Every breach of the layers under `root`, one message each (empty: the layers hold), except the circles
    in `known`."""
    missing = unplaced(root)
    if missing:
        return [(f"harness units {missing} are in no layer: place them in LAYERS (tests/test_layers.py) and "
                "docs/extending/index.md")]
    found = list(imports(root))
    circles = [members for members in cycles(found) if tuple(members) not in known]
    return upward(found) + [circle_report(found, members) for members in circles]


def test_the_harness_packages_are_layers_without_a_circle() -> None:
    problems = violations(ROOT)
    assert not problems, "\n".join(problems)


def test_known_circles_are_still_there() -> None:
    present = {tuple(members) for members in cycles(list(imports(ROOT)))}
    gone = [" ⇄ ".join(members) for members in KNOWN_CIRCLES if members not in present]
    assert not gone, f"no longer circles: {gone}; delete them from KNOWN_CIRCLES (tests/test_layers.py)"


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in {"harness/__init__.py": "", **files}.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_an_upward_import_is_named_with_file_line_and_both_modules(tmp_path: Path) -> None:
    root = write(tmp_path, {"harness/config/__init__.py": "",
                            "harness/config/schema.py": "import os\n\ndef f():\n    from harness.devices import _base\n",
                            "harness/devices/__init__.py": "", "harness/devices/_base.py": "",
                            "harness/errors.py": ""})
    assert violations(root) == [("harness/config/schema.py:4: harness.config.schema → harness.devices._base "
                                "imports upward: 'devices' is above 'config'")]


@pytest.mark.parametrize("guard", ["if TYPE_CHECKING:\n    ", ""])
def test_a_circle_within_a_layer_names_every_import_in_it(tmp_path: Path, guard: str) -> None:
    root = write(tmp_path, {"harness/results.py": f"from typing import TYPE_CHECKING\n{guard}from harness import plan\n",
                            "harness/plan.py": "from .results import x\n",
                            "harness/stats.py": "from harness.errors import HarnessError\n", "harness/errors.py": ""})
    [report] = violations(root, known={})
    assert report.startswith("plan ⇄ results import each other in a circle")
    assert "harness/plan.py:1: harness.plan → harness.results" in report
    assert f"harness/results.py:{3 if guard else 2}: harness.results → harness.plan" in report


def test_a_module_in_no_layer_is_refused(tmp_path: Path) -> None:
    root = write(tmp_path, {"harness/newthing.py": ""})
    assert "['newthing'] are in no layer" in violations(root)[0]
