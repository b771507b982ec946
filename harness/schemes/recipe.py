"""Any litert-quantizer recipe as a scheme: a named recipe, a recipe file, or `rules:`.

    {scheme: recipe, id: wi4_b32, recipe: dynamic_wi4b32_afp32}
    {scheme: recipe, id: wi4_octav, recipe: dynamic_wi4_afp32, algorithm: octav}
    {scheme: recipe, id: mine, recipe: recipes/mine.json}
    {scheme: recipe, id: mixed, rules: [{op: FULLY_CONNECTED, weights: 4, granularity: blockwise,
                                         block_size: 32, activations: dynamic},
                                        {regex: "logits", float: true}]}

Keras and SavedModel sources are converted to a float .tflite first (the float32 scheme's
conversion), so every source gets every recipe. Calibration is drawn when the recipe needs it
(static activations, GPTQ). The record's `quantization` says what the recipe really did
(harness.tflite.quantization); `recipe_coverage` below 1 fails the cell by default.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from harness.datasets._base import Samples
from harness.errors import HarnessError, NotApplicable
from harness.schemes import _quantizer, _recipes
from harness.schemes._base import SCHEMES, Scheme
from harness.schemes._converter import convert
from harness.schemes._quantizer import CalibratedOptions
from harness.tflite.quantization import Target

Algorithm = Literal["min_max", "octav", "mse", "gptq", "hadamard", "hadamard_custom_op", "oscar", "weight_recovery"]


class Rule(BaseModel):
    """One entry of `rules:`: ops whose scope matches `regex` and whose type is `op` (`*`: any)
    get `weights` bits with `activations` float (weight-only), dynamic, 8 or 16 (static) — or stay float."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    regex: str = Field(".*", description="matched (re.search) against the op's output tensor names, each + ';'")
    op: str = Field("*", description="the quantizer's operation name (FULLY_CONNECTED, CONV_2D, ...) or *")
    weights: Literal[2, 4, 8, 16] | None = Field(None, description="weight bits")
    granularity: Literal["channelwise", "tensorwise", "blockwise"] = "channelwise"
    block_size: Literal[32, 64, 128, 256] | None = Field(None, description="blockwise only")
    activations: Literal["float", "dynamic", 8, 16] | None = Field(None, description=(
        "float: weight-only (dequantized weights, float compute); dynamic: quantized on the fly; 8/16: static"))
    algorithm: Algorithm = "min_max"
    float: bool = Field(False, description="keep the matching ops float (no_quantize)")

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"regex {value!r} does not compile: {exc}") from None
        return value

    @field_validator("op")
    @classmethod
    def _known_op(cls, value: str) -> str:
        from litert_quantizer import qtyping

        known = [m.value for m in qtyping.TFLOperationName]
        if value not in known:
            close = difflib.get_close_matches(value, known, n=3)
            raise ValueError(f"unknown quantizer operation {value!r}" + (f"; did you mean {', '.join(close)}?" if close
                                                                       else f" (known: {', '.join(known)})"))
        return value

    @model_validator(mode="after")
    def _complete(self) -> Rule:
        if self.float:
            if self.weights is not None or self.activations is not None:
                raise ValueError("a `float: true` rule takes no weights or activations")
            return self
        if self.weights is None or self.activations is None:
            raise ValueError("give `weights` (bits) and `activations` (float, dynamic, 8 or 16), or `float: true`")
        if (self.granularity == "blockwise") != (self.block_size is not None):
            raise ValueError("`block_size` goes with `granularity: blockwise`, and blockwise needs one")
        try:
            add_rule(_manager(), self)  # the quantizer's own check of the combination
        except ValueError as exc:
            raise ValueError(f"litert-quantizer refuses this rule: {str(exc).split('. Error:')[0]}") from None
        return self


def _manager() -> Any:
    from litert_quantizer import recipe_manager

    return recipe_manager.RecipeManager()


def add_rule(manager: Any, rule: Rule) -> None:
    """Add one rule to a RecipeManager with the quantizer's own configuration helpers."""
    if rule.float:
        manager.add_quantization_config(regex=rule.regex, operation_name=rule.op, algorithm_key="no_quantize")
        return
    algorithm = _recipes.ALGORITHMS[rule.algorithm]
    granularity = f"BLOCKWISE_{rule.block_size}" if rule.block_size else rule.granularity.upper()
    common = {"regex": rule.regex, "operation_name": rule.op, "algorithm_key": algorithm}
    if rule.activations in (8, 16):
        manager.add_static_config(activation_num_bits=rule.activations, weight_num_bits=rule.weights,
                                  weight_granularity=granularity, **common)
    elif rule.activations == "dynamic":
        manager.add_dynamic_config(num_bits=rule.weights, granularity=granularity, **common)
    else:
        manager.add_weight_only_config(num_bits=rule.weights, granularity=granularity, **common)


class RecipeOptions(CalibratedOptions):
    recipe: str | None = Field(None, description=(
        "a named litert-quantizer recipe (`bench list schemes`), or a recipe .json file (relative to the suite)"))
    rules: list[Rule] | None = Field(None, description="the recipe as rules, applied in order (later rules win)")
    algorithm: Algorithm | None = Field(None, description="a named recipe's algorithm instead of its own")
    component: str | None = Field(None, description=(
        "a LiteRT-LM recipe (one per model component, e.g. gemma4_mixed48): the component's recipe to apply "
        "(tf_lite_prefill_decode for a `generative:` decoder)"))
    loaded: list[dict[str, Any]] | None = Field(None, description="(set by the loader) a recipe file's entries")

    @field_validator("recipe")
    @classmethod
    def _known_recipe(cls, value: str | None) -> str | None:
        if value is not None and not value.endswith(".json") and value not in _recipes.recipe_names():
            raise ValueError(_recipes.unknown_recipe(value))
        return value

    @model_validator(mode="before")
    @classmethod
    def _load_file(cls, data: Any, info: ValidationInfo) -> Any:
        if not isinstance(data, dict):
            return data
        if "loaded" in data and (info.context or {}).get("base_dir") is not None:
            raise ValueError("`loaded` is set from the recipe file, not in the suite")
        if "loaded" in data or not str(data.get("recipe") or "").endswith(".json"):
            return data
        base = Path((info.context or {}).get("base_dir") or ".")
        return {**data, "loaded": read_recipe_file(base / data["recipe"])}

    @model_validator(mode="after")
    def _one_recipe(self) -> RecipeOptions:
        if (self.recipe is None) == (self.rules is None):
            raise ValueError("give `recipe` (a name or a .json file) or `rules`, one of them")
        if not self.rules and self.rules is not None:
            raise ValueError("`rules` is empty: give at least one rule")
        if self.loaded is not None and not str(self.recipe).endswith(".json"):
            raise ValueError("`loaded` goes with a recipe file")
        if self.algorithm is not None and self.recipe is None:
            raise ValueError("`algorithm` applies to a named recipe or file; a rule takes its own `algorithm`")
        if self.component is not None:
            if self.recipe is None or self.loaded is not None:
                raise ValueError("`component` applies to a named LiteRT-LM recipe (gemma4_mixed48, ...)")
            _recipes.named_recipe(self.recipe, self.component)  # ValueError: not one of its components
        return self


def read_recipe_file(path: Path) -> list[dict[str, Any]]:
    """A recipe .json file's entries, checked by the quantizer (ValueError naming the file)."""
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"cannot read recipe file {path}: {exc.strerror}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"recipe file {path} is not JSON: {exc}") from None
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ValueError(f"recipe file {path}: a recipe is a JSON list of entries (regex, operation, ...)")
    try:
        return json.loads(json.dumps(_recipes.normalized(entries)))
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"recipe file {path}: litert-quantizer refuses it ({type(exc).__name__}: {exc})") from None


def build_recipe(options: RecipeOptions) -> list[dict[str, Any]]:
    """The quantizer's recipe the options describe."""
    if options.rules is not None:
        manager = _manager()
        for rule in options.rules:
            add_rule(manager, rule)
        return manager.get_quantization_recipe()
    recipe = options.loaded if options.loaded is not None else _recipes.named_recipe(str(options.recipe),
                                                                                      options.component)
    return _recipes.with_algorithm(recipe, options.algorithm)


def _summary() -> str:
    names = _recipes.recipe_names()
    return ("a litert-quantizer recipe: `recipe: NAME` (" + (", ".join(names) or "litert-quantizer not installed")
            + "), `recipe: file.json` or `rules:`; `algorithm:` octav, mse, gptq, hadamard, ...")


@SCHEMES.register("recipe", _summary())
class Recipe(Scheme):
    Options = RecipeOptions
    needs_calibration = True  # when the recipe does: see `calibrates`
    # A recipe claims exactly its own rules, op by op: the record's `quantization` and the default
    # `recipe_coverage: {min: 1.0}` check them; the fixed claims of the classic schemes do not apply.
    claims = ()

    def calibrates(self, options: RecipeOptions) -> bool:
        try:
            return _recipes.needs_calibration(build_recipe(options))
        except NotApplicable:  # a multi-model recipe: the cell says so
            return False

    def from_saved_model(self, saved_model: Path, options: RecipeOptions, calibration: Samples | None) -> bytes:
        return self.from_tflite(convert(saved_model, lambda converter, tf: None), options, calibration)

    def from_tflite(self, model: bytes, options: RecipeOptions, calibration: Samples | None) -> bytes:
        recipe = build_recipe(options)
        try:
            return _quantizer.quantize(model, recipe, calibration, options.ranges)
        except ValueError as exc:  # the quantizer refuses the recipe for this model (e.g. a block size)
            raise HarnessError(f"litert-quantizer refused the recipe for this model: {exc}") from exc

    def targets(self, float_model: Callable[[], bytes], options: RecipeOptions) -> tuple[list[Target], list[str]]:
        """The ops the recipe asks something of in the float model, and the recipe, one line per entry."""
        recipe = build_recipe(options)
        return _recipes.recipe_targets(float_model(), recipe), _recipes.describe(recipe)
