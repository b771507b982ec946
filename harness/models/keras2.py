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


class UnsupportedLayer(HarnessError):
    """A layer cannot be rebuilt in tf_keras or wrapped by TFMOT; the message names it."""


# Keyword arguments every tf_keras layer accepts besides its own (`Layer.__init__`).
_BASE_LAYER_KWARGS = {"name", "dtype", "trainable", "dynamic", "input_dim", "input_shape", "batch_input_shape",
                      "batch_size", "weights", "activity_regularizer", "autocast", "implementation"}
_MODEL_CLASSES = {"Functional", "Sequential", "Model"}


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
def tf_keras_config(class_name: str, config: dict[str, Any]) -> dict[str, Any]:
    """`{"class_name", "config"}` that tf_keras' `model_from_config` understands."""
    if class_name == "Sequential":
        layers = [_layer_entry(entry) for entry in config["layers"]]
        return {"class_name": "Sequential", "config": {"name": config.get("name"), "layers": layers}}
    layers = []
    for entry in config["layers"]:
        translated = _layer_entry(entry)
        translated["name"] = entry["name"]
        translated["inbound_nodes"] = [_node(entry["name"], node) for node in entry.get("inbound_nodes", [])]
        layers.append(translated)
    return {"class_name": "Functional", "config": {
        "name": config.get("name"), "layers": layers,
        "input_layers": _history_list(config["input_layers"]),
        "output_layers": _history_list(config["output_layers"]),
    }}


def _history_list(value: list) -> list:
    """Keras 3 writes a single input/output as one `[name, node, tensor]`; Keras 2 wants a list of them."""
    return [value] if value and isinstance(value[0], str) else list(value)


def _node(layer: str, node: Any) -> list:
    """A Keras 3 node `{"args": [...], "kwargs": {...}}` → Keras 2 `[[layer, node, tensor, kwargs], ...]`."""
    if not isinstance(node, dict):  # already Keras 2 format
        return node
    args, kwargs = node.get("args", []), dict(node.get("kwargs") or {})
    if len(args) != 1:
        raise UnsupportedLayer(f"layer {layer!r} is called with {len(args)} positional tensors; "
                               "only single-input (or one list of tensors) calls can be rebuilt in tf_keras")
    tensors = args[0] if isinstance(args[0], list) else [args[0]]
    for key, value in kwargs.items():
        if _is_tensor(value) or isinstance(value, list) and any(_is_tensor(v) for v in value):
            raise UnsupportedLayer(f"layer {layer!r} takes tensor keyword argument {key!r}; not rebuilt in tf_keras")
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    inbound = []
    for tensor in tensors:
        if not _is_tensor(tensor):
            raise UnsupportedLayer(f"layer {layer!r} is called with a constant argument; not rebuilt in tf_keras")
        name, node_index, tensor_index = tensor["config"]["keras_history"]
        inbound.append([name, node_index, tensor_index, kwargs])
    return inbound


def _is_tensor(value: Any) -> bool:
    return isinstance(value, dict) and value.get("class_name") == "__keras_tensor__"


def _layer_entry(entry: dict[str, Any]) -> dict[str, Any]:
    """One layer entry: nested models recursively, layers with their options cleaned."""
    class_name = entry["class_name"]
    name = entry.get("config", {}).get("name") or entry.get("name")
    if class_name in _MODEL_CLASSES:
        return tf_keras_config(class_name, entry["config"])
    return {"class_name": class_name, "config": layer_config(class_name, name, entry.get("config", {}),
                                                             entry.get("module"), entry.get("registered_name"))}


def layer_config(class_name: str, name: str, config: dict[str, Any], module: str | None = None,
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
    return cleaned


def _accepted_kwargs(layer_class: type) -> set[str] | None:
    """Constructor arguments of the class and its bases (subclasses pass `**kwargs` up)."""
    names: set[str] = set(_BASE_LAYER_KWARGS)
    for klass in layer_class.__mro__:
        if "__init__" not in vars(klass) or klass is object:
            continue
        try:
            parameters = inspect.signature(klass.__init__).parameters
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
