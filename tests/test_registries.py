"""Contract tests over every registry's names: each plugin subclasses its kind's base class and declares,
consistently, what the runner, the report and the CLI read from it (issue 22). Nothing here builds a model."""

from __future__ import annotations

import ast
import typing
from pathlib import Path

import pytest
from pydantic import BaseModel

from harness.datasets import DATASETS, DatasetLoader, LoaderOptions
from harness.devices import DEVICE_KINDS, BinaryDevice, Device, DeviceKind
from harness.devices._base import DeviceOptions
from harness.models import BUILDERS, BuilderOptions, ModelBuilder
from harness.registry import Registry
from harness.report.overview import FAMILY_COLOURS, scheme_family
from harness.report.rows import build_rows
from harness.schemes import BASELINE, FAMILIES, SCHEMES, Scheme, SchemeOptions
from harness.schemes.training import TECHNIQUES
from harness.tasks import TASKS, Task, TaskOptions, agreement_metrics, headline_metrics
from harness.tasks._base import OUTPUT_FIDELITY
from harness.tflite.quantization import Ask
from tests.report.runs import cell

HARNESS = Path(__file__).resolve().parents[1] / "harness"
SHARED = {m.name for m in OUTPUT_FIDELITY}  # the per-output numbers every task's records have
KINDS: dict[str, tuple[Registry, type, type[BaseModel]]] = {
    "scheme": (SCHEMES, Scheme, SchemeOptions), "task": (TASKS, Task, TaskOptions),
    "dataset kind": (DATASETS, DatasetLoader, LoaderOptions), "model builder": (BUILDERS, ModelBuilder, BuilderOptions),
    "device kind": (DEVICE_KINDS, DeviceKind, DeviceOptions),
}
EVERY_NAME = [(kind, name) for kind, (registry, _, _) in KINDS.items() for name in registry.names()]


# -- every plugin, whatever its kind ---------------------------------------------------------------
@pytest.mark.parametrize("kind, name", EVERY_NAME)
def test_every_plugin_subclasses_its_base_and_has_options_and_a_summary(kind: str, name: str) -> None:
    registry, base, options = KINDS[kind]
    plugin = registry.get(name)
    assert isinstance(plugin, base)
    assert issubclass(plugin.Options, options)
    assert dict(registry.summaries())[name].strip(), f"{kind} {name!r} has no one-line summary for `bench list`"


def test_a_plugin_that_does_not_subclass_its_base_is_refused_at_registration() -> None:
    registry: Registry[Task] = Registry("task", base=Task)
    with pytest.raises(TypeError, match=r"task 'loose': \S*Loose does not subclass harness\.tasks\._base\.Task"):
        @registry.register("loose", "duck-typed")
        class Loose:  # noqa: B903 - the point is what it lacks
            metrics = ()


def _plugin_bases() -> list[type]:
    return [Scheme, Task, DatasetLoader, ModelBuilder, Device, BinaryDevice, DeviceKind]


def _members() -> set[str]:
    """Every member a plugin base class declares (an optional one has its default there)."""
    names = {n for base in _plugin_bases() for n in [*vars(base), *vars(base).get("__annotations__", {})]
             if not n.startswith("_")}
    return names - {"name"}  # `name` is everyone's attribute


def test_no_plugin_member_is_looked_up_by_name() -> None:
    """A member the base declares is read as an attribute: getattr(plugin, "member", default) would hide a
    plugin that lacks it and let a misspelt override pass quietly."""
    members, found = _members(), []
    for path in sorted(HARNESS.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in {"getattr", "hasattr"} \
                    and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant) and node.args[1].value in members:
                found.append(f"{path.relative_to(HARNESS.parent)}:{node.lineno} {node.func.id}(..., {node.args[1].value!r})")
    assert not found, "\n".join(found)


# -- schemes -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", SCHEMES.names())
def test_every_scheme_declares_its_family_training_and_diagnosis(name: str) -> None:
    scheme = SCHEMES.get(name)
    assert scheme.family in FAMILIES and scheme.family in FAMILY_COLOURS and scheme_family(name) == scheme.family
    assert (scheme.family == "baseline") == (name == BASELINE)
    assert scheme.needs_training == (scheme.family in ("training-time", "combined"))
    assert scheme.ask is None or isinstance(scheme.ask, Ask)
    if scheme.debugged:  # TF's QuantizationDebugger re-creates a calibrated TFLiteConverter conversion
        assert scheme.needs_calibration and not scheme.needs_training
        assert type(scheme).from_saved_model is not Scheme.from_saved_model
    if not scheme.needs_calibration:
        assert scheme.calibrates(scheme.Options.model_construct()) is False


def test_every_family_has_a_colour_and_the_report_knows_no_other() -> None:
    assert set(FAMILY_COLOURS) == set(FAMILIES)
    assert {SCHEMES.get(name).family for name in SCHEMES.names()} == set(FAMILIES)
    assert scheme_family("a_scheme_since_removed") == "post-training"


def test_the_schemes_say_what_the_names_used_to() -> None:
    """What the report, `bench diagnose` and the record's `quantization` keyed on names before, now declared."""
    family = {name: SCHEMES.get(name).family for name in SCHEMES.names()}
    assert family["float32"] == "baseline" and family["int8"] == family["recipe"] == "post-training"
    assert family["qat"] == family["prune+cluster"] == family["cluster+qat"] == family["prune+cluster+qat"] == "training-time"
    assert family["prune+int8"] == family["cluster+float16"] == "combined"
    assert [n for n in SCHEMES.names() if SCHEMES.get(n).debugged] == ["int8", "int8_only"]
    assert sorted(n for n in SCHEMES.names() if SCHEMES.get(n).ask is not None) == [
        "dynamic_range", "float16", "int16x8", "int8", "int8_only"]
    assert [n for n in SCHEMES.names() if not SCHEMES.get(n).converter_float_layers] == ["int16x8"]


@pytest.mark.parametrize("technique", list(TECHNIQUES))
def test_every_training_technique_has_its_scheme_and_its_pairs(technique: str) -> None:
    assert technique in SCHEMES and SCHEMES.get(technique).family == "training-time"
    pairs = [n for n in SCHEMES.names() if n.startswith(f"{technique}+") and SCHEMES.get(n).family == "combined"]
    if TECHNIQUES[technique].pairs_with_post_training:
        posts = [n for n in SCHEMES.names() if SCHEMES.get(n).family == "post-training"]
        assert sorted(pairs) == sorted(f"{technique}+{post}" for post in posts)
    else:
        assert pairs == []


# -- tasks -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", TASKS.names())
def test_every_task_declares_a_headline_and_agreement_among_its_own_metrics(name: str) -> None:
    task = TASKS.get(name)
    own = {m.name: m for m in task.metrics}
    assert len(own) == len(task.metrics), "a metric named twice"
    assert task.headline and set(task.headline) <= set(own)
    assert task.agreement is None or own[task.agreement].vs_float
    others = {m.name for other in TASKS.names() if other != name for m in TASKS.get(other).metrics}
    assert not (set(task.headline) - SHARED) & others, "another task's records would take this headline"


@pytest.mark.parametrize("name", TASKS.names())
def test_a_record_of_every_metric_of_a_task_leads_with_its_first_headline(name: str) -> None:
    task = TASKS.get(name)
    baseline, record = cell("m", BASELINE), cell("m", "int8")
    for each in (baseline, record):
        each["metrics"] = {m.name: 0.5 for m in task.metrics}
    row = build_rows([baseline, record])[1]
    assert row.headline == task.headline[0] and row.value == 0.5
    assert row.agreement == (0.5 if task.agreement else None)


def test_the_headline_order_puts_the_shared_numbers_last() -> None:
    order = headline_metrics()
    assert order[-1] == "snr_db" and all(m not in SHARED for m in order[: -len(SHARED & set(order))])
    assert set(agreement_metrics()) == {TASKS.get(n).agreement for n in TASKS.names()} - {None}


# -- datasets and builders ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", DATASETS.names())
def test_every_dataset_kind_names_its_file_options(name: str) -> None:
    loader = DATASETS.get(name)
    assert set(loader.files) <= set(loader.Options.model_fields), "a file option the options do not have"
    for field in loader.files:
        assert str in typing.get_args(loader.Options.model_fields[field].annotation) + (
            loader.Options.model_fields[field].annotation,), f"{field} is not a path (a string)"


# -- device kinds ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", DEVICE_KINDS.names())
def test_every_device_kind_opens_a_device_and_takes_its_kind_key(name: str) -> None:
    kind = DEVICE_KINDS.get(name)
    opened = typing.get_type_hints(type(kind).open)["return"]
    assert isinstance(opened, type) and issubclass(opened, Device)
    assert kind.Options.model_fields["kind"].default == name
    for member in ("describe", "measure_latency"):  # required: the base only raises
        assert getattr(opened, member) is not getattr(Device, member), f"{opened.__name__} lacks {member}"
