"""Quantization-aware training, exported as an integer (int8) model.

`qat` fine-tunes the float model with fake-quantization (TFMOT's default 8-bit scheme);
`prune+qat` and `cluster+qat` are TFMOT's collaborative optimizations: the pruned
(clustered) model is fine-tuned with `Default8BitPrunePreserveQuantizeScheme`
(`Default8BitClusterPreserveQuantizeScheme`), which keeps its zeros (its clusters) through
quantization; `prune+cluster+qat` keeps both. The converter (DEFAULT optimizations)
turns the fake-quantized model into int8 weights and activations; `io: int8|uint8` also
makes the inputs and outputs integer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from harness.claims import FULL_INTEGER_SHARE, quantized_ops_share, weights_quantized
from harness.samples import Samples
from harness.schemes._base import SCHEMES, SchemeOptions
from harness.schemes._converter import convert
from harness.schemes.training._layers import TechniqueOptions, Verdict, clone_wrapped, plan
from harness.schemes.training._tfmot import Technique, TrainingScheme, register_technique, tfmot, training_scheme
from harness.schemes.training.cluster import CLUSTER
from harness.schemes.training.keras2 import UnsupportedLayer
from harness.schemes.training.prune import PRUNE


class QatOptions(SchemeOptions):
    io: Literal["float32", "int8", "uint8"] = "float32"


class Qat(Technique):
    name = "qat"
    Options = TechniqueOptions  # `layers:` only; `io` is for conversion
    default_learning_rate = 1e-4

    def wrap(self, model: Any, options: Any, before: tuple[str, ...], steps: int, info: dict[str, Any]) -> Any:
        module = tfmot()
        quantization = module.quantization.keras
        if "cluster" in before:
            scheme = module.experimental.combine.Default8BitClusterPreserveQuantizeScheme(
                preserve_sparsity="prune" in before)
        elif "prune" in before:
            scheme = module.experimental.combine.Default8BitPrunePreserveQuantizeScheme()
        else:
            scheme = quantization.default_8bit.Default8BitQuantizeScheme()
        info["quantize_scheme"] = type(scheme).__name__
        if before:
            scheme = _strict_registry(scheme, quantization.default_8bit.Default8BitQuantizeScheme())
        chosen = plan(model, "qat", _quantizable(scheme), options.layers)
        info.update(chosen.record())
        annotated = clone_wrapped(model, chosen, _annotate)
        info["output_quantized"] = [name for name in chosen.wrap if _output_only(model.get_layer(name))]
        try:
            with quantization.quantize_scope({"Default8BitOutputQuantizeConfig": _output_config_class()}):
                return quantization.quantize_apply(annotated, scheme)
        except (ValueError, RuntimeError, KeyError, TypeError, AttributeError) as exc:
            raise UnsupportedLayer(f"quantization-aware training of model {model.name!r}: {exc}"
                                   f"{_apply_hint(chosen.untouched, scheme)}") from exc


def _output_only(layer: Any) -> bool:
    """A Rescaling layer: weightless, no QuantizeConfig in TFMOT; QAT gives it an output quantizer so
    the layer after it (the stem conv) learns an input range and converts to int8."""
    import tf_keras

    return isinstance(layer, tf_keras.layers.Rescaling)


def _output_config_class() -> type:
    from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import (
        default_8bit_quantize_configs,
    )

    return default_8bit_quantize_configs.Default8BitOutputQuantizeConfig


def _annotate(layer: Any) -> Any:
    quantization = tfmot().quantization.keras
    if _output_only(layer):
        return quantization.quantize_annotate_layer(layer, _output_config_class()())
    return quantization.quantize_annotate_layer(layer)


def _strict_registry(scheme: Any, default: Any) -> Any:
    """The collaborative schemes with a registry that claims no weightless layer the default one lacks.

    TFMOT's prune- and cluster-preserving registries call every layer without trainable weights
    supported (Rescaling, TFOpLambda) and then have no QuantizeConfig for it, so quantize_apply
    fails on a model with one left untouched; the default 8-bit registry's answer for those holds."""
    registry, fallback = scheme.get_quantize_registry(), default.get_quantize_registry()
    claims = registry.supports
    registry.supports = lambda layer: claims(layer) and (bool(layer.trainable_weights) or fallback.supports(layer))
    scheme.get_quantize_registry = lambda: registry
    return scheme


def _apply_hint(untouched: list[dict[str, str]], scheme: Any) -> str:
    """Which untouched layers `quantize_apply` (which rebuilds the whole model) could not carry."""
    custom = [f"{row['layer']!r} ({row['class']})" for row in untouched if "without a QuantizeConfig" in row["reason"]]
    if custom:
        return (f" (quantize_apply rebuilds the model from its config, untouched layers included: "
                f"{', '.join(custom)} must be built-in or registered with tf_keras)")
    operations = [repr(row["layer"]) for row in untouched if row["class"] == "TFOpLambda"]
    if operations and type(scheme).__name__ != "Default8BitQuantizeScheme":
        shown = ", ".join(operations[:3]) + (", ..." if len(operations) > 3 else "")
        return (f" (TFMOT's {type(scheme).__name__} cannot rebuild the model's TFOpLambda layers — Keras "
                f"operations such as `x + 3.0`, e.g. {shown} — although plain `qat` can)")
    return ""


def _quantizable(scheme: Any) -> Any:
    """QAT annotates every layer the scheme's registry has a QuantizeConfig for (weights or not)."""
    registry = scheme.get_quantize_registry()

    def verdict(layer: Any) -> Verdict:
        import tf_keras

        if isinstance(layer, tf_keras.layers.Lambda) or not type(layer).__module__.startswith("tf_keras."):
            return f"TFMOT cannot quantize {type(layer).__name__} layers without a QuantizeConfig"
        if isinstance(layer, tf_keras.layers.BatchNormalization):
            return _batch_norm_verdict(layer)
        if isinstance(layer, _separable(tf_keras)):  # the scheme's layout transform splits it (no registry entry)
            return True
        if _output_only(layer):
            return True
        if type(layer).__name__ == "TFOpLambda":  # the collaborative schemes' registries claim to support it
            return "TFMOT has no QuantizeConfig for TFOpLambda (a Keras operation such as `x + 3.0`)"
        if not registry.supports(layer):
            return f"TFMOT's {type(scheme).__name__} has no QuantizeConfig for {type(layer).__name__}"
        return True

    return verdict


def _separable(tf_keras: Any) -> tuple[type, ...]:
    """Separable convolutions: TFMOT's 8-bit registry has no entry for them, but its layout transform
    (`SeparableConvQuantize`, `SeparableConv1DQuantize`) rewrites them into quantizable depthwise +
    pointwise convolutions, so QAT annotates them (and the batch norm after them folds)."""
    return (tf_keras.layers.SeparableConv2D, tf_keras.layers.SeparableConv1D)


def _batch_norm_verdict(layer: Any) -> Verdict:
    """TFMOT quantizes batch norm by folding it into the Conv2D / DepthwiseConv2D / Dense before it."""
    import tf_keras

    inbound = layer._inbound_nodes[0].inbound_layers if layer._inbound_nodes else None
    kinds = (tf_keras.layers.Conv2D, tf_keras.layers.DepthwiseConv2D, tf_keras.layers.Dense, *_separable(tf_keras))
    if isinstance(inbound, kinds):
        return True
    return ("TFMOT quantizes BatchNormalization only after Conv2D, DepthwiseConv2D, SeparableConv or Dense "
            "(folded into it)")


QAT = register_technique(Qat())


class _QatScheme(TrainingScheme):
    """Converts the fake-quantized model: no calibration needed, the ranges were learnt. It claims int8
    kernels and compute ops, unless `layers:` restricted QAT to some layers (the others stay float)."""

    claims = (weights_quantized(waived_by=("layers",)), quantized_ops_share(FULL_INTEGER_SHARE, ("layers",)))

    def convert(self, saved_model: Path, options: Any, calibration: Samples | None) -> bytes:
        def configure(converter: Any, tf: Any) -> None:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            if options.io != "float32":
                io_type = tf.uint8 if options.io == "uint8" else tf.int8
                converter.inference_input_type = io_type
                converter.inference_output_type = io_type

        return convert(saved_model, configure)


def _register(name: str, chain: list[Technique], summary: str) -> None:
    SCHEMES.register(name, summary)(training_scheme(name, chain, post_options=QatOptions, base=_QatScheme))


_register("qat", [QAT], "quantization-aware training, int8 model (`io: int8|uint8` for integer I/O)")
_register("prune+qat", [PRUNE, QAT], "pruning, then pruning-preserving QAT: sparse int8 model")
_register("cluster+qat", [CLUSTER, QAT], "clustering, then cluster-preserving QAT: clustered int8 model")
_register("prune+cluster+qat", [PRUNE, CLUSTER, QAT],
          "pruning, sparsity-preserving clustering, then QAT preserving both: sparse clustered int8 model")
