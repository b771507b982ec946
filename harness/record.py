"""The cell record and the run info, typed once: what results.jsonl, run.json and the history hold.

A record is a plain dict (it is read and written as JSON by other tools too), described here by
TypedDicts that the type checker follows through the runner, the stores, compare and the reports.
`validate_record` checks a record read back from disk against the same description (strictly:
no type coercion), so a hand-edited or damaged results file stops with the file, line and field
instead of a traceback deep in a report.

JSON has no NaN or infinity; a metric can be both (NaN inputs, identical outputs' SNR). They are
written as the strings "NaN", "Infinity" and "-Infinity" and read back as floats.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Literal, NotRequired, Required, cast

from pydantic import ConfigDict, TypeAdapter, ValidationError
from typing_extensions import TypedDict

FORMAT_VERSION = 3  # 1: no `format_version` key; 2: every part inline; 3: the sample and the details in the sidecar

Status = Literal["ok", "failed", "n/a"]
NonFinite = Literal["NaN", "Infinity", "-Infinity"]
JsonFloat = float | NonFinite  # a float as a record holds it before it is read back (JSON has no NaN or infinity)
_CONFIG = ConfigDict(extra="allow", strict=True)


# `pass` is a Python keyword, hence the functional form.
Verdict = TypedDict("Verdict", {
    "check": str, "metric": str, "threshold": float, "value": float, "observed": float,
    "baseline": float | None, "pass": bool,
    "note": NotRequired[str],  # how the value was measured (latency_ratio), or why a metric was not produced
    "claim": NotRequired[bool],  # the check of a scheme's claim (harness.claims)
})
Verdict.__pydantic_config__ = _CONFIG  # type: ignore[attr-defined]


class LatencyStats(TypedDict, total=False):
    __pydantic_config__ = _CONFIG  # type: ignore[misc]
    median: float | None
    mean: float | None
    p90: float | None
    std: float | None
    min: float | None
    max: float | None
    count: int | None
    init: float | None
    first: float | None
    warmup_mean: float | None
    p5: float | None
    p95: float | None
    repeat_medians: list[float]  # each repeat's median: the unit of the run-to-run statistics (harness.stats)
    repeats: int
    repeat_cv: float  # the repeat medians' coefficient of variation (with more than one repeat)


class BenchmarkBinary(TypedDict, total=False):
    """A phone's benchmark_model as the device profile names it."""

    __pydantic_config__ = _CONFIG  # type: ignore[misc]
    path: str | None
    sha256: str


class LatencySetup(TypedDict, total=False):
    """How the latency was measured (the device's last repeat): pinned core(s), threads, the phone's
    command and what it took, the runtime and a phone's benchmark binary."""

    __pydantic_config__ = _CONFIG  # type: ignore[misc]
    core: int | list[int] | None
    threads: int | None
    mask: str
    command: str
    attempts: int
    model_pushed: bool
    remote_calls: list[str]
    runtime: str | None
    benchmark_binary: BenchmarkBinary


class PairedRatio(TypedDict, total=False):
    """The ratio B/A of pairs (A, B) timed side by side and its interval (harness.stats.paired_ratio)."""

    __pydantic_config__ = _CONFIG  # type: ignore[misc]
    ratio: float | None
    ci: list[float] | None
    confidence: float
    n_pairs: int


class LatencyAB(PairedRatio, total=False):
    """`latency.ab_pairs`: the earlier run's model (A, on the earlier benchmark binary when that changed)
    re-timed in alternating pairs beside this cell's (B) when they differ (harness._latency.time_ab);
    `ratio` is the paired B/A with its `ci`. `unavailable`: why there are no pairs."""

    __pydantic_config__ = _CONFIG  # type: ignore[misc]
    baseline_sha256: str
    baseline_run: str
    baseline_binary_sha256: str
    baseline_path: str
    unavailable: str | None
    pairs: list[list[float]]
    bound: float | None
    extended: int  # pairs added beyond `ab_pairs` while the interval still straddled `bound`


# `class` is a Python keyword, hence the functional form.
UntouchedLayer = TypedDict("UntouchedLayer", {"layer": str, "class": str, "reason": str}, total=False)
UntouchedLayer.__pydantic_config__ = _CONFIG  # type: ignore[attr-defined]


class TechniqueRecord(TypedDict, total=False):
    """Training-time schemes: the techniques applied in order, the layers any step wrapped, those a step
    left untouched (why), QAT's layers whose outputs stay quantized (harness.schemes.training._tfmot)."""

    __pydantic_config__ = _CONFIG  # type: ignore[misc]
    chain: list[str]
    wrapped: list[str]
    untouched: list[UntouchedLayer]
    output_quantized: list[str]


class KernelStats(TypedDict, total=False):
    __pydantic_config__ = _CONFIG  # type: ignore[misc]
    layer: str
    op: str
    dtype: str
    shape: list[int]
    weights: int
    zeros: int
    sparsity: float | None
    unique: int
    unique_per_channel_max: int
    sparse_encoded: bool


class WeightStats(TypedDict, total=False):
    """Weight statistics read back from the produced .tflite (`harness.tflite.weights`)."""

    __pydantic_config__ = _CONFIG  # type: ignore[misc]
    layers: list[KernelStats]
    weights: int
    zeros: int
    sparsity: float | None
    max_unique: int | None
    max_unique_per_channel: int | None


class Artifact(TypedDict, total=False):
    __pydantic_config__ = _CONFIG  # type: ignore[misc]
    path: Required[str]
    sha256: Required[str]
    cached: bool
    source: str
    source_info: dict[str, Any]
    rebuilt: list[str]  # what was wrong with a cache entry this run discarded and rebuilt


class Conversion(TypedDict, total=False):
    """A framework source's float .tflite vs the framework model itself (Keras/SavedModel: TFLiteConverter;
    torch: litert-torch) on the evaluation inputs, worst output; `cell_*`: this cell's .tflite vs it
    (harness/models/conversion.py). `error`: the comparison could not be made (the cell stands)."""

    __pydantic_config__ = _CONFIG  # type: ignore[misc]
    framework: Required[str]  # keras | saved_model | torch
    converter: str  # what made the float .tflite: TFLiteConverter or litert-torch
    versions: dict[str, str]  # the converter stack's versions (part of the artifacts' cache keys)
    samples: int
    snr_db: JsonFloat  # worst output's SNR of the float .tflite vs the framework model, dB
    max_abs_error: JsonFloat
    cell_snr_db: JsonFloat  # this cell's .tflite vs the framework model
    cell_max_abs_error: JsonFloat
    error: str


class ExecutedOn(TypedDict, total=False):
    """Where a cell ran: the Ray node (`local` for the in-process executor) and its host name.
    With `--executor ray`, this is the node that measured the cell (or did its host work, when it
    was not measured); `host_work` names the node of the host work when that was another one."""

    __pydantic_config__ = _CONFIG  # type: ignore[misc]
    node_id: Required[str]
    hostname: Required[str]
    host_work: dict[str, str]
    retried: list[str]  # why an earlier attempt of this cell was lost (a dead node), when it was retried


class OutputNumbers(TypedDict, total=False):
    """One output tensor and its five fidelity numbers (harness.fidelity)."""

    __pydantic_config__ = _CONFIG  # type: ignore[misc]
    name: str
    shape: list[int]  # `outputs`: the sample count, then one sample's shape; device_numerics: one invocation's
    dtype: str
    snr_db: JsonFloat
    cosine: JsonFloat
    nrmse: JsonFloat
    max_abs_error: JsonFloat
    mean_abs_error: JsonFloat


class GenerationRecord(TypedDict, total=False):
    """`generation` task cells (harness.tasks.generation): the teacher-forced evaluation's prompts and what the
    model is; `logit_snr` says which position `logit_snr_db` is (the worst), `logit_snr_db_mean` the mean over
    positions; `timed_*`: the latency process's prefill + decode runs (every repeat's)."""

    __pydantic_config__ = _CONFIG  # type: ignore[misc]
    prompts: str
    sequences: int
    prefill_tokens: int
    decode_tokens: int
    vocab_size: int
    max_tokens: int
    logit_snr: str
    logit_snr_db_mean: JsonFloat | None
    timed_decode_tokens: int
    timed_runs: int


class DeviceNumerics(TypedDict, total=False):
    """`latency: {device_check: N}` on a phone: its outputs vs the host's outputs of the same .tflite on
    the same `samples` inputs (one benchmark_model run per `invocations`; harness.devices.android._numerics).
    `status` ok: `outputs` holds every output's five numbers over all samples (`shape` is one
    invocation's), `worst` the worst of each (also in `metrics` as device_snr_db, ...); skipped (the
    binary lacks the flags) or failed (the tool failed on the inputs): `reason` says why, no numbers."""

    __pydantic_config__ = _CONFIG  # type: ignore[misc]
    status: Required[Literal["ok", "skipped", "failed"]]
    reason: str | None
    samples: int
    invocations: int
    outputs: list[OutputNumbers]
    worst: dict[str, float]


class DiagnosedTensor(TypedDict, total=False):
    """One op output of the cell's model vs the float model's tensor of the same name (harness.numerics.diagnose)."""

    __pydantic_config__ = _CONFIG  # type: ignore[misc]
    position: int  # the op's position in graph order
    op: str
    tensor: str
    dtype: str
    scale: float | None  # its quantization scale (None: not quantized, or per channel)
    snr_db: JsonFloat
    nrmse: JsonFloat
    rmse_per_scale: JsonFloat | None  # RMSE in quantization steps
    debugger_rmse_per_scale: JsonFloat  # the same by TF's QuantizationDebugger, where it has the tensor


class Diagnosis(TypedDict, total=False):
    """`diagnose: true`: every intermediate tensor of the cell's model vs the float model's (8 calibration samples)."""

    __pydantic_config__ = _CONFIG  # type: ignore[misc]
    route: str  # "litert_quantizer.validate" (.tflite sources), "quantization_debugger" (converter int8), "independent"
    kernels: str  # what the per-tensor run used: "deployed: xnnpack" (or xnnpack+builtin, builtin)
    samples: int
    tensors: int  # op outputs of the cell's model
    compared: int  # those the float model also has (same name and shape)
    ranked: list[DiagnosedTensor]  # the 20 lowest SNRs, worst first
    snr_curve: list[list[Any]]  # [position, snr_db] in graph order, at most 200 points (each bin's lowest)
    cross_check: dict[str, Any] | None  # the library route against the independent computation (None: no route)
    min_snr_db: float | str
    na: str  # why there is no diagnosis (no float32 cell)
    error: str  # the diagnosis failed (the cell itself did not)


class OpCounts(TypedDict, total=False):
    """One op type of an audit: how many, and how many run in each precision."""

    __pydantic_config__ = _CONFIG  # type: ignore[misc]
    count: int
    float: int
    int8: int
    int16: int
    other: int
    hybrid: int


class FloatGroup(TypedDict, total=False):
    __pydantic_config__ = _CONFIG  # type: ignore[misc]
    op: str
    count: int
    reason: str | None
    outputs: list[str]


class Audit(TypedDict, total=False):
    """What the produced .tflite holds (harness.tflite.audit)."""

    __pydantic_config__ = _CONFIG  # type: ignore[misc]
    op_count: int
    ops_by_kind: dict[str, int]
    hybrid_ops: int
    ops: dict[str, OpCounts]
    stayed_float: list[FloatGroup]
    integer_only: bool
    integer_only_breakers: list[str]
    bytes_by_dtype: dict[str, int]
    bytes_by_role: dict[str, int]
    file_bytes: int
    buffer_layout: str


# A scheme's claim checked against the produced file (harness.claims); `pass` is a keyword, hence the
# functional form. `pass`: the claim holds as the scheme states it (None: `waived` by an option).
ClaimResult = TypedDict("ClaimResult", {
    "claim": str,  # integer_only | weights_quantized | weights_float16 | quantized_ops_share
    "statement": str,  # what the scheme claims, in words
    "min": float,  # the scheme's stated minimum of `value`
    "value": float | None,  # what the file holds: 1/0 (integer_only) or a share; None: not found
    "pass": bool | None,
    "found": str,  # one line: what was found, the ops or kernels left float named (capped)
    "left_float": list[str],  # op groups ("PRELU ×53 (p_re_lu, …)") or kernels ("dense/kernel (float32)")
    "waived": str,  # why the claim was not checked (an option keeps layers float on request)
}, total=False)
ClaimResult.__pydantic_config__ = _CONFIG  # type: ignore[attr-defined]
class OpQuantization(TypedDict, total=False):
    """One op of a produced model as quantization left it (harness.tflite.quantization)."""

    __pydantic_config__ = _CONFIG  # type: ignore[misc]
    op: str
    output: str
    weights: str | None  # stored kernel dtype (int8, int4, int2, float16, float32); None: no constant weights
    bits: int | None
    granularity: str | None  # tensorwise | channelwise | blockwise; None: weights not quantized
    block_size: int | None
    activations: str  # float | int8 | int16 | other
    stored_bits: int  # only when the kernel's buffer holds more bits per weight than its type (unpacked int4)


class TargetedOp(TypedDict, total=False):
    """A targeted op not quantized as asked: `left_float` (with the quantizer's reason when it gives
    one) or `not_as_asked` (with what it `got`)."""

    __pydantic_config__ = _CONFIG  # type: ignore[misc]
    op: str
    output: str
    asked: str
    reason: str | None
    got: str


class Quantization(TypedDict, total=False):
    """What the scheme asked and what the produced .tflite really holds (harness.tflite.quantization)."""

    __pydantic_config__ = _CONFIG  # type: ignore[misc]
    rules: list[str]  # what was asked, one line per recipe entry: `regex / op → ask`
    ops: list[OpQuantization]
    targeted: int
    as_asked: int
    coverage: float | None  # as_asked / targeted: the metric recipe_coverage (None: nothing targeted)
    left_float: list[TargetedOp]
    not_as_asked: list[TargetedOp]
    note: str | None


class Delegation(TypedDict, total=False):
    """The delegate that took the most nodes (benchmark_log.Delegates.delegation)."""

    __pydantic_config__ = _CONFIG  # type: ignore[misc]
    delegate: str
    nodes: int
    total: int | None
    partitions: int | None
    ratio: float | None
    fully_delegated: bool | None


class DelegatePartition(TypedDict, total=False):
    """A `Replacing N out of M node(s) with delegate (X) node` line (benchmark_log.DelegatePartition)."""

    __pydantic_config__ = _CONFIG  # type: ignore[misc]
    delegate: str
    nodes_replaced: int
    nodes_total: int | None  # absent in older runtimes
    partitions: int | None
    scope: str | None  # "whole graph" or "subgraph N"


class DelegateApplication(TypedDict, total=False):
    """The tool's verdict after applying a delegate it was asked for (benchmark_log.DelegateApplication)."""

    __pydantic_config__ = _CONFIG  # type: ignore[misc]
    name: str
    coverage: str | None  # complete, partial, none; None when not said
    kernels: int | None


class Delegates(TypedDict, total=False):
    """A device log's delegate lines (benchmark_log.Delegates.to_dict)."""

    __pydantic_config__ = _CONFIG  # type: ignore[misc]
    partitions: list[DelegatePartition]
    applied: list[DelegateApplication]
    created: list[str]
    failures: list[str]
    nodes_by_delegate: dict[str, int]
    delegation: Delegation | None


class Acceleration(TypedDict, total=False):
    """A local cell: how much of its model the host's XNNPACK path takes (harness.tflite.runtime.acceleration):
    the interpreter's nodes, those the XNNPACK delegate took and its partitions, LiteRT CompiledModel's
    `is_fully_accelerated()`; `fully_delegated` and `ratio` feed the thresholds of the same names as a
    phone's delegation. `error`: the probe failed (its thresholds fail)."""

    __pydantic_config__ = _CONFIG  # type: ignore[misc]
    delegate: str
    fully_accelerated: bool | None
    delegated_nodes: int
    nodes: int
    partitions: int
    ratio: float | None
    fully_delegated: bool
    note: str
    error: str


class OpTypeRow(TypedDict, total=False):
    """A row of benchmark_model's op-profile tables (more columns are kept as they were printed)."""

    __pydantic_config__ = _CONFIG  # type: ignore[misc]
    node_type: str
    avg_ms: float | None


class OpProfile(TypedDict, total=False):
    """benchmark_model's op profile of the regular runs (benchmark_log.OpProfile.to_dict)."""

    __pydantic_config__ = _CONFIG  # type: ignore[misc]
    run_order: list[OpTypeRow]
    top_by_computation_time: list[OpTypeRow]
    top_by_memory_use: list[OpTypeRow]
    summary_by_node_type: list[OpTypeRow]
    nodes_executed: int | None
    nodes_observed: int | None
    run_total: dict[str, float | int | None] | None


class RecoveryStep(TypedDict, total=False):
    __pydantic_config__ = _CONFIG  # type: ignore[misc]
    float_layers: int
    float_ops: int
    metric: float | str  # "NaN"/"Infinity" kept as written: `metric` is also a name field
    size_bytes: int
    latency_ms: float | None


class Recovery(TypedDict, total=False):
    """`recover:` — the float layers chosen and every step (harness.numerics.recover)."""

    __pydantic_config__ = _CONFIG  # type: ignore[misc]
    metric: str
    reference: float | None
    float_layers: list[str]
    float_tensors: list[str]
    steps: list[RecoveryStep]
    met: bool
    ranked_by: str
    ranking: list[dict[str, Any]]
    latency: str | None
class HostDuring(TypedDict, total=False):
    """A local cell's pinned core while it was measured, over all its repeats (harness.devices.local.host_state):
    other tasks' and steal time's shares of the core (None: watched too briefly to tell)."""

    __pydantic_config__ = _CONFIG  # type: ignore[misc]
    measurements: int
    watched_s: float
    other_share: float | None
    steal_share: float | None


class CoreReading(TypedDict, total=False):
    """A phone core's cpufreq as read (harness.devices.android.state)."""

    __pydantic_config__ = _CONFIG  # type: ignore[misc]
    cpu: int
    cur_freq_khz: float | None
    governor: str | None


class DeviceReading(TypedDict, total=False):
    """One reading of the device, `device_state.before`/`after`. Phones (harness.devices.android.state):
    thermal zones, the thermal service's status and HAL temperatures, the hottest of them, the battery's,
    each core's frequency. Local hosts (harness.devices.local.host_state): the pinned core, load average,
    CPUs, other runnable tasks on the core, its busy share, its cpufreq."""

    __pydantic_config__ = _CONFIG  # type: ignore[misc]
    thermal_c: dict[str, float]  # phones: thermal zone type → °C
    thermal_status: int
    thermal_status_name: str
    hal_temps_c: dict[str, float]
    max_temp_c: float | None
    battery_temp_c: float | None
    cores: list[CoreReading]
    core: int  # local: the pinned core
    loadavg: list[float] | None
    cpus: int | None
    runnable_on_core: int | None  # other runnable tasks on the pinned core (this process's left out)
    core_busy_share: float | None  # over 0.2 s; read before a cell whose cool-down bounds it (max_other_load)
    freq_khz: int | str
    max_freq_khz: int | str
    governor: str


class DeviceState(TypedDict, total=False):
    """The device around a cell's measurement. Phones: temperatures, battery, thermal status and core
    frequencies `before`/`after`; `hot`, `throttled`. Local devices: load average, other runnable tasks
    on the pinned core, its busy share and cpufreq `before`/`after`, `during`, and `busy` (None: could
    not tell) with `busy_reason`."""

    __pydantic_config__ = _CONFIG  # type: ignore[misc]
    before: Required[DeviceReading]
    after: DeviceReading
    cooldown_s: float
    hot: bool
    throttled: bool
    during: HostDuring
    busy: bool | None
    busy_reason: str | None


class LatencyVsFloat(TypedDict, total=False):
    """`latency.float_pairs`: the float cell's model (A) and this cell's (B) timed in alternating pairs
    in the same run; `ratio` is the paired B/A (geometric mean) with its `ci` (95 %), the `latency_ratio`
    metric. `unpaired_ratio`: this cell's median over the float cell's, measured apart. `unavailable`:
    why there are no pairs (the float model file is gone or changed, or timing it failed). Load slows
    both sides of a pair alike, so a busy core (`busy_reason`) widens the interval more than it moves the ratio."""

    __pydantic_config__ = _CONFIG  # type: ignore[misc]
    float_sha256: Required[str]
    float_path: Required[str]
    pairs: list[list[float]]
    ratio: float | None
    ci: list[float] | None
    n_pairs: int
    confidence: float
    unpaired_ratio: float | None
    unavailable: str
    during: HostDuring  # local devices: the pinned core over all the pairs' measurements
    busy_reason: str | None  # other work or steal above latency.busy_share while the pairs were timed


class CalibrationInfo(TypedDict, total=False):
    """The data a full-integer cell was calibrated with: the suite's `calibration:` entry and the samples drawn."""

    __pydantic_config__ = _CONFIG  # type: ignore[misc]
    dataset: str
    samples: int  # asked for
    seed: int
    drawn: int  # the samples the dataset had to give (at most `samples`)


class EvaluationInfo(TypedDict, total=False):
    """How the task ran the cell's model (harness/runner/host.py) and checked its kernel paths (harness.numerics.kernels)."""

    __pydantic_config__ = _CONFIG  # type: ignore[misc]
    dataset: str
    samples: int
    source: str | None  # where the dataset's samples came from
    cached: bool  # the outputs came from the cache
    batch_size: int
    batching: str  # why that batch size (harness.tflite.batching)
    kernels: str  # the kernels the host ran: xnnpack, xnnpack+builtin, builtin
    kernel_samples: int  # samples run on every host kernel path (kernel_paths)
    kernel_paths_na: dict[str, str]  # a kernel path that could not run: why
    kernel_check_error: str  # the kernel-path check failed (kernel_gap_db fails)


class Sidecar(TypedDict):
    """Where a results.jsonl line's cell is in results.bin beside it (harness.results): `length` bytes at
    `offset` whose sha256 is `sha256`; first `latency_samples_ms` (`samples` values, little-endian `dtype`:
    float32 when exact, as a sample holds 6 significant digits), then the details (`DETAIL_PARTS`,
    zlib-compressed JSON; none when nothing is left). Reading the line puts both back (`read_results`)."""

    __pydantic_config__ = _CONFIG  # type: ignore[misc]
    offset: int
    length: int
    sha256: str
    samples: int
    dtype: Literal["float32", "float64"]


class CellRecord(TypedDict, total=False):
    """One model × scheme × device cell (a line of results.jsonl)."""

    __pydantic_config__ = _CONFIG  # type: ignore[misc]
    format_version: int
    model: Required[str]
    scheme: Required[str]
    device: Required[str]
    status: Required[Status]
    scheme_kind: str
    scheme_options: dict[str, Any]
    cell_key: str | None  # hash of everything in the suite that decides this cell's result
    error: str | None
    size_bytes: int | None
    gzip_bytes: int | None
    weights: WeightStats | None
    metrics: dict[str, JsonFloat | int | None]
    metrics_na: str | None
    latency_ms: LatencyStats | None
    latency_samples_ms: list[float] | None  # in results.bin since format 3 (`sidecar`); read with `latency_sample`
    memory: dict[str, float | int | str | None] | None
    verdicts: list[Verdict]
    artifact: Artifact | None
    timings_s: dict[str, float]
    io_types: dict[str, list[str]]
    calibration: CalibrationInfo
    evaluation: EvaluationInfo
    recovery: Recovery  # `recover:` — the float layers chosen and every step (harness.numerics.recover)
    diagnosis: Diagnosis  # `diagnose: true` — per-tensor error vs float (harness/numerics/_cell_diagnosis.py)
    latency_setup: LatencySetup
    latency_log: str
    delegates: Delegates | None
    op_profile: OpProfile | None
    acceleration: Acceleration  # local cells: how much of the model XNNPACK takes (harness.tflite.runtime)
    kernel_paths: dict[str, float | str]  # worst-output SNR vs float (dB) per host kernel path (harness.numerics.kernels)
    audit: Audit | None  # what the produced model holds (harness.tflite.audit)
    claims: list[ClaimResult]  # the scheme's claims checked against the produced model (harness.claims)
    quantization: Quantization  # per op: weights/activations as read back vs what the scheme asked
    latency_ab: LatencyAB  # the earlier run's model re-timed beside this one (harness._latency)
    technique: TechniqueRecord  # training-time schemes: layers wrapped, those left untouched (why); QAT: output_quantized
    outputs: list[OutputNumbers]  # every output: name, shape, dtype; vs float, its five numbers (harness.fidelity)
    device_numerics: DeviceNumerics  # a phone's outputs vs the host's (latency: {device_check: N})
    generation: GenerationRecord  # `generation` task: prompts, logit SNR (worst / mean), timed runs
    device_state: DeviceState  # phones: thermal state, `hot`, `throttled`; local: host load, `busy`
    latency_vs_float: LatencyVsFloat  # the float model timed in pairs beside this one (latency.float_pairs)
    executed_on: ExecutedOn  # where the cell ran (harness/executors)
    conversion: Conversion  # framework sources: the float .tflite (and this cell's) vs the framework model
    finished_at: str
    notes: NotRequired[list[str]]
    compared_with: str | None  # history copy: the earlier run this cell was compared with (None: no baseline)
    sidecar: Sidecar  # results.jsonl: where this cell's sample and details are in results.bin (harness.results)


class RunInfo(TypedDict, total=False):
    """run.json."""

    __pydantic_config__ = _CONFIG  # type: ignore[misc]
    format_version: int
    run_id: str
    suite: Required[str]
    suite_path: str | None
    suite_sha256: str | None
    suite_identity: str | None  # `name@/resolved/suite.yaml`: which suite this is (harness.history.suite_identity)
    started_at: Required[str]
    resumed_at: str | None
    finished_at: str | None
    status: str  # running | finished | interrupted | failed
    argv: list[str]
    git_commit: str | None
    tool_versions: dict[str, str]
    host: dict[str, Any]
    devices: dict[str, Any]
    cache_dir: str
    plan: list[str]  # the cell ids this run set out to produce
    notes: list[str]


@functools.cache
def _validator(shape: type) -> TypeAdapter[Any]:
    """A record shape's validator, built when first used: building it takes about 80 ms of CPU, which
    every process importing this module paid (each latency measurement's among them) used or not."""
    return TypeAdapter(shape)


def cell_id(model: str, scheme: str, device: str) -> str:
    """The identity of a cell: `model/scheme@device`."""
    return f"{model}/{scheme}@{device}"


def record_id(record: CellRecord | dict[str, Any]) -> str:
    """The identity of the cell a record is of (`cell_id` of its model, scheme and device)."""
    return cell_id(record["model"], record["scheme"], record["device"])


def benchmark_binary(record: CellRecord | None) -> BenchmarkBinary:
    """`latency_setup.benchmark_binary` ({path, sha256}) of a phone cell; {} otherwise."""
    setup = record.get("latency_setup") if record else None
    return setup.get("benchmark_binary") or {} if setup else {}


def artifact_sha256(record: CellRecord | None) -> str | None:
    """The sha256 of the cell's model file (None: no artifact)."""
    artifact = record.get("artifact") if record else None
    return artifact.get("sha256") if artifact else None


def repeat_medians(record: CellRecord) -> list[float] | None:
    """`latency_ms.repeat_medians`: each repeat's median (None: not timed, or no repeats recorded)."""
    latency = record.get("latency_ms")
    return latency.get("repeat_medians") if latency else None


def latency_sample(record: CellRecord) -> list[float]:
    """The cell's bounded latency sample (ms): its finite values ([]: not timed per iteration). The one
    reader of `latency_samples_ms` (charts, compare, the report), whether the record came from
    results.jsonl (the sample read back from results.bin), a history row or the run that measured it."""
    values = record.get("latency_samples_ms") or []
    return [float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)]


def artifact_of(record: CellRecord) -> Artifact:
    """The cell's model file; RecordError when the record has none (only an ok cell has one)."""
    artifact = record.get("artifact")
    if artifact is None:
        raise RecordError("artifact", f"{record['model']}/{record['scheme']}@{record['device']} has no model file")
    return artifact


class RecordError(ValueError):
    """A stored record does not match the record format; `field` names where."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}" if field else message)


# The parts of a record that grow with the model or the device (one entry per kernel, op, tensor, output,
# core, pair or table row) or are provenance nobody checks: results.jsonl keeps the record without them
# and their summaries (weights' totals, the audit's counts, the verdicts of the claims, ratios and their
# intervals), results.bin keeps them (harness.results); read back, the record is whole again.
DETAIL_PARTS: tuple[tuple[str, ...], ...] = (
    ("weights", "layers"), ("audit", "ops"), ("audit", "stayed_float"), ("audit", "integer_only_breakers"),
    ("audit", "bytes_by_role"), ("quantization", "rules"), ("quantization", "ops"), ("quantization", "left_float"),
    ("quantization", "not_as_asked"), ("claims",), ("outputs",), ("artifact", "source_info"), ("evaluation", "source"),
    ("evaluation", "batching"), ("device_state", "before"), ("device_state", "after"), ("device_state", "busy_reason"),
    ("latency_vs_float", "pairs"), ("latency_vs_float", "float_path"), ("latency_vs_float", "busy_reason"),
    ("device_numerics", "outputs"), ("diagnosis", "ranked"), ("diagnosis", "snr_curve"),
    ("diagnosis", "cross_check"), ("recovery", "ranking"), ("recovery", "steps"), ("technique", "wrapped"),
    ("technique", "untouched"), ("op_profile", "run_order"), ("op_profile", "top_by_computation_time"),
    ("op_profile", "top_by_memory_use"), ("op_profile", "summary_by_node_type"), ("delegates", "partitions"),
    ("delegates", "applied"), ("latency_setup", "remote_calls"),
)


class FormatVersionError(ValueError):
    """A record or run.json of a format this quantbench does not know (newer, or not a version)."""


def format_version(data: dict[str, Any]) -> int:
    """The format a stored record or run.json was written in (1: before versions were recorded);
    FormatVersionError when it is newer than this code reads, or not a positive integer."""
    version = data.get("format_version", 1)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise FormatVersionError(f"format_version: {version!r:.20} is not a format version (1 to {FORMAT_VERSION})")
    if version > FORMAT_VERSION:
        raise FormatVersionError(f"format_version: {version} is newer than this quantbench reads (up to "
                                 f"{FORMAT_VERSION}); upgrade quantbench to read it")
    return version


def update_to_2(record: dict[str, Any]) -> dict[str, Any]:
    """1 → 2: records before versions were recorded are, field for field, format 2 (which added the
    key and strict checking on load): stamped."""
    return {**record, "format_version": 2}


def update_to_3(record: dict[str, Any]) -> dict[str, Any]:
    """2 → 3: format 3 moved the latency sample and the details (`DETAIL_PARTS`) out of results.jsonl
    into results.bin. A format-2 record holds them inline, which is how any record is held in memory
    once read (`read_results` puts them back): stamped. Written again (a resume, `bench report`), it is
    written as format 3."""
    return {**record, "format_version": 3}


UPGRADES = {2: update_to_2, 3: update_to_3}  # format N-1 → N, as asv's update_to_N


def stored_object(data: Any, what: str = "a record") -> dict[str, Any]:
    """`data` read back from a store, checked to be an object of a format this code reads (RecordError)."""
    if not isinstance(data, dict):
        raise RecordError("", f"{what} is a JSON object, not {type(data).__name__}")
    try:
        format_version(data)
    except FormatVersionError as exc:
        raise RecordError("", str(exc)) from None
    return data


def upgrade(data: dict[str, Any]) -> dict[str, Any]:
    """A stored record of any known format as the current format holds it (through every update_to_N)."""
    for version in range(format_version(data) + 1, FORMAT_VERSION + 1):
        data = UPGRADES[version](data)
    return data


MAX_DEPTH = 32  # the deepest nesting a record holds is about 6; deeper is damage (or an attack on the reader)


def nesting_depth(value: Any) -> tuple[int, str]:
    """How deep JSON-like `value` nests (iteratively: any depth) and the top-level key of its deepest part."""
    deepest, where = 0, ""
    stack: list[tuple[Any, int, str]] = [(value, 0, "")]
    while stack:
        item, depth, top = stack.pop()
        if depth > deepest:
            deepest, where = depth, top
        children = item.items() if isinstance(item, dict) else enumerate(item) if isinstance(item, list) else ()
        stack.extend((child, depth + 1, top or str(key)) for key, child in children)
    return deepest, where


def validate_record(data: Any) -> CellRecord:
    """The record `data` (non-finite strings turned back into floats), or RecordError."""
    if not isinstance(data, dict):
        raise RecordError("", f"a record is a JSON object, not {type(data).__name__}")
    sample = data.get("latency_samples_ms")
    plain = isinstance(sample, list) and all(type(v) is float for v in sample)  # valid as it is: not walked
    rest = {k: v for k, v in data.items() if k != "latency_samples_ms"} if plain else data
    depth, where = nesting_depth(rest)
    if depth > MAX_DEPTH:
        raise RecordError(where, f"nested {depth} levels deep (a record nests at most {MAX_DEPTH})")
    try:
        rest = upgrade(rest)
    except FormatVersionError as exc:
        raise RecordError("", str(exc)) from None
    restored = restore_nonfinite(rest)
    try:
        _validator(CellRecord).validate_python(restored)
    except ValidationError as exc:
        raise invalid(restored, exc) from None
    if plain:
        restored["latency_samples_ms"] = sample
    return restored


def validate_run_info(data: Any) -> RunInfo:
    """run.json as read back (RecordError naming the field when it does not match)."""
    data = stored_object(data, "run.json")
    try:
        _validator(RunInfo).validate_python(data)
    except ValidationError as exc:
        raise invalid(data, exc) from None
    return cast(RunInfo, data)  # validated above


def invalid(data: Any, exc: ValidationError) -> RecordError:
    """The first of pydantic's errors about `data` as a RecordError naming its field (a dotted path)."""
    error = exc.errors()[0]
    return RecordError(_field(data, error["loc"]), f"{error['msg']} (got {error.get('input')!r:.60})")


def _field(data: Any, loc: tuple[Any, ...]) -> str:
    """The dotted path of an error location, without pydantic's union-member tags."""
    parts: list[str] = []
    for part in loc:
        inside = isinstance(data, dict) and part in data or isinstance(data, list) and isinstance(part, int)
        if not inside:
            if isinstance(data, dict) and isinstance(part, str) and not parts[-1:] == [part]:
                parts.append(part)  # a missing required key: name it
            break
        parts.append(str(part))
        data = data[part]
    return ".".join(parts)


_NONFINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
_IDENTITY = {"model", "scheme", "device", "status", "error", "scheme_kind", "metrics_na", "check", "metric", "name",
             "dataset", "source", "tensor", "op", "layer", "governor"}  # names: never read as a number


def jsonable_float(value: float) -> JsonFloat:
    """A float as JSON can hold it: non-finite values as "NaN", "Infinity" or "-Infinity"."""
    if math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


def encode_nonfinite(value: Any) -> Any:
    """A copy of `value` with every non-finite float replaced by its string (for json.dumps)."""
    if isinstance(value, float):
        return jsonable_float(value)
    if isinstance(value, dict):
        return {key: encode_nonfinite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [encode_nonfinite(item) for item in value]
    if hasattr(value, "item") and hasattr(value, "dtype") and getattr(value, "ndim", 1) == 0:
        return encode_nonfinite(value.item())  # numpy scalars
    return value


def restore_nonfinite(value: Any, key: str | None = None) -> Any:
    """The inverse of `encode_nonfinite` (identity fields such as a model name are left alone)."""
    if isinstance(value, str):
        return _NONFINITE.get(value, value) if key not in _IDENTITY else value
    if isinstance(value, dict):
        return {k: restore_nonfinite(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [restore_nonfinite(item, key) for item in value]
    return value
