"""litert-quantizer recipes: the named ones, recipe files, `rules:`, and what a recipe targets.

A recipe is the quantizer's list of {regex, operation, algorithm_key, op_config}; for each op the
quantizer takes the last entry whose regex matches the op's scope (its output tensor names, each
followed by ";") and whose operation is the op's or `*` — but silently skips an entry its policy
does not support for the op (`RecipeManager.get_quantization_configs`). `recipe_targets` reads a
recipe the way the quantizer does *without* that skip: the ops the recipe asks something of, what
it asks, and the policy's refusal where there is one, so a skipped op shows as targeted and left
float (harness.tflite.quantization).
"""

from __future__ import annotations

import ast
import difflib
import importlib.util
import re
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

from harness.errors import NotApplicable
from harness.tflite.quantization import Ask, OpQuant, Target, original_ops, read_ops

# friendly algorithm names (suite files) → litert-quantizer's AlgorithmName values
ALGORITHMS = {
    "min_max": "min_max_uniform_quantize", "octav": "OCTAV", "mse": "MSE", "gptq": "GPTQ",
    "hadamard": "DECOMPOSED_HADAMARD_ROTATION", "hadamard_custom_op": "HADAMARD_ROTATION", "oscar": "OSCAR",
    "weight_recovery": "dequantized_weight_recovery", "float_casting": "float_casting",
}
_NO_QUANTIZE = "no_quantize"
_NOT_RECIPES = {"AlgorithmName", "QuantGranularity", "TFLOperationName"}


@cache
def recipe_names() -> tuple[str, ...]:
    """The named recipes of the installed litert-quantizer (its `recipe` module's public functions
    and aliases), read from its source so listing them does not import the quantizer."""
    spec = importlib.util.find_spec("litert_quantizer")
    if spec is None or not spec.submodule_search_locations:
        return ()
    source = Path(next(iter(spec.submodule_search_locations))) / "recipe.py"
    tree = ast.parse(source.read_text(encoding="utf-8"))
    names = [node.name for node in tree.body if isinstance(node, ast.FunctionDef)]
    names += [t.id for node in tree.body if isinstance(node, ast.Assign) and isinstance(node.value, ast.Lambda)
              for t in node.targets if isinstance(t, ast.Name)]
    return tuple(sorted(n for n in names if not n.startswith("_") and n not in _NOT_RECIPES))


def unknown_recipe(name: str) -> str:
    close = difflib.get_close_matches(name, recipe_names(), n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    return f"unknown litert-quantizer recipe {name!r}{hint} (`bench list schemes` lists them)"


def named_recipe(name: str, component: str | None = None) -> list[dict[str, Any]]:
    """The quantizer's recipe `name` as its list of entries; a LiteRT-LM recipe (one recipe per model
    component) needs the `component` to take (NotApplicable without one; ValueError: not one of its own)."""
    from litert_quantizer import recipe as recipes

    built = getattr(recipes, name)()
    if not isinstance(built, dict):
        if component is not None:
            raise ValueError(f"recipe {name} is one recipe, not a LiteRT-LM recipe per component: drop `component`")
        return normalized(built)
    if component is None:
        raise NotApplicable(f"recipe {name} is a LiteRT-LM recipe for the model components {', '.join(built)}, "
                            "not for one .tflite model (give `component:`, e.g. tf_lite_prefill_decode for a decoder)")
    if component not in built:
        raise ValueError(f"recipe {name} has no component {component!r} (it has {', '.join(built)})")
    return normalized(built[component])


def normalized(recipe: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """A recipe as the quantizer's RecipeManager keeps it (entries checked, priority order)."""
    from litert_quantizer import recipe_manager

    manager = recipe_manager.RecipeManager()
    manager.load_quantization_recipe(list(recipe))
    return manager.get_quantization_recipe()


def with_algorithm(recipe: Sequence[dict[str, Any]], algorithm: str | None) -> list[dict[str, Any]]:
    """Every quantizing entry with `algorithm` (a key of ALGORITHMS) instead of its own."""
    if algorithm is None:
        return list(recipe)
    key = ALGORITHMS[algorithm]
    return normalized([{**e, "algorithm_key": key} if str(_value(e["algorithm_key"])) != _NO_QUANTIZE else e
                       for e in recipe])


def needs_calibration(recipe: Sequence[dict[str, Any]]) -> bool:
    from litert_quantizer import recipe_manager

    manager = recipe_manager.RecipeManager()
    manager.load_quantization_recipe(list(recipe))
    return bool(manager.need_calibration())


def describe(recipe: Sequence[dict[str, Any]]) -> list[str]:
    """One line per entry: `.* / * → int4 weights blockwise-32, float activations (min_max_uniform_quantize)`."""
    lines = []
    for entry in recipe:
        ask = entry_ask(entry)
        what = "float (no_quantize)" if ask is None else ask.describe()
        lines.append(f"{entry['regex']} / {_value(entry['operation'])} → {what}")
    return lines


def _value(item: Any) -> Any:
    return getattr(item, "value", item)


def entry_ask(entry: dict[str, Any]) -> Ask | None:
    """What a recipe entry asks of an op (None: keep it float)."""
    algorithm = str(_value(entry["algorithm_key"]))
    if algorithm == _NO_QUANTIZE:
        return None
    config = entry.get("op_config") or {}
    weights = config.get("weight_tensor_config") or {}
    activations = config.get("activation_tensor_config")
    granularity = str(_value(weights.get("granularity", "CHANNELWISE")))
    block = int(granularity.split("_")[1]) if granularity.startswith("BLOCKWISE_") else None
    return Ask(weights_bits=weights.get("num_bits"), weights_float=str(_value(weights.get("dtype", "INT"))) == "FLOAT",
               granularity="blockwise" if block else granularity.lower(),  # type: ignore[arg-type]
               block_size=block, activations=f"int{activations['num_bits']}" if activations else "float",
               algorithm=algorithm, dynamic=not activations and str(_value(config.get("compute_precision"))) == "INTEGER")


def _scope(op: OpQuant) -> str:
    return ";".join(op.outputs) + ";" if op.outputs else ""


def _matching(recipe: Sequence[dict[str, Any]], op: OpQuant, quantizer_op: str | None) -> dict[str, Any] | None:
    """The last entry matching the op, as the quantizer picks it before its support check."""
    chosen = None
    for entry in recipe:
        operation = str(_value(entry["operation"]))
        if re.search(entry["regex"], _scope(op)) and operation in ("*", quantizer_op):
            chosen = entry
    return chosen


@cache
def _quantizer_ops() -> dict[str, str]:
    """TFLite builtin op name → the quantizer's operation name (ops it knows)."""
    from litert_quantizer.utils import tfl_flatbuffer_utils

    from harness.tflite._flatbuffer import enum_names, schema

    builtins = enum_names(schema().BuiltinOperator)
    return {builtins[int(code)]: str(_value(name)) for code, name in tfl_flatbuffer_utils.TFL_OP_CODE_TO_NAME.items()
            if int(code) in builtins}


def recipe_targets(float_model: bytes, recipe: Sequence[dict[str, Any]]) -> list[Target]:
    """The ops of the float model the recipe asks something of, with the quantizer's refusal if any."""
    targets = []
    for op in original_ops(read_ops(float_model)):
        quantizer_op = _quantizer_ops().get(op.op)
        entry = _matching(recipe, op, quantizer_op)
        ask = entry_ask(entry) if entry is not None else None
        if entry is None or ask is None or not ask.applies_to(op) or _below_minimum(entry, op):
            continue
        targets.append(Target(op, ask, _refusal(entry, op, quantizer_op, ask)))
    return targets


def _below_minimum(entry: dict[str, Any] | None, op: OpQuant) -> bool:
    """The entry quantizes only weights of at least `min_weight_elements` (legacy recipes)."""
    minimum = int(((entry or {}).get("op_config") or {}).get("min_weight_elements") or 0)
    return op.weights is not None and op.elements < minimum


def _refusal(entry: dict[str, Any], op: OpQuant, quantizer_op: str | None, ask: Ask) -> str | None:
    """Why the quantizer will not do what the entry asks of the op (None: its policy accepts it)."""
    from litert_quantizer import algorithm_manager, qtyping

    if quantizer_op is None:
        return f"litert-quantizer does not quantize {op.op} ops (it leaves unknown ops float without a warning)"
    try:
        algorithm_manager.check_op_quantization_config(
            _value(entry["algorithm_key"]), qtyping.TFLOperationName(quantizer_op),
            qtyping.OpQuantizationConfig.from_dict(entry["op_config"]))
    except ValueError:
        return (f"litert-quantizer's policy has no {ask.describe()} for {quantizer_op}: it skips the op "
                "without a warning")
    return None
