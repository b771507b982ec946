"""Magnitude pruning (TFMOT `prune_low_magnitude`), stripped, exported as a float model.

The schedule runs over the fine-tuning steps: `polynomial` ramps from `initial_sparsity`
to `sparsity` over the first three quarters of the steps (the rest recovers accuracy),
`constant` prunes to `sparsity` from the first update on. `sparsity_m_by_n: [2, 4]`
prunes 2 of every 4 consecutive input-channel weights of the Conv2D and Dense kernels
(TFMOT's structured sparsity; layers whose input channels are not a multiple of n keep
their weights).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from harness.errors import HarnessError
from harness.schemes._base import SCHEMES, SchemeOptions
from harness.schemes.training._tfmot import Technique, ensure_wrappable, tfmot, training_scheme


class PruneOptions(SchemeOptions):
    sparsity: float = Field(0.5, gt=0, lt=1, description="share of zero weights reached at the end of the schedule")
    schedule: Literal["polynomial", "constant"] = "polynomial"
    initial_sparsity: float = Field(0.0, ge=0, lt=1, description="polynomial schedule: sparsity at the first step")
    frequency: int | None = Field(None, ge=1, description="steps between mask updates (default: a tenth of the "
                                                            "fine-tuning steps, at most 100)")
    sparsity_m_by_n: tuple[int, int] | None = Field(None, description="structured sparsity, e.g. [2, 4]")

    @model_validator(mode="after")
    def _consistent(self) -> "PruneOptions":
        if self.schedule == "polynomial" and self.initial_sparsity >= self.sparsity:
            raise ValueError("initial_sparsity must be below sparsity")
        if self.sparsity_m_by_n is not None:
            m, n = self.sparsity_m_by_n
            if not 0 < m < n:
                raise ValueError("sparsity_m_by_n: give [m, n] with 0 < m < n (m zeros in every n weights)")
            if "sparsity" in self.model_fields_set:
                raise ValueError("give either `sparsity` or `sparsity_m_by_n` (which fixes it at m/n)")
        return self


def schedule_steps(options: PruneOptions, steps: int) -> tuple[int, int]:
    """(frequency, end step) for `steps` fine-tuning steps; the wrappers see steps 1..steps."""
    frequency = min(options.frequency or max(1, min(100, steps // 10)), steps)
    end = max(frequency, (steps * 3 // 4) // frequency * frequency)
    return frequency, end


class Prune(Technique):
    name = "prune"
    Options = PruneOptions
    default_learning_rate = 1e-3  # TFMOT's pruning guide (Adam's default); recovers far better than 1e-4

    def wrap(self, model: Any, options: PruneOptions, before: tuple[str, ...], steps: int,
             info: dict[str, Any]) -> Any:
        sparsity = tfmot().sparsity.keras
        from tensorflow_model_optimization.python.core.sparsity.keras import prune_registry

        frequency, end = schedule_steps(options, steps)
        if options.schedule == "constant":
            schedule = sparsity.ConstantSparsity(options.sparsity, begin_step=0, frequency=frequency)
        else:
            schedule = sparsity.PolynomialDecay(options.initial_sparsity, options.sparsity, begin_step=0,
                                                end_step=end, frequency=frequency)
        info["schedule"] = {"kind": options.schedule, "frequency": frequency, "end_step": end, "steps": steps}
        if options.sparsity_m_by_n is not None:
            return self._m_by_n(model, options.sparsity_m_by_n, schedule, info)
        ensure_wrappable(model, "prune", lambda layer: isinstance(layer, sparsity.PrunableLayer)
                         or hasattr(layer, "get_prunable_weights") or prune_registry.PruneRegistry.supports(layer),
                         "prune the supported layers only (harness builder or `schemes:` per model), "
                         "or make the layer a tfmot.sparsity.keras.PrunableLayer")
        return sparsity.prune_low_magnitude(model, pruning_schedule=schedule)

    def callbacks(self) -> list[Any]:
        return [tfmot().sparsity.keras.UpdatePruningStep()]

    def strip(self, wrapped: Any) -> Any:
        return tfmot().sparsity.keras.strip_pruning(wrapped)

    @staticmethod
    def _m_by_n(model: Any, m_by_n: tuple[int, int], schedule: Any, info: dict[str, Any]) -> Any:
        import tf_keras

        sparsity = tfmot().sparsity.keras
        wrapped: list[str] = []

        def wrap(layer: Any) -> Any:
            copy = layer.__class__.from_config(layer.get_config())
            kernel = getattr(layer, "kernel", None)
            if (type(layer) in (tf_keras.layers.Conv2D, tf_keras.layers.Dense) and kernel is not None
                    and kernel.shape[-2] % m_by_n[1] == 0):
                wrapped.append(layer.name)
                return sparsity.prune_low_magnitude(copy, pruning_schedule=schedule, sparsity_m_by_n=m_by_n)
            return copy

        pruned = tf_keras.models.clone_model(model, clone_function=wrap)
        for original, layer in zip(model.layers, pruned.layers, strict=True):
            target = getattr(layer, "layer", layer)
            if original.get_weights():
                target.set_weights(original.get_weights())
        if not wrapped:
            raise HarnessError(f"sparsity_m_by_n {list(m_by_n)}: no Conv2D/Dense kernel of model {model.name!r} "
                               f"has a multiple of {m_by_n[1]} input channels")
        info["m_by_n_layers"] = wrapped
        return pruned


PRUNE = Prune()

SCHEMES.register("prune", "magnitude pruning to `sparsity` (polynomial/constant schedule, or 2:4 `sparsity_m_by_n`), "
                          "fine-tuned, stripped; float model")(training_scheme("prune", [PRUNE]))
