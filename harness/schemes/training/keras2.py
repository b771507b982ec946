"""How a model reaches tf_keras (Keras 2), which TensorFlow Model Optimization needs.

TFMOT wraps Keras 2 layers only. A model reaches tf_keras in one of three ways:

* built-in builders take the Keras module: `BUILDERS.get(name).build(tf_keras, options)`
  builds the same architecture in Keras 2 (see `harness.models._base`);
* a Keras 3 `.keras` / `.h5` file (what the harness caches for builders, and what users
  save today) is loaded with Keras 3, its `get_config()` translated to the Keras 2 config
  format (layer options, functional wiring), the model rebuilt in tf_keras and the weights
  copied layer by layer; the rebuilt model must give the same outputs on a probe input;
* a file written by Keras 2 (`keras_version` 2.x), or a SavedModel written by tf_keras
  (with its Keras metadata), is loaded by tf_keras directly.

A SavedModel exported from Keras 3 (`model.export`) keeps no layers: nothing to wrap.
Layers that have no tf_keras counterpart (custom classes, `Lambda` with Python code)
stop with an error naming the layer and its class.
"""

from __future__ import annotations

import inspect
import json
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from harness.errors import HarnessError, NotApplicable


class UnsupportedLayer(HarnessError, NotApplicable):
    """A layer cannot be rebuilt in tf_keras or wrapped by TFMOT; the message names it (the cell is n/a)."""


# Keyword arguments every tf_keras layer accepts besides its own (`Layer.__init__`).
_BASE_LAYER_KWARGS = {"name", "dtype", "trainable", "dynamic", "input_dim", "input_shape", "batch_input_shape",
                      "batch_size", "weights", "activity_regularizer", "autocast", "implementation"}
_MODEL_CLASSES = {"Functional", "Sequential", "Model"}
# Keys a tf_keras `from_config` requires that Keras 3 configs do not write.
_CONFIG_DEFAULTS = {"MultiHeadAttention": {"query_shape": None, "key_shape": None, "value_shape": None}}


def tf_keras_module() -> Any:
    """tf_keras, imported the way TFMOT uses it."""
    import tf_keras

    return tf_keras


def load_tf_keras(path: Path) -> Any:
    """The model at `path` (.keras, .h5 or SavedModel directory) as a tf_keras model."""
    tf_keras = tf_keras_module()
    if path.is_dir():
        if not (path / "keras_metadata.pb").exists():
            raise NotApplicable(
                f"{path.name}: this SavedModel has no Keras layers (e.g. a Keras 3 `model.export`); "
                "training-time techniques need the Keras model (.keras/.h5)")
        return tf_keras.models.load_model(path, compile=False)
    if saved_by_keras_version(path).startswith("2."):
        return tf_keras.models.load_model(path, compile=False)
    import keras

    model = keras.models.load_model(path, compile=False)
    return from_keras3(model)


def saved_by_keras_version(path: Path) -> str:
    """The Keras version recorded in a .keras (metadata.json) or .h5 (attribute) file, or ''."""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                return str(json.loads(archive.read("metadata.json")).get("keras_version", ""))
        import h5py

        with h5py.File(path, "r") as handle:
            version = handle.attrs.get("keras_version", "")
            return version.decode() if isinstance(version, bytes) else str(version)
    except (OSError, KeyError, ValueError):
        return ""


def from_keras3(model: Any) -> Any:
    """Rebuild a Keras 3 Sequential or functional model in tf_keras, with the same weights."""
    tf_keras = tf_keras_module()
    class_name = type(model).__name__
    if class_name not in ("Functional", "Sequential"):
        raise UnsupportedLayer(
            f"model {model.name!r} ({class_name}) is a subclassed model; only Sequential and functional "
            "models can be rebuilt in tf_keras — build it with a builder that takes the Keras module")
    config = tf_keras_config(class_name, model.get_config())
    try:
        rebuilt = tf_keras.models.model_from_config(config)
    except (TypeError, ValueError, KeyError) as exc:
        raise HarnessError(f"model {model.name!r} could not be rebuilt in tf_keras from its config: {exc}") from exc
    copy_weights(model, rebuilt)
    check_same_outputs(model, rebuilt)
    return rebuilt


# -- config translation (Keras 3 format → Keras 2 format) ------------------------------------
# Keras 3 operations recorded in a functional graph (`x + 3.0`, `x * y`, `ops.sigmoid(x)`) and
# the tf_keras `TFOpLambda` function that computes the same: tf_keras records `x + 3.0` so.
_OPS = {"Add": "__operators__.add", "Subtract": "math.subtract", "Multiply": "math.multiply",
        "TrueDivide": "math.truediv", "Divide": "math.truediv", "Maximum": "math.maximum",
        "Minimum": "math.minimum", "Power": "math.pow", "Negative": "math.negative", "Abs": "math.abs",
        "Square": "math.square", "Sqrt": "math.sqrt", "Exp": "math.exp", "Sigmoid": "math.sigmoid",
        "Tanh": "math.tanh", "Relu": "nn.relu", "Relu6": "nn.relu6"}
# Keras 3 activations tf_keras lacks or defines differently (tf_keras' hard_sigmoid is 0.2x + 0.5):
# an `Activation` layer with one becomes the same computation in tf_keras layers.
_HARD_ACTIVATIONS = {"hard_sigmoid", "hard_silu", "hard_swish"}


def tf_keras_config(class_name: str, config: dict[str, Any]) -> dict[str, Any]:
    """`{"class_name", "config"}` that tf_keras' `model_from_config` understands."""
    if class_name == "Sequential":
        layers = [_sequential_entry(entry) for entry in config["layers"]]
        return {"class_name": "Sequential", "config": {"name": config.get("name"), "layers": layers}}
    layers = [layer for entry in config["layers"] for layer in _functional_entries(entry)]
    models = {entry["name"] for entry in config["layers"] if entry["class_name"] in _MODEL_CLASSES}
    for layer in layers:
        layer["inbound_nodes"] = _nested_model_nodes(layer["inbound_nodes"], models)
    return {"class_name": "Functional", "config": {
        "name": config.get("name"), "layers": layers,
        "input_layers": _history_list(config["input_layers"]),
        "output_layers": _history_list(config["output_layers"]),
    }}


def _sequential_entry(entry: dict[str, Any]) -> dict[str, Any]:
    if entry["class_name"] == "Activation" and _activation(entry) in _HARD_ACTIVATIONS:
        raise UnsupportedLayer(f"layer {entry['config'].get('name')!r} (Activation {_activation(entry)!r}): "
                               "tf_keras has no such activation; save the model as a functional one")
    if _is_operation(entry):
        raise UnsupportedLayer(f"operation {entry.get('name')!r} ({entry['class_name']}) in a Sequential model")
    return _layer_entry(entry)[0]


def _functional_entries(entry: dict[str, Any]) -> list[dict[str, Any]]:
    """The tf_keras layer entries (with name and inbound nodes) for one Keras 3 functional entry."""
    name = entry["name"]
    nodes = entry.get("inbound_nodes", [])
    if _is_operation(entry):
        return [_operation_entry(entry)]
    if entry["class_name"] == "Activation" and _activation(entry) in _HARD_ACTIVATIONS:
        return _hard_activation_entries(name, _activation(entry), [_node_args(name, node)[0] for node in nodes])
    translated, layer_class = _layer_entry(entry)
    translated["name"] = name
    translated["inbound_nodes"] = [_node(name, node, layer_class) for node in nodes]
    return [translated]


def _nested_model_nodes(value: Any, models: set[str]) -> Any:
    """References to a nested model's outputs, renumbered as tf_keras counts its nodes.

    A functional model has a node of its own (0): tf_keras numbers the calls of a nested model
    from 1, as Keras 3 does in `output_layers`, but Keras 3 node arguments count them from 0."""
    if isinstance(value, list) and len(value) in (3, 4) and isinstance(value[0], str) and value[0] in models \
            and isinstance(value[1], int):
        return [value[0], value[1] + 1, *value[2:3], *[_nested_model_nodes(v, models) for v in value[3:]]]
    if isinstance(value, list):
        return [_nested_model_nodes(v, models) for v in value]
    if isinstance(value, dict):
        return {k: _nested_model_nodes(v, models) for k, v in value.items()}
    return value


def _history_list(value: list) -> list:
    """Keras 3 writes a single input/output as one `[name, node, tensor]`; Keras 2 wants a list of them."""
    return [value] if value and isinstance(value[0], str) else list(value)


def _node_args(layer: str, node: Any) -> tuple[list, dict[str, Any]]:
    """A Keras 3 node's positional and keyword arguments (None-valued keywords dropped)."""
    if not isinstance(node, dict):
        raise UnsupportedLayer(f"layer {layer!r}: a node in an unknown format ({node!r})")
    kwargs = {k: v for k, v in dict(node.get("kwargs") or {}).items() if v is not None}
    return list(node.get("args", [])), kwargs


def _node(layer: str, node: Any, layer_class: type) -> Any:
    """A Keras 3 node `{"args": [...], "kwargs": {...}}` → Keras 2 `[[layer, node, tensor, kwargs], ...]`.

    The first argument holds the input tensors; further positional tensors are passed by the
    name the tf_keras layer's `call` gives them (`value` of MultiHeadAttention), as tf_keras
    itself records them, and tensor keyword arguments become node references."""
    if not isinstance(node, dict):  # already Keras 2 format
        return node
    args, kwargs = _node_args(layer, node)
    if not args:
        raise UnsupportedLayer(f"layer {layer!r} is called with keyword arguments only; not rebuilt in tf_keras")
    if len(args) > 1:
        names = _call_parameters(layer_class)[1:]
        if len(args) - 1 > len(names):
            raise UnsupportedLayer(f"layer {layer!r} ({layer_class.__name__}) is called with {len(args)} positional "
                                   f"arguments; its tf_keras `call` takes {len(names) + 1}")
        kwargs.update(zip(names, args[1:]))
    kwargs = {key: _reference(layer, value) for key, value in kwargs.items()}
    return [_entry(layer, tensor, kwargs) for tensor in _flatten(args[0])]


def _call_parameters(layer_class: type[Any]) -> list[str]:
    parameters = inspect.signature(layer_class.call).parameters.values()
    return [p.name for p in parameters if p.name != "self" and p.kind in
            (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)]


def _flatten(value: Any) -> list:
    if isinstance(value, (list, tuple)):
        return [item for element in value for item in _flatten(element)]
    if isinstance(value, dict) and not _is_tensor(value):
        return [item for key in sorted(value) for item in _flatten(value[key])]
    return [value]


def _entry(layer: str, value: Any, kwargs: dict[str, Any]) -> list:
    """One Keras 2 node entry: `[layer, node, tensor, kwargs]`, or a constant input."""
    if _is_tensor(value):
        return [*value["config"]["keras_history"], kwargs]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return ["_CONSTANT_VALUE", -1, value, kwargs]
    raise UnsupportedLayer(f"layer {layer!r} is called with a constant argument {_short(value)}; "
                           "not rebuilt in tf_keras")


def _reference(layer: str, value: Any) -> Any:
    """A keyword argument: tensors become `[layer, node, tensor]` references, constants stay."""
    if _is_tensor(value):
        return list(value["config"]["keras_history"])
    if isinstance(value, list):
        return [_reference(layer, item) for item in value]
    if isinstance(value, dict) and value.get("class_name", "").startswith("__"):
        raise UnsupportedLayer(f"layer {layer!r} takes a {value['class_name'].strip('_')} argument; "
                               "not rebuilt in tf_keras")
    return value


def _short(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 80 else f"{text[:77]}..."


def _is_tensor(value: Any) -> bool:
    return isinstance(value, dict) and value.get("class_name") == "__keras_tensor__"


def _is_operation(entry: dict[str, Any]) -> bool:
    """A Keras 3 operation (`keras.ops`), recorded when a graph applies `+`, `*` or `ops.*` to tensors."""
    return str(entry.get("module", "")).startswith("keras.src.ops")


def _operation_entry(entry: dict[str, Any]) -> dict[str, Any]:
    """A Keras 3 operation → the tf_keras `TFOpLambda` that applies the same TensorFlow function."""
    name, op = entry["name"], entry["class_name"]
    options = {k: v for k, v in entry.get("config", {}).items() if k != "name"}
    if op not in _OPS or options:
        detail = f" with {_short(options)}" if options else ""
        raise UnsupportedLayer(f"operation {name!r} (keras.ops {op}{detail}) has no tf_keras counterpart here; "
                               f"supported: {', '.join(sorted(_OPS))}")
    nodes = []
    for node in entry.get("inbound_nodes", []):
        args, kwargs = _node_args(name, node)
        if not args or len(args) > 2 or kwargs:
            raise UnsupportedLayer(f"operation {name!r} ({op}) is called with {len(args)} arguments and "
                                   f"keywords {sorted(kwargs)}; not rebuilt in tf_keras")
        extra = {"y": _reference(name, args[1])} if len(args) == 2 else {}
        nodes.append(_entry(name, args[0], {**extra, "name": None}))
    return _op_lambda(name, _OPS[op], nodes)


def _op_lambda(name: str, function: str, nodes: list) -> dict[str, Any]:
    config = {"name": name, "trainable": True, "dtype": "float32", "function": function}
    return {"class_name": "TFOpLambda", "config": config, "name": name, "inbound_nodes": nodes}


def _activation(entry: dict[str, Any]) -> str:
    return str(entry.get("config", {}).get("activation"))


def _hard_activation_entries(name: str, activation: str, inputs: list[Any]) -> list[dict[str, Any]]:
    """`Activation(hard_sigmoid | hard_silu)` as tf_keras layers: `relu6(x + 3) / 6` (times x).

    The same layers tf_keras' own MobileNetV3 uses; the last one keeps the layer's name."""
    inputs = [value[0] if isinstance(value, list) and len(value) == 1 else value for value in inputs]
    sigmoid = name if activation == "hard_sigmoid" else f"{name}_hard_sigmoid"
    plus = _op_lambda(f"{name}_plus3", "__operators__.add",
                      [_entry(name, x, {"y": 3.0, "name": None}) for x in inputs])
    relu6 = {"class_name": "ReLU", "name": f"{name}_relu6", "config": {"name": f"{name}_relu6", "max_value": 6.0},
             "inbound_nodes": [[[f"{name}_plus3", k, 0, {}]] for k in range(len(inputs))]}
    divide = _op_lambda(sigmoid, "math.truediv", [[f"{name}_relu6", k, 0, {"y": 6.0, "name": None}]
                                                  for k in range(len(inputs))])
    if activation == "hard_sigmoid":
        return [plus, relu6, divide]
    multiply = {"class_name": "Multiply", "name": name, "config": {"name": name},
                "inbound_nodes": [[_entry(name, x, {}), [sigmoid, k, 0, {}]] for k, x in enumerate(inputs)]}
    return [plus, relu6, divide, multiply]


def _layer_entry(entry: dict[str, Any]) -> tuple[dict[str, Any], type]:
    """One layer entry and its tf_keras class: nested models recursively, layers with their options cleaned."""
    tf_keras = tf_keras_module()
    class_name = entry["class_name"]
    name = entry.get("config", {}).get("name") or entry.get("name")
    if class_name in _MODEL_CLASSES:
        return tf_keras_config(class_name, entry["config"]), tf_keras.Model
    config = layer_config(class_name, name, entry.get("config", {}), entry.get("module"),
                          entry.get("registered_name"))
    return {"class_name": class_name, "config": config}, getattr(tf_keras.layers, class_name)


def layer_config(class_name: str, name: str | None, config: dict[str, Any], module: str | None = None,
                 registered_name: str | None = None) -> dict[str, Any]:
    """A Keras 3 layer config → the tf_keras layer's config (only keys its constructor takes)."""
    tf_keras = tf_keras_module()
    if class_name == "Lambda":
        raise UnsupportedLayer(f"layer {name!r} (Lambda) holds Python code that cannot be carried to tf_keras, "
                               "and TFMOT cannot wrap Lambda layers: replace it with a built-in layer")
    custom = (module is not None and not module.startswith("keras")) or (
        registered_name not in (None, class_name) and "keras" not in str(module))
    layer_class = None if custom else getattr(tf_keras.layers, class_name, None)
    if layer_class is None:
        raise UnsupportedLayer(f"layer {name!r} ({class_name}{f' from {module}' if module else ''}) has no tf_keras "
                               "counterpart; build the model with tf_keras to use training-time techniques")
    if str(config.get("activation")) in _HARD_ACTIVATIONS:
        raise UnsupportedLayer(f"layer {name!r} ({class_name}): activation {config['activation']!r} is not "
                               "tf_keras' (which has none, or another formula); use a separate Activation layer")
    if class_name == "InputLayer":
        config = dict(config)
        shape = config.pop("batch_shape", None)
        if shape is not None:
            config["batch_input_shape"] = shape
        config.pop("optional", None)
    accepted = _accepted_kwargs(layer_class)
    cleaned: dict[str, Any] = {}
    for key, value in config.items():
        if key.endswith("_initializer"):
            continue  # weights are copied; Keras 3 initializer options (input_axes, ...) are unknown to Keras 2
        if accepted is not None and key not in accepted:
            if value in (None, False, 0, [], {}):
                continue  # a Keras 3 option at its default (lora_rank, quantization_config, ...)
            raise UnsupportedLayer(f"layer {name!r} ({class_name}): option {key}={value!r} has no tf_keras equivalent")
        cleaned[key] = _clean(value)
    return {**_CONFIG_DEFAULTS.get(class_name, {}), **cleaned}


def _accepted_kwargs(layer_class: type) -> set[str] | None:
    """Constructor arguments of the class and its bases (subclasses pass `**kwargs` up)."""
    names: set[str] = set(_BASE_LAYER_KWARGS)
    for klass in layer_class.__mro__:
        if "__init__" not in vars(klass) or klass is object:
            continue
        try:
            parameters = inspect.signature(vars(klass)["__init__"]).parameters
        except (TypeError, ValueError):
            return None
        names |= {p for p, v in parameters.items() if p != "self" and v.kind is not inspect.Parameter.VAR_KEYWORD}
    return names


def _clean(value: Any) -> Any:
    """Serialized Keras 3 objects → Keras 2 form: dtype policies become names, `module` keys go."""
    if isinstance(value, dict):
        if value.get("class_name") == "DTypePolicy":
            return value.get("config", {}).get("name", "float32")
        if "class_name" in value and "config" in value:
            return {"class_name": value["class_name"], "config": _clean(value["config"])}
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


# -- weights and verification -----------------------------------------------------------------
def leaf_layers(model: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(path, layer) for every non-model layer, nested models included."""
    for layer in model.layers:
        path = f"{prefix}{layer.name}"
        if hasattr(layer, "layers") and type(layer).__name__ in _MODEL_CLASSES:
            yield from leaf_layers(layer, f"{path}/")
        else:
            yield path, layer


def reserve_layer_names(model: Any) -> None:
    """Advance tf_keras' automatic layer-name counters past the names `model` uses.

    A model rebuilt from a Keras 3 config (or loaded from a file) keeps names such as
    `conv2d_1` that tf_keras' counters never saw; layers TFMOT creates later (QAT splits a
    SeparableConv2D into DepthwiseConv2D + Conv2D) would get the same automatic name."""
    from tf_keras.src import backend  # the counters are not public API

    counters = backend.get_default_graph_uid_map()
    for _, layer in leaf_layers(model):
        match = re.fullmatch(r"(.+?)(?:_(\d+))?", layer.name)
        if match:
            key = ("", match.group(1))
            counters[key] = max(counters[key], int(match.group(2) or 0) + 1)


def copy_weights(source: Any, target: Any) -> None:
    """Copy every layer's weights from `source` (Keras 3) to `target` (tf_keras), matched by name."""
    targets = dict(leaf_layers(target))
    for path, layer in leaf_layers(source):
        weights = layer.get_weights()
        if path not in targets:
            if weights:
                raise HarnessError(f"layer {path!r} has weights but no counterpart in the tf_keras rebuild")
            continue
        counterpart = targets[path]
        expected = [tuple(w.shape) for w in counterpart.get_weights()]
        if expected != [tuple(w.shape) for w in weights]:
            raise HarnessError(f"layer {path!r} ({type(layer).__name__}): weights {[w.shape for w in weights]} "
                               f"do not fit the tf_keras layer's {expected}")
        if weights:
            counterpart.set_weights(weights)


def check_same_outputs(source: Any, target: Any, atol: float = 1e-5) -> None:
    """Both models must give the same outputs on a seeded random probe (inference mode)."""
    probe = probe_inputs(source)
    if probe is None:
        return
    expected = _as_list(source(probe, training=False))
    actual = _as_list(target(probe, training=False))
    for a, b in zip(expected, actual, strict=True):
        a, b = np.asarray(a), np.asarray(b)
        scale = max(1.0, float(np.abs(a).max(initial=0)))
        if a.shape != b.shape or not np.allclose(a, b, atol=atol * scale, rtol=1e-4):
            difference = float(np.abs(a - b).max()) if a.shape == b.shape else f"shapes {a.shape} vs {b.shape}"
            raise HarnessError(f"model {source.name!r}: the tf_keras rebuild gives different outputs "
                               f"(max difference {difference}); the translation lost an option")


def probe_inputs(model: Any, batch: int = 2, seed: int = 0) -> Any:
    """Seeded inputs for every model input (None when an input has unknown dimensions)."""
    rng = np.random.default_rng(seed)
    arrays = []
    for tensor in _as_list(model.inputs):
        shape = tuple(tensor.shape)[1:]
        if any(d is None for d in shape):
            return None
        dtype = np.dtype(getattr(tensor.dtype, "name", tensor.dtype))
        arrays.append(rng.uniform(0, 1, size=(batch, *shape)).astype(dtype) if dtype.kind == "f"
                      else np.zeros((batch, *shape), dtype))
    return arrays[0] if len(arrays) == 1 else arrays


def _as_list(value: Any) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]
