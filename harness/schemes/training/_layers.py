"""Which layers a training-time technique wraps, and why the others stay as they are.

TFMOT's documented way to optimize part of a model: clone it with
`tf_keras.models.clone_model(model, clone_function=...)`, wrapping the chosen layers
(`prune_low_magnitude`, `cluster_weights`, `quantize_annotate_layer`) and returning the
others unchanged. A technique here wraps every layer TFMOT supports that has something to
optimize, restricted by the scheme option `layers:`; the rest are left untouched and
listed with the reason (a layer TFMOT has no config for: `Rescaling`, `TFOpLambda`, custom
classes; a layer `layers:` did not select). Supported layers with nothing to optimize
(pooling, activations, batch norm for pruning) are only counted. A model where nothing can
be wrapped is `n/a`.

`layers:` takes a regex on layer names (`layers: "block_1[56]_"`), a list of layer class
names (`layers: [Conv2D, Dense]`), or both plus `first:` / `last:` N of the layers they
select, in model order: `layers: {types: [Conv2D], last: 3}` clusters the last three
Conv2D layers.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_serializer, model_validator

from harness.errors import NotApplicable
from harness.schemes._base import SchemeOptions

# A technique's verdict on one layer: True = wrap it, None = nothing to optimize (counted only),
# a string = why TFMOT cannot wrap it (listed as untouched).
Verdict = bool | str | None


class LayerSelection(BaseModel):
    """`layers:` of a training-time scheme: which layers its techniques may wrap."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    names: str | None = Field(None, description="regex searched in each layer name")
    types: tuple[str, ...] | None = Field(None, description="layer class names, exactly (Conv2D is not "
                                                             "DepthwiseConv2D)")
    first: int | None = Field(None, ge=1, description="only the first N selected layers, in model order")
    last: int | None = Field(None, ge=1, description="only the last N selected layers, in model order")

    @model_validator(mode="before")
    @classmethod
    def _short_forms(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"names": value}
        if isinstance(value, (list, tuple)):
            return {"types": value}
        return value

    @field_validator("names")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a regular expression: {exc}") from exc
        return value

    @model_validator(mode="after")
    def _one_end(self) -> LayerSelection:
        if self.first is not None and self.last is not None:
            raise ValueError("give `first` or `last`, not both")
        return self

    def matches(self, layer: Any) -> bool:
        return ((self.names is None or re.search(self.names, layer.name) is not None)
                and (self.types is None or type(layer).__name__ in self.types))

    def describe(self) -> str:
        return ", ".join(f"{k}: {list(v) if isinstance(v, tuple) else v}"
                         for k, v in self.model_dump(exclude_none=True).items())


class TechniqueOptions(SchemeOptions):
    """Options every technique takes (one `layers:` for the whole chain of a combined scheme)."""

    layers: LayerSelection | None = Field(None, description="restrict the techniques to these layers")

    @model_serializer(mode="wrap")
    def _without_default_layers(self, handler: Any) -> dict[str, Any]:
        # unset `layers` stays out of cache keys: models fine-tuned before the option existed are reused
        data = handler(self)
        if self.layers is None:
            data.pop("layers", None)
        return data


@dataclass
class Plan:
    """The layers a technique wraps (by name) and the record of those it leaves untouched."""

    wrap: list[str] = field(default_factory=list)
    untouched: list[dict[str, str]] = field(default_factory=list)
    nothing_to_wrap: int = 0

    def record(self) -> dict[str, Any]:
        return {"wrapped": self.wrap, "untouched": self.untouched, "nothing_to_wrap": self.nothing_to_wrap}


def plan(model: Any, technique: str, verdict: Callable[[Any], Verdict], selection: LayerSelection | None) -> Plan:
    """Which top-level layers of `model` the technique wraps; raise NotApplicable when none."""
    import tf_keras

    result, candidates = Plan(), []
    for layer in model.layers:
        if isinstance(layer, tf_keras.layers.InputLayer):
            continue
        answer = _nested_verdict(layer, technique) or verdict(layer)
        if isinstance(answer, str):
            result.untouched.append(_untouched(layer, answer))
        elif answer is None:
            result.nothing_to_wrap += 1
        else:
            candidates.append(layer)
    chosen = _select(candidates, selection)
    for layer in candidates:
        if layer in chosen:
            result.wrap.append(layer.name)
        elif selection is not None:  # without a selection, every candidate is chosen
            result.untouched.append(_untouched(layer, f"not selected by `layers: {{{selection.describe()}}}`"))
    if not result.wrap:
        raise NotApplicable(f"{technique}: no layer of model {model.name!r} can be wrapped"
                            f"{_why(result, selection)}")
    return result


def declined_kernel(layer: Any, technique: str) -> str | None:
    """Why a layer TFMOT's registry maps to no weights still keeps a kernel as it is (DepthwiseConv2D:
    TFMOT lists it with no prunable/clusterable weights by design), so the record names it."""
    if getattr(layer, "depthwise_kernel", None) is not None and not hasattr(layer, "pointwise_kernel"):
        return (f"TFMOT's {technique} registry lists no weights for {type(layer).__name__} "
                f"(its depthwise kernel is kept as it is)")
    return None


def _nested_verdict(layer: Any, technique: str) -> str | None:
    if type(layer).__name__ in ("Functional", "Sequential", "Model"):
        return f"a nested model: {technique} wraps the layers of the outer model only"
    return None


def _select(candidates: list[Any], selection: LayerSelection | None) -> list[Any]:
    if selection is None:
        return candidates
    chosen = [layer for layer in candidates if selection.matches(layer)]
    if selection.first is not None:
        return chosen[:selection.first]
    return chosen[-selection.last:] if selection.last is not None else chosen


def _untouched(layer: Any, reason: str) -> dict[str, str]:
    return {"layer": layer.name, "class": type(layer).__name__, "reason": reason}


def _why(result: Plan, selection: LayerSelection | None) -> str:
    reasons = sorted({f"{row['class']}: {row['reason']}" for row in result.untouched})
    if not reasons:
        return " (no layer has weights it optimizes)"
    shown = "; ".join(reasons[:5]) + ("; ..." if len(reasons) > 5 else "")
    return f" ({shown})" if selection is None else f" with `layers: {{{selection.describe()}}}` ({shown})"


def clone_wrapped(model: Any, chosen: Plan, wrap: Callable[[Any], Any]) -> Any:
    """`model` with the planned layers wrapped (TFMOT's `clone_model(..., clone_function=...)` recipe)."""
    import tf_keras

    names = set(chosen.wrap)
    return tf_keras.models.clone_model(model, clone_function=lambda layer: wrap(layer) if layer.name in names
                                       else layer)
