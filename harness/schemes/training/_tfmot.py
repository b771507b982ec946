"""TensorFlow Model Optimization plumbing shared by the training-time schemes.

A training-time scheme is a chain of techniques (prune, cluster, QAT, ...) applied to the
float Keras model in tf_keras, each followed by fine-tuning, then one conversion to
.tflite. Every technique starts from a clone (TFMOT's wrappers reuse the layer objects
they wrap, so training a wrapped model would change the model it came from), and the
result of every prefix of the chain is cached as a tf_keras SavedModel, keyed by source
digest, the techniques and their options, the fine-tuning budget and data fingerprint,
and tool versions — `prune`, `prune+int8` and `prune+qat` with the same pruning options
share one pruned model.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import numpy as np

from harness.cache import ArtifactCache, content_key, file_digest
from harness.claims import Claim
from harness.config.schema import FinetuneSpec
from harness.datasets import Dataset
from harness.errors import HarnessError, NotApplicable
from harness.models import determinism
from harness.record import TechniqueRecord, UntouchedLayer
from harness.samples import Samples
from harness.schemes._base import BASELINE, Family, Scheme, SchemeOptions
from harness.schemes.training._layers import TechniqueOptions
from harness.schemes.training.keras2 import load_tf_keras, reserve_layer_names
from harness.versions import tool_versions


@dataclass(frozen=True)
class FineTuning:
    """The budget (`finetune:` of the suite) and the data the training-time techniques fit."""

    spec: FinetuneSpec
    data: Dataset

    @property
    def key(self) -> dict[str, Any]:
        """What identifies the fine-tuning in cache keys: the budget and the data's fingerprint."""
        return {"budget": self.spec.model_dump(mode="json", exclude={"dataset"}), "data": self.data.fingerprint,
                "determinism": determinism.settings()}


def tfmot() -> Any:
    """`tensorflow_model_optimization`, imported without leaving TF_USE_LEGACY_KERAS=1 behind.

    TFMOT sets that variable on import to bind itself to tf_keras; the rest of the harness
    uses Keras 3, so the previous value is restored once TFMOT has made its choice."""
    before = os.environ.get("TF_USE_LEGACY_KERAS")
    try:
        import tensorflow_model_optimization as module
    finally:
        if before is None:
            os.environ.pop("TF_USE_LEGACY_KERAS", None)
        else:
            os.environ["TF_USE_LEGACY_KERAS"] = before
    return module


def clone(model: Any) -> Any:
    """A fresh copy (new layer objects, same weights): TFMOT's wrappers reuse what they wrap."""
    import tf_keras

    reserve_layer_names(model)
    copy = tf_keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy


# -- fine-tuning ---------------------------------------------------------------------------------
@dataclass
class Prepared:
    """Fine-tuning inputs: samples shaped for the model, targets, the loss and the step count."""

    x: np.ndarray
    y: np.ndarray
    loss: Any
    steps: int
    target: str


def prepare(float_model: Any, finetune: FineTuning) -> Prepared:
    """Samples and targets for fine-tuning, computed once from the float model."""
    import tf_keras

    from harness.tflite.runtime import fit_samples

    spec, data = finetune.spec, finetune.data.head(finetune.spec.limit)
    if not isinstance(data.x, np.ndarray):
        raise HarnessError(f"{float_model.name}: fine-tuning takes one input array (a single-input model, "
                           f"a dataset of arrays), not {type(data.x).__name__}")
    x = fit_samples(data.x, tuple(float_model.input_shape[1:]), float_model.name).astype(np.float32)
    target = spec.target
    if target == "auto":
        target = "labels" if data.y is not None else "float_argmax"
    # the float model's outputs: all of them as targets, else a few to tell probabilities from logits
    probe = x if target != "labels" else x[:256]
    outputs = np.asarray(float_model.predict(probe, batch_size=max(spec.batch_size, 64), verbose=0))
    if spec.target == "auto" and target == "float_argmax" and outputs.ndim != 2:
        target = "float_outputs"
    steps = spec.epochs * math.ceil(len(x) / spec.batch_size)
    if target == "float_outputs":
        return Prepared(x, outputs.astype(np.float32), tf_keras.losses.MeanSquaredError(), steps, target)
    if outputs.ndim != 2:
        raise HarnessError(f"fine-tuning target {target!r} needs a (batch, classes) output; the model gives "
                           f"{outputs.shape[1:]}: use `finetune: {{target: float_outputs}}`")
    if target == "labels":
        if data.y is None:
            raise HarnessError(f"fine-tuning dataset {data.name!r} has no labels: "
                               "use `finetune: {target: float_argmax}`")
        y = np.asarray(data.y).astype(np.int64)
        if y.max(initial=0) >= outputs.shape[1]:
            raise HarnessError(f"dataset {data.name!r} has label {int(y.max())}; "
                               f"the model has {outputs.shape[1]} classes")
    else:
        y = np.argmax(outputs, axis=1).astype(np.int64)
    probabilities = bool(np.all(outputs >= 0) and np.allclose(outputs.sum(axis=1), 1.0, atol=1e-3))
    loss = tf_keras.losses.SparseCategoricalCrossentropy(from_logits=not probabilities)
    return Prepared(x, y, loss, steps, target)


def fit(model: Any, prepared: Prepared, finetune: FineTuning, default_lr: float,
        callbacks: Sequence[Any] = ()) -> dict[str, Any]:
    """Compile and fit `model` on the prepared data with the suite's budget; return a summary."""
    import tf_keras

    spec = finetune.spec
    settings = determinism.seed_everything(spec.seed, tf_keras)
    learning_rate = spec.learning_rate or default_lr
    rate: Any = learning_rate
    if spec.schedule == "cosine":  # ends at a settled point, not wherever a constant rate left it
        rate = tf_keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=max(1, prepared.steps))
    optimizer = {"adam": tf_keras.optimizers.Adam, "sgd": tf_keras.optimizers.SGD,
                 "rmsprop": tf_keras.optimizers.RMSprop}[spec.optimizer](learning_rate=rate)
    model.compile(optimizer=optimizer, loss=prepared.loss)
    history = model.fit(prepared.x, prepared.y, epochs=spec.epochs, batch_size=spec.batch_size, shuffle=True,
                        verbose=0, callbacks=list(callbacks))
    return {"samples": len(prepared.x), "epochs": spec.epochs, "steps": prepared.steps, "target": prepared.target,
            "optimizer": spec.optimizer, "learning_rate": learning_rate, "schedule": spec.schedule,
            "final_loss": float(history.history["loss"][-1]), "determinism": settings}


# -- techniques, chains and their cache ----------------------------------------------------------
def subset(options_class: type[SchemeOptions], options: SchemeOptions) -> SchemeOptions:
    """The fields of `options_class` taken from a combined scheme's options (those given in the suite)."""
    given = options.model_fields_set
    return options_class(**{k: getattr(options, k) for k in options_class.model_fields if k in given})


class Technique:
    """One training-time step: wrap a tf_keras model, fine-tune it, strip the wrappers.

    `options` picks this technique's fields from the scheme's options; `wrap` gets (a clone
    of) the model of the previous step — the float model first —, the names of the
    techniques already applied (`prune` before `qat` means pruning-preserving QAT) and the
    number of fine-tuning steps (for schedules); it wraps the layers TFMOT supports (see
    `_layers.plan`), records them and the untouched ones in `info`, and raises NotApplicable
    when nothing can be wrapped."""

    name: ClassVar[str]
    Options: ClassVar[type[SchemeOptions]]
    default_learning_rate: ClassVar[float] = 1e-4
    # its fine-tuned model is a float model any post-training scheme converts: `<name>+<post>` is
    # registered for every post-training scheme (harness/schemes/training/combined.py)
    pairs_with_post_training: ClassVar[bool] = False

    def options(self, options: SchemeOptions) -> SchemeOptions:
        """This technique's part of a (combined) scheme's options."""
        return subset(self.Options, options)

    def wrap(self, model: Any, options: Any, before: tuple[str, ...], steps: int, info: dict[str, Any]) -> Any:
        raise NotImplementedError

    def callbacks(self) -> list[Any]:
        return []

    def strip(self, wrapped: Any) -> Any:
        return wrapped

    def apply(self, model: Any, options: Any, before: tuple[str, ...], prepared: Prepared,
              finetune: FineTuning, info: dict[str, Any]) -> Any:
        import tf_keras

        determinism.seed_everything(finetune.spec.seed, tf_keras)  # wrapping draws too (cluster centroids)
        wrapped = self.wrap(model, options, before, prepared.steps, info)
        info["fit"] = fit(wrapped, prepared, finetune, self.default_learning_rate, self.callbacks())
        return self.strip(wrapped)


TECHNIQUES: dict[str, Technique] = {}  # by name, in the order the technique modules registered them
TechniqueT = TypeVar("TechniqueT", bound=Technique)


def register_technique(technique: TechniqueT) -> TechniqueT:
    """Add a technique (an instance) to TECHNIQUES, where combined.py finds it; returns it."""
    if technique.name in TECHNIQUES:
        raise ValueError(f"training technique {technique.name!r} is registered twice")
    TECHNIQUES[technique.name] = technique
    return technique


def run_chain(source_path: Path, chain: Sequence[Technique], options: SchemeOptions, finetune: FineTuning,
              cache: ArtifactCache) -> Path:
    """The SavedModel (written by tf_keras) after every technique of `chain`, cached per prefix."""
    keys = chain_keys(source_path, chain, options, finetune)
    # the longest prefix already cached, then build the rest from it
    start = len(chain)
    while start > 0 and not cache.path("finetuned", keys[start - 1]).exists():
        start -= 1
    state: dict[str, Any] = {}

    def float_model() -> Any:
        if "float" not in state:
            state["float"] = load_tf_keras(source_path)
        return state["float"]

    def prepared() -> Prepared:
        if "prepared" not in state:
            state["prepared"] = prepare(float_model(), finetune)
        return state["prepared"]

    model = None
    for position in range(start, len(chain)):
        technique = chain[position]
        if model is None:
            model = float_model() if position == 0 else _load_saved(cache.path("finetuned", keys[position - 1]))
        info: dict[str, Any] = {"technique": technique.name, "after": [t.name for t in chain[:position]]}
        result = technique.apply(clone(model), technique.options(options), tuple(t.name for t in chain[:position]),
                                 prepared(), finetune, info)

        def save(target: Path, result: Any = result) -> None:
            result.save(str(target), save_format="tf", include_optimizer=False)

        cache.get_or_create("finetuned", keys[position], "", save)
        cache.write_json("finetuned", keys[position], info)
        model = result
    return cache.path("finetuned", keys[-1])


def chain_keys(source_path: Path, chain: Sequence[Technique], options: SchemeOptions,
               finetune: FineTuning) -> list[str]:
    """The cache key of the model after each prefix of `chain`."""
    digest = file_digest(source_path)
    return [content_key(kind="finetuned", source=digest, finetune=finetune.key, versions=tool_versions(),
                        chain=[(t.name, t.options(options).model_dump(mode="json")) for t in chain[:end]])
            for end in range(1, len(chain) + 1)]


def technique_record(infos: Sequence[dict[str, Any] | None]) -> TechniqueRecord:
    """The record's `technique`: layers any step wrapped, and those a step left untouched (reason
    prefixed with the technique), from the steps' cached sidecars."""
    wrapped: list[str] = []
    untouched: list[UntouchedLayer] = []
    for info in infos:
        if not info:
            continue
        wrapped += [name for name in info.get("wrapped", []) if name not in wrapped]
        untouched += [{**row, "reason": f"{info['technique']}: {row['reason']}"} for row in info.get("untouched", [])]
    output_quantized = [name for info in infos if info for name in info.get("output_quantized", [])]
    return {"chain": [info["technique"] for info in infos if info], "wrapped": wrapped, "untouched": untouched,
            **({"output_quantized": output_quantized} if output_quantized else {})}


def _load_saved(path: Path) -> Any:
    import tf_keras

    return tf_keras.models.load_model(path, compile=False)


class TrainingScheme(Scheme):
    """A registered training-time scheme: a chain of techniques, then a post-training conversion.

    `post` names the registered post-training scheme whose `from_saved_model` converts the
    fine-tuned model (`float32` for plain pruning/clustering, `int8` for `prune+int8`, ...);
    QAT schemes override `convert`. Its family is training-time, or combined when a post-training
    scheme (not float32) converts it."""

    needs_training: ClassVar[bool] = True
    family: ClassVar[Family] = "training-time"
    claims: ClassVar[tuple[Claim, ...]] = ()  # the post-training scheme's (a float model: none)
    chain: ClassVar[tuple[Technique, ...]] = ()
    post: ClassVar[str] = "float32"

    def convert(self, saved_model: Path, options: Any, calibration: Samples | None) -> bytes:
        from harness.schemes import SCHEMES

        post = SCHEMES.get(self.post)
        return post.from_saved_model(saved_model, subset(post.Options, options), calibration)

    def from_keras(self, source_path: Path, options: Any, finetune: FineTuning, calibration: Samples | None,
                   cache: ArtifactCache) -> bytes:
        """Apply the chain to the Keras model at `source_path` (fine-tuned on `finetune`), convert it."""
        saved_model = run_chain(Path(source_path), self.chain, options, finetune, cache)
        return self.convert(saved_model, options, calibration)

    def technique(self, source_path: Path, options: Any, finetune: FineTuning, cache: ArtifactCache) -> TechniqueRecord:
        """What the chain wrapped and left untouched (read back from the fine-tuned models' sidecars)."""
        keys = chain_keys(Path(source_path), self.chain, options, finetune)
        return technique_record([cache.read_json("finetuned", key) for key in keys])

    def from_saved_model(self, saved_model: Path, options: Any, calibration: Samples | None) -> bytes:
        raise NotApplicable("training-time techniques need the Keras model and fine-tuning data (`from_keras`)")

    def from_tflite(self, model: bytes, options: Any, calibration: Samples | None) -> bytes:
        raise NotApplicable("training-time techniques need a Keras model, not a .tflite file")


def training_scheme(name: str, chain: Sequence[Technique], post: str = "float32",
                    post_options: type[SchemeOptions] = SchemeOptions, needs_calibration: bool = False,
                    base: type[TrainingScheme] = TrainingScheme,
                    claims: tuple[Claim, ...] | None = None) -> type[TrainingScheme]:
    """A TrainingScheme class whose options are the union of the techniques' and the post scheme's;
    it claims what `claims` says (default: what `base` claims)."""
    bases: list[type[SchemeOptions]] = []
    for options in [*(t.Options for t in chain), post_options]:
        if options not in bases and options is not SchemeOptions and not any(issubclass(b, options) for b in bases):
            bases.append(options)
    fields = [f for b in bases for f in b.model_fields if f not in TechniqueOptions.model_fields]
    clash = sorted({f for f in fields if fields.count(f) > 1})
    if clash:
        raise ValueError(f"scheme {name!r}: options {clash} are defined twice")
    title = "".join(part.capitalize() for part in name.replace("+", "_").split("_"))
    combined = type(f"{title}Options", tuple(bases) or (SchemeOptions,), {"__module__": __name__})
    return type(title, (base,), {"Options": combined, "chain": tuple(chain), "post": post,
                                 "needs_calibration": needs_calibration, "__module__": base.__module__,
                                 "family": "training-time" if post == BASELINE else "combined",
                                 "claims": base.claims if claims is None else claims})
