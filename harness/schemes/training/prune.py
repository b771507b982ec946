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

from harness.schemes._base import SCHEMES
from harness.schemes.training._layers import TechniqueOptions, Verdict, clone_wrapped, declined_kernel, plan
from harness.schemes.training._tfmot import Technique, register_technique, tfmot, training_scheme


class PruneOptions(TechniqueOptions):
    sparsity: float = Field(0.5, gt=0, lt=1, description="share of zero weights reached at the end of the schedule")
    schedule: Literal["polynomial", "constant"] = "polynomial"
    initial_sparsity: float = Field(0.0, ge=0, lt=1, description="polynomial schedule: sparsity at the first step")
    frequency: int | None = Field(None, ge=1, description="steps between mask updates (default: a tenth of the "
                                                            "fine-tuning steps, at most 100)")
    sparsity_m_by_n: tuple[int, int] | None = Field(None, description="structured sparsity, e.g. [2, 4]")

    @model_validator(mode="after")
    def _consistent(self) -> PruneOptions:
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
    pairs_with_post_training = True  # a stripped float model: prune+int8, prune+float16, ...

    def wrap(self, model: Any, options: PruneOptions, before: tuple[str, ...], steps: int,
             info: dict[str, Any]) -> Any:
        sparsity = tfmot().sparsity.keras
        frequency, end = schedule_steps(options, steps)
        if options.schedule == "constant":
            schedule = sparsity.ConstantSparsity(options.sparsity, begin_step=0, frequency=frequency)
        else:
            schedule = sparsity.PolynomialDecay(options.initial_sparsity, options.sparsity, begin_step=0,
                                                end_step=end, frequency=frequency)
        info["schedule"] = {"kind": options.schedule, "frequency": frequency, "end_step": end, "steps": steps}
        m_by_n = options.sparsity_m_by_n
        chosen = plan(model, "prune", _prunable if m_by_n is None else _m_by_n_verdict(m_by_n), options.layers)
        info.update(chosen.record())
        extra = {} if m_by_n is None else {"sparsity_m_by_n": m_by_n}
        return clone_wrapped(model, chosen, lambda layer: sparsity.prune_low_magnitude(
            layer, pruning_schedule=schedule, **extra))

    def callbacks(self) -> list[Any]:
        return [tfmot().sparsity.keras.UpdatePruningStep()]

    def strip(self, wrapped: Any) -> Any:
        return tfmot().sparsity.keras.strip_pruning(wrapped)


def _prunable(layer: Any) -> Verdict:
    """Wrap layers with prunable weights; TFMOT's registry (or PrunableLayer) says which."""
    sparsity = tfmot().sparsity.keras
    from tensorflow_model_optimization.python.core.sparsity.keras import prune_registry

    registry = prune_registry.PruneRegistry
    if isinstance(layer, sparsity.PrunableLayer):
        return True if layer.get_prunable_weights() else None
    if not registry.supports(layer):
        return f"TFMOT has no pruning config for {type(layer).__name__}"
    if registry._is_rnn_layer(layer) or registry._is_mha_layer(layer):
        return True
    return True if registry._weight_names(layer) else declined_kernel(layer, "pruning")


def _m_by_n_verdict(m_by_n: tuple[int, int]) -> Any:
    """2:4-style sparsity: Conv2D and Dense kernels whose input channels are a multiple of n."""
    def verdict(layer: Any) -> Verdict:
        import tf_keras

        if type(layer) not in (tf_keras.layers.Conv2D, tf_keras.layers.Dense):
            return None
        if layer.kernel.shape[-2] % m_by_n[1]:
            channels = layer.kernel.shape[-2]
            return f"sparsity_m_by_n {list(m_by_n)}: {channels} input channels, not a multiple of {m_by_n[1]}"
        return True

    return verdict


PRUNE = register_technique(Prune())

SCHEMES.register("prune", "magnitude pruning to `sparsity` (polynomial/constant schedule, or 2:4 `sparsity_m_by_n`), "
                          "fine-tuned, stripped; float model")(training_scheme("prune", [PRUNE]))
