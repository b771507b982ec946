"""The suite file format, as pydantic models (unknown keys are errors everywhere).

Kind-specific options (a dataset kind's `split`, a builder's `input_size`, a scheme's `io`)
are collected as extra keys here and validated by the registered implementation's own
options model in `harness.suite.loader`.
"""

from __future__ import annotations

import re
from pathlib import PurePath
from typing import Any, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    ValidationError,
    field_validator,
    model_validator,
)

from harness.errors import HarnessError

# A name that becomes a path component (a suite's run folder, a device profile file): one
# component, no separators, not "." or "..".
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]{0,127}")


def check_name(value: str, what: str) -> str:
    """`value` if it is a safe name, else HarnessError naming `what`."""
    if not _NAME.fullmatch(value) or set(value) == {"."}:
        raise HarnessError(f"{what}: {value!r} is not a valid name (letters, digits, '_', '.', '+', '-'; "
                           "one path component)")
    return value


def _name(value: str) -> str:
    try:
        return check_name(value, "name")
    except HarnessError as exc:
        raise ValueError(str(exc).removeprefix("name: ")) from None


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class WithOptions(BaseModel):
    """A mapping whose unknown keys are options for a registered implementation."""

    model_config = ConfigDict(extra="allow", frozen=True)

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.__pydantic_extra__ or {})


class DatasetSpec(WithOptions):
    kind: str = Field(description="dataset loader: fashion_mnist, mnist, digits, npz, image_folder, synthetic")


class TrainSpec(Strict):
    dataset: str
    epochs: int = Field(5, ge=1)
    batch_size: int = Field(128, ge=1)
    learning_rate: float = Field(1e-3, gt=0)
    schedule: str = Field("constant", pattern="^(constant|cosine)$")
    limit: int | None = Field(None, ge=1, description="train on the first N samples only")
    seed: int = 0


class FinetuneSpec(Strict):
    """Fine-tuning budget of the training-time schemes (prune, cluster, qat and their combinations).

    May be given at suite level, per model and per scheme entry; the most specific block wins
    field by field. Without a `dataset`, the model's `train:` dataset is used.
    """

    dataset: str | None = Field(None, description="default: the model's `train:` dataset")
    epochs: int = Field(1, ge=1)
    limit: int | None = Field(None, ge=1, description="fine-tune on the first N samples only")
    batch_size: int = Field(32, ge=1)
    optimizer: Literal["adam", "sgd", "rmsprop"] = "adam"
    learning_rate: float | None = Field(
        None, gt=0, description="default: the technique's (prune 1e-3, qat 1e-4, cluster 1e-5)")
    schedule: Literal["constant", "cosine"] = Field("cosine", description="learning rate over the fine-tuning steps")
    target: Literal["auto", "labels", "float_argmax", "float_outputs"] = Field(
        "auto", description="what to fit: dataset labels; the float model's top-1 (for unlabelled data); "
        "or the float model's outputs (MSE). auto: labels when the dataset has them, else float_argmax")
    seed: int = 0


def merge_finetune(*blocks: FinetuneSpec | None) -> FinetuneSpec:
    """One budget from suite, model and scheme blocks: later blocks win, field by field (fields they set)."""
    values: dict[str, Any] = {}
    for block in blocks:
        if block is not None:
            values.update({name: getattr(block, name) for name in block.model_fields_set})
    return FinetuneSpec(**values)


class TaskSpec(WithOptions):
    """The task and its evaluation data; other keys are the task's own options (e.g. a decoder)."""

    kind: str = "classification"
    dataset: str | None = Field(None, description="the evaluation dataset (every task but `generation` needs one)")
    limit: int | None = Field(None, ge=1, description="evaluate the first N samples (default: all)")
    batch_size: int = Field(256, ge=1)


class CalibrationSpec(Strict):
    dataset: str
    samples: int = Field(200, ge=1)
    seed: int = 0


GenerativeFamily = Literal["toy", "smollm", "smollm2", "qwen2.5-0.5b", "qwen3-0.6b", "gemma-2b", "tinyllama"]


class GenerativeSpec(Strict):
    """`generative:` a decoder built with litert-torch's generative layers (random weights from `seed`, or a
    `checkpoint`), exported with prefill and decode signatures and a KV cache of `max_tokens` (harness.models.generative).
    Unset sizes are the family's (toy: 2 layers, 128 wide, 4 heads, 1024 tokens)."""

    family: GenerativeFamily = Field("toy", description=(
        "toy (a small decoder of litert-torch's building blocks) or an architecture litert-torch ships"))
    layers: int | None = Field(None, ge=1, le=256, description="transformer blocks (default: the family's)")
    embedding_dim: int | None = Field(None, ge=8, description="model width (toy only; default 128)")
    heads: int | None = Field(None, ge=1, description="attention heads (toy only; default 4)")
    vocab_size: int | None = Field(None, ge=2, description="vocabulary (default: the family's)")
    max_tokens: int = Field(64, ge=2, le=1 << 17, description="KV-cache size: the prompt and every decoded token")
    seed: int = Field(0, description="random initial weights (without a checkpoint)")
    checkpoint: str | None = Field(None, description=(
        "the family's weights (its litert-torch loader's format; toy: a torch state_dict file), relative to the suite"))

    @model_validator(mode="after")
    def _toy_sizes(self) -> GenerativeSpec:
        if self.family != "toy" and (self.embedding_dim is not None or self.heads is not None):
            raise ValueError("`embedding_dim` and `heads` size the toy family; another family has its own")
        width, heads = self.embedding_dim or 128, self.heads or 4
        if self.family == "toy" and width % heads:
            raise ValueError(f"embedding_dim ({width}) is not a multiple of heads ({heads})")
        return self


TorchDtype = Literal["float32", "float16", "int32", "int64", "bool"]


class TorchInput(Strict):
    """One input of a torch model: its whole example shape (batch first) and dtype."""

    shape: list[int] = Field(min_length=1)
    dtype: TorchDtype = "float32"

    @field_validator("shape")
    @classmethod
    def _positive(cls, value: list[int]) -> list[int]:
        if any(d < 1 for d in value):
            raise ValueError(f"every dimension must be >= 1, not {value}")
        return value


def _torch_input(value: Any) -> Any:
    """A shape list is a float32 input of that shape."""
    return {"shape": value} if isinstance(value, list) else value


class TorchSpec(Strict):
    """`torch: {module: file.py, factory: NAME, input_shape: [...]}`: a PyTorch model built by a factory
    (an `nn.Module`, put in eval mode) and exported with `torch.export` for the example inputs
    `input_shape` gives (harness/models/torch_source.py)."""

    module: str = Field(description="a Python file, relative to the suite, that defines the factory")
    factory: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", description="the function returning the nn.Module")
    input_shape: list[int] | list[TorchInput] | dict[str, TorchInput] = Field(description=(
        "one float32 input's example shape, batch first ([1, 1, 28, 28]); or several: a list of shapes or "
        "{shape, dtype} (positional), or {name: {shape, dtype}} (keyword arguments)"))

    @field_validator("input_shape", mode="before")
    @classmethod
    def _shapes(cls, value: Any) -> Any:
        if isinstance(value, list) and value and all(isinstance(v, (list, dict)) for v in value):
            return [_torch_input(v) for v in value]
        if isinstance(value, dict):
            return {name: _torch_input(v) for name, v in value.items()}
        return value

    @field_validator("input_shape")
    @classmethod
    def _not_empty(cls, value: Any) -> Any:
        if not value:
            raise ValueError("give at least one input")
        if isinstance(value, list) and isinstance(value[0], int) and any(d < 1 for d in value):
            raise ValueError(f"every dimension must be >= 1, not {value}")
        return value

    @property
    def inputs(self) -> list[tuple[str | None, TorchInput]]:
        """(keyword name, or None for a positional input; the input) in order."""
        shape = self.input_shape
        if isinstance(shape, dict):
            return list(shape.items())
        if shape and isinstance(shape[0], TorchInput):
            return [(None, item) for item in shape if isinstance(item, TorchInput)]
        return [(None, TorchInput(shape=[d for d in shape if isinstance(d, int)]))]


class ModelSpec(WithOptions):
    """One model: a registered builder, a file (.keras/.h5, SavedModel dir, .tflite, a torch.export `.pt2`), a
    PyTorch module factory (`torch:`) or a generative decoder (`generative:`)."""

    name: str | None = None
    builder: str | None = None
    path: str | None = None
    generative: GenerativeSpec | None = Field(None, description="a small language model (needs quantbench[torch])")
    torch: TorchSpec | None = Field(None, description=(
        "a PyTorch model from a factory (needs the `torch` extra: pip install 'quantbench[torch]')"))
    train: TrainSpec | None = None
    task: TaskSpec | None = None
    calibration: CalibrationSpec | None = None
    finetune: FinetuneSpec | None = None
    schemes: list[str] | None = Field(None, description="run only these scheme ids (globs) for this model")
    baseline: Literal["float", "as_is"] = Field("float", description=(
        "float: a .tflite source must be (or normalize to) a float model, else it is refused as the "
        "float32 baseline; as_is: a model quantized upstream is the baseline as it is"))

    @model_validator(mode="after")
    def _one_source(self) -> ModelSpec:
        if sum(source is not None for source in (self.builder, self.path, self.torch, self.generative)) != 1:
            raise ValueError("give exactly one of `builder` (a registered model), `path` (a model file), "
                             "`torch` (a PyTorch module factory) or `generative` (a decoder)")
        if self.generative is not None and (self.train is not None or self.options or self.baseline != "float"):
            raise ValueError("a `generative` model takes no `train`, `baseline` or builder options")
        if self.builder is None and self.train is not None:
            raise ValueError("`train` applies to built-in builders only, not to model files")
        if self.builder is None and self.options:
            raise ValueError(f"unknown keys for a model file: {', '.join(sorted(self.options))}")
        if (self.builder is not None or self.torch is not None) and self.baseline != "float":
            raise ValueError("`baseline: as_is` applies to .tflite model files, not to builders or torch models")
        return self

    @property
    def label(self) -> str:
        if self.generative is not None:
            return self.name or f"{self.generative.family}_{self.generative.max_tokens}"
        return self.name or self.builder or (self.torch.factory if self.torch else PurePath(self.path or "model").stem)

    @property
    def has_keras_model(self) -> bool:
        """Whether training-time (TFMOT) schemes can apply: a builder, a Keras file or a SavedModel, not a
        .tflite file, a torch model nor a generative decoder (their cells are n/a)."""
        if self.torch is not None or self.generative is not None:
            return False
        return self.path is None or PurePath(self.path).suffix.lower() not in (".tflite", ".pt2")


class SchemeSpec(WithOptions):
    """A scheme entry: `int8` or {scheme: int8_only, id: int8_uint8_io, io: uint8}; a named recipe's
    entry is called by the recipe's name unless it has an `id` ({scheme: recipe, recipe: static_wi8_ai8})."""

    scheme: str
    id: str | None = None
    finetune: FinetuneSpec | None = None  # training-time schemes only
    calibration: CalibrationSpec | None = Field(
        None, description="calibration data for this entry only (e.g. to compare noise with real samples)")

    @property
    def label(self) -> str:
        """The entry's id: `id:`, else a named recipe's name (`{scheme: recipe, recipe: NAME}`), else the scheme."""
        recipe = self.options.get("recipe") if self.scheme == "recipe" else None
        if self.id is None and isinstance(recipe, str) and not recipe.endswith(".json"):
            return recipe
        return self.id or self.scheme


class CooldownSpec(Strict):
    """Before timing a cell, wait until the device is cool and quiet: on a phone its hottest thermal
    zone at most `max_temp_c` and the platform's thermal status (`dumpsys thermalservice`) at most
    `max_thermal_status`; on a local device at most `max_runnable` other runnable tasks on the pinned
    core and at most `max_other_load` of that core busy with other work."""

    max_temp_c: float | None = Field(None, gt=0, lt=150, description="phones: hottest thermal zone (°C)")
    max_thermal_status: int = Field(1, ge=0, le=6, description=(
        "0 none, 1 light (the default: light throttling is tolerated), 2 moderate ... 6 shutdown"))
    max_runnable: int | None = Field(None, ge=0, description=(
        "local devices: other runnable tasks on the pinned core (/proc/<pid>/task/*/stat)"))
    max_other_load: float | None = Field(None, ge=0, le=1, description=(
        "local devices: share of the pinned core busy with other work (/proc/stat over 0.2 s)"))
    wait_s: float = Field(300, ge=0, description="give up waiting after this long: the cell is marked hot / busy")
    poll_s: float = Field(5, gt=0)

    @model_validator(mode="after")
    def _some_limit(self) -> CooldownSpec:
        if self.max_temp_c is None and self.max_runnable is None and self.max_other_load is None:
            raise ValueError("give max_temp_c (phones), max_runnable or max_other_load (local devices)")
        return self


class LatencySpec(Strict):
    warmup_runs: int = Field(10, ge=0)
    num_runs: int = Field(50, ge=1)
    min_secs: float = Field(1.0, ge=0)
    max_secs: float = Field(60.0, gt=0)
    repeats: int = Field(1, ge=1, le=100, description=(
        "independent measurements per cell (fresh processes; separate benchmark_model runs on a phone); "
        "their medians are the unit of the run-to-run test"))
    ab_pairs: int = Field(5, ge=0, le=100, description=(
        "when a cell's model differs from the earlier run's, time both side by side in this many pairs "
        "(0: never; compare across runs only)"))
    ab_max_pairs: int | None = Field(None, ge=2, le=400, description=(
        "while the paired interval still straddles the regression bound, add pairs two at a time up to "
        "this many (default 4 x ab_pairs; equal to ab_pairs: never add)"))
    cooldown: CooldownSpec | None = Field(None, description="wait for the device to cool (phones) or quieten (local)")
    busy_share: float = Field(0.10, ge=0, le=1, description=(
        "local devices: a cell is marked busy when other work (or steal time) took more than this share of "
        "its pinned core while it was measured (1: never)"))
    float_pairs: int = Field(6, ge=0, le=100, description=(
        "time the float baseline model and the cell's model in this many alternating pairs for the paired "
        "latency_ratio (record: latency_vs_float; 0: off, the ratio of medians measured apart)"))
    decode_tokens: int | None = Field(None, ge=1, description=(
        "generation cells: decode steps per timed run after the prompt's prefill (default: the `generation` "
        "task's decode_tokens)"))
    device_check: int = Field(0, ge=0, le=1000, description=(
        "phones: after timing, run this many evaluation samples on the device (benchmark_model "
        "--input_layer_value_files/--output_filepath) and compare its outputs with the host's outputs of the "
        "same .tflite (record: device_numerics; metrics device_snr_db, ...). 0: off; local devices ignore it"))

    @model_validator(mode="after")
    def _ordered(self) -> LatencySpec:
        if self.min_secs > self.max_secs:
            raise ValueError(f"min_secs ({self.min_secs:g}) is above max_secs ({self.max_secs:g})")
        if self.ab_max_pairs is not None and self.ab_max_pairs < self.ab_pairs:
            raise ValueError(f"ab_max_pairs ({self.ab_max_pairs}) is below ab_pairs ({self.ab_pairs})")
        return self

    @property
    def most_ab_pairs(self) -> int:
        """The pair budget of one A/B re-timing: ab_max_pairs, else 4 x ab_pairs."""
        return self.ab_max_pairs if self.ab_max_pairs is not None else 4 * self.ab_pairs


class Bound(Strict):
    """Limits for one metric: drops are measured against the float baseline of the model."""

    max_abs_drop: float | None = Field(None, ge=0, description="largest drop allowed (a drop is ≥ 0)")
    max_rel_drop: float | None = Field(None, ge=0)
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _not_empty(self) -> Bound:
        if all(v is None for v in (self.max_abs_drop, self.max_rel_drop, self.min, self.max)):
            raise ValueError("give at least one of max_abs_drop, max_rel_drop, min, max")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min:g}) is above max ({self.max:g}): no value can pass")
        return self


class RecoverSpec(Bound):
    """`recover: {metric: top1, max_abs_drop: 0.005, max_float_layers: 10}` on a full-integer scheme (the loop:
    harness.numerics.recover; whether `metric` names a known metric: the scheme's options, which know the tasks)."""

    metric: str = Field(description="the task metric the bound applies to (any metric a threshold may name)")
    max_float_layers: int = Field(10, ge=1, description="budget: at most this many layers kept in float")
    steps: Literal["doubling", "one_by_one"] = Field("doubling", description="1, 2, 4, ... or 1, 2, 3, ... layers")
    rank_by: Literal["snr_drop_db", "local_snr_db", "rmse_per_scale"] = Field("snr_drop_db", description=(
        "how far the accumulated SNR falls across the layer (largest first); or the debugger's local error: SNR "
        "vs the float op's output power (lowest first), or RMSE in quantization steps (highest first)"))
    unit: Literal["layer", "op"] = Field("layer", description="what is ranked and kept float: a Keras layer's ops "
                                         "together, or each quantized op alone")
    latency_runs: int = Field(100, ge=0, description="host invokes timed per step (1 thread, batch 1); 0: no latency")


# the claims a scheme may state (harness.claims), which a suite's `claims:` may name
ClaimName = Literal["integer_only", "weights_quantized", "weights_float16", "quantized_ops_share"]
CLAIM_NAMES: tuple[str, ...] = get_args(ClaimName)


class ClaimBound(Strict):
    """Another minimum for a scheme's claim (the claim's value is 1/0 or a share)."""

    min: float = Field(ge=0, le=1)


ClaimSetting = StrictBool | ClaimBound
"""A suite's word on a scheme's claim: true (checked as the scheme states it, the default), false
(accepted: checked and recorded, not failing) or `{min: x}` (checked against another minimum)."""


class ThresholdOverride(BaseModel):
    """Bounds that replace the defaults for matching models and schemes (glob patterns); `claims`
    accepts or restates what the matching schemes claim their .tflite holds (harness/claims.py)."""

    model_config = ConfigDict(extra="allow", frozen=True, allow_inf_nan=False)
    __pydantic_extra__: dict[str, Bound]
    models: list[str] = ["*"]
    schemes: list[str] = ["*"]
    claims: dict[str, ClaimSetting] = Field({}, description=(
        "per claim (integer_only, weights_quantized, weights_float16, quantized_ops_share): false accepts it, "
        "{min: x} restates its minimum, true checks it as the scheme states it"))

    @field_validator("claims", mode="before")
    @classmethod
    def _claim_settings(cls, value: Any) -> Any:
        """Known claim names, each true, false or {min: x} (one message, not one per union member)."""
        if not isinstance(value, dict):
            return value
        unknown = sorted(str(name) for name in value if name not in CLAIM_NAMES)
        if unknown:
            raise ValueError(f"unknown claim {unknown[0]!r} (known: {', '.join(CLAIM_NAMES)})")
        return {name: _claim_setting(name, setting) for name, setting in value.items()}


def _claim_setting(name: str, setting: Any) -> ClaimSetting:
    if isinstance(setting, (bool, ClaimBound)):
        return setting
    if not isinstance(setting, dict):
        raise ValueError(f"{name}: give true, false (accepted) or {{min: x}}, not {setting!r:.40}")  # noqa: TRY004 - pydantic wants ValueError
    try:
        return ClaimBound.model_validate(setting)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        raise ValueError(f"{name}{'.' + where if where else ''}: {error['msg']}") from None


class Thresholds(Strict):
    defaults: dict[str, Bound] = {}
    overrides: list[ThresholdOverride] = []


class RegressionSpec(Strict):
    """When a change vs the earlier run of the suite is a regression (metrics use the thresholds' drop bounds)."""

    alpha: float = Field(0.05, gt=0, lt=1, description=(
        "significance level of the cross-run latency test (Welch t on repeat medians, else Mann-Whitney U)"))
    min_latency_ratio: float = Field(1.05, ge=1, description="and the median must be at least this much slower")
    max_size_growth: float = Field(0.01, ge=0, description="relative size growth allowed (without a size_ratio drop bound)")
    min_paired_ratio: float = Field(1.02, ge=1, description=(
        "a slowdown timed side by side in one run (A/B) counts when its confidence interval lies above this "
        "(1.02: the noise study's unchanged pairs never had an interval above 1.006; a 5 % slowdown's lower "
        "end can fall below 1.05)"))
    min_repeats: int = Field(3, ge=2, description="repeat medians each run needs for the repeat-median test")
    flag_unchanged: bool = Field(False, description=(
        "also flag a slowdown of a cell whose model file, runtime and core did not change (the machine's)"))


class Suite(Strict):
    """A whole suite file."""

    name: str | None = None
    description: str = ""
    datasets: dict[str, DatasetSpec] = {}
    models: list[ModelSpec] = Field(min_length=1)
    task: TaskSpec | None = None
    calibration: CalibrationSpec | None = None
    finetune: FinetuneSpec | None = None
    schemes: list[SchemeSpec] = Field(min_length=1)
    devices: list[str] = ["local"]
    latency: LatencySpec = LatencySpec()
    thresholds: Thresholds = Thresholds()
    regression: RegressionSpec = RegressionSpec()
    recommend: Literal["smallest", "fastest"] = Field("smallest", description=(
        "which passing cell on the size/latency Pareto front the report recommends per model and device"))

    @field_validator("name")
    @classmethod
    def _safe_name(cls, value: str | None) -> str | None:
        return _name(value) if value is not None else None

    @field_validator("devices")
    @classmethod
    def _safe_devices(cls, value: list[str]) -> list[str]:
        return [_name(v) for v in value]

    @field_validator("schemes", mode="before")
    @classmethod
    def _strings_are_schemes(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"scheme": v} if isinstance(v, str) else v for v in value]
        return value
