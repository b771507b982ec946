"""Parse the text output of TensorFlow Lite / LiteRT `benchmark_model`.

The line formats follow the tool's own print statements (benchmark_model.cc,
benchmark_tflite_model.cc, the delegate providers, the TFLite runtime's delegate
log, and the op-profiling tables of stats_calculator.cc), across releases:

* run statistics: ``count=N first=… curr=… min=… max=… avg=… std=…`` (plus
  ``p5= median= p95=`` in newer builds, ``count=N curr=X`` / ``(all same)`` when
  every run took the same time, ``count=0`` when nothing ran);
* the summary: ``Inference timings in us: Init: …, First inference: …,
  Warmup (avg): …, Inference (avg): …`` and the legacy ``Average inference
  timings in us: Warmup: …, Init: …, Inference: …`` / ``no stats: …``;
* memory, delegate, parameter (``Description: [value]``) and op-profile lines.

Each line may carry a logging prefix (``INFO: ``, glog/absl headers, logcat
headers, timestamps); it is removed before matching. A text holding several
invocations of the tool is split into runs; `parse_benchmark_log` returns the
last run that reported timings.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, NamedTuple

from harness.errors import HarnessError

NUMBER = r"[-+]?(?:nan|inf(?:inity)?|(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)"


class BenchmarkLogError(HarnessError):
    """The text holds no benchmark_model timings."""


# --------------------------------------------------------------------------- prefixes

_LEVEL_LETTERS = {"V": "VERBOSE", "D": "DEBUG", "I": "INFO", "W": "WARNING", "E": "ERROR", "F": "FATAL", "A": "FATAL"}
_LEVEL_WORDS = {"WARN": "WARNING"}
_PREFIXES = (
    # logcat -v threadtime: "11-21 22:43:01.123  1234  1234 I tflite  : "
    re.compile(r"(?:\d{4}-)?\d\d-\d\d\s+\d\d:\d\d:\d\d\.\d+\s+\d+\s+\d+\s+(?P<letter>[VDIWEFA])\s+[^:]*?: ?"),
    # logcat -v brief / tag: "I/tflite  ( 1234): "
    re.compile(r"(?P<letter>[VDIWEFA])/[^:(]*?\s*(?:\(\s*\d+\))?: ?"),
    # glog / absl / TF core: "I1121 22:43:01.1 123 file.cc:12] ", "I tflite/tools/x.cc:12] "
    re.compile(r"(?P<letter>[IWEFV])(?:\d{4}\s+[\d:.]+\s+\d+)?\s*[\w./+-]+:\d+\] ?"),
    # TFLite minimal logging: "INFO: ", "VERBOSE: ", "ERROR: "
    re.compile(r"(?P<word>INFO|WARNING|WARN|ERROR|FATAL|VERBOSE|DEBUG)\s*: ?"),
    # bare timestamps: "2024-01-02 03:04:05.678: ", "[2024-01-02T03:04:05Z] ", "[ 12.345] "
    re.compile(r"\[?\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?\]?:? +"),
    re.compile(r"\[\s*\d+(?:\.\d+)?\] +"),
)


class _LogLine(NamedTuple):
    level: str | None  # innermost logging level found in the prefixes
    raw: str  # message with tabs kept (op-profile rows are tab-separated)
    text: str  # stripped message


def _split_prefix(line: str) -> _LogLine:
    """Remove logging prefixes from one line and report the log level they carried."""
    message, level = line.rstrip("\r\n").lstrip(" "), None
    stripped = True
    while stripped:
        stripped = False
        for prefix in _PREFIXES:
            match = prefix.match(message)
            if match and match.end() > 0:
                word, letter = match.groupdict().get("word"), match.groupdict().get("letter")
                if word:
                    level = _LEVEL_WORDS.get(word, word)
                elif letter:
                    level = _LEVEL_LETTERS[letter]
                message, stripped = message[match.end():], True
                break
    return _LogLine(level, message, message.strip())


# --------------------------------------------------------------------------- records


def _ms(us: float | None) -> float | None:
    return None if us is None or not math.isfinite(us) else round(us / 1000.0, 6)


def _jsonable(value: Any) -> Any:
    """Lists for tuples, None for NaN/inf: what json.dumps accepts strictly."""
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@dataclass(frozen=True)
class RunStats:
    """One ``count=… first=… …`` line: statistics of a series of runs, in microseconds."""

    count: int
    first_us: float | None = None
    curr_us: float | None = None
    min_us: float | None = None
    max_us: float | None = None
    avg_us: float | None = None
    std_us: float | None = None
    p5_us: float | None = None
    median_us: float | None = None
    p95_us: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return _jsonable(asdict(self))


@dataclass(frozen=True)
class Timings:
    """Latency of one benchmark run, in microseconds as printed by the tool."""

    count: int | None = None  # timed (regular) runs
    warmup_count: int | None = None
    avg_us: float | None = None
    std_us: float | None = None
    min_us: float | None = None
    max_us: float | None = None
    init_us: float | None = None
    first_us: float | None = None  # first inference (the first warm-up run)
    warmup_avg_us: float | None = None
    p5_us: float | None = None
    median_us: float | None = None
    p95_us: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """Times in milliseconds under the plain names, raw microseconds under ``raw_us``."""
        raw = {name.removesuffix("_us"): value for name, value in asdict(self).items() if name.endswith("_us")}
        result: dict[str, Any] = {"count": self.count, "warmup_count": self.warmup_count}
        result.update({name: _ms(value) for name, value in raw.items()})
        result["raw_us"] = _jsonable(raw)
        return result


@dataclass(frozen=True)
class Memory:
    """Memory lines, in MB as printed."""

    init_mb: float | None = None  # footprint delta after initialisation
    overall_mb: float | None = None  # footprint delta at the end of the runs
    footprint_label: str | None = None  # which wording carried init/overall
    peak_mb: float | None = None  # --report_peak_memory_footprint monitoring
    vm_rss_mb: float | None = None
    rss_anon_mb: float | None = None
    rss_file_shmem_mb: float | None = None
    max_rss_mb: float | None = None  # "max resident set size … = X MB, …" stats
    heap_total_mb: float | None = None
    heap_in_use_mb: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return _jsonable(asdict(self))


@dataclass(frozen=True)
class DelegatePartition:
    """A ``Replacing N [out of M] node(s) with delegate (X) node …`` line."""

    delegate: str
    nodes_replaced: int
    nodes_total: int | None = None  # absent in older runtimes
    partitions: int | None = None
    scope: str | None = None  # "whole graph" or "subgraph N"


@dataclass(frozen=True)
class DelegateApplication:
    """The tool's verdict after applying a delegate it was asked for."""

    name: str
    coverage: str | None  # "complete", "partial", "none", or None when not said
    kernels: int | None = None


@dataclass(frozen=True)
class Delegates:
    """Delegate lines of the tool and of the TFLite runtime."""

    partitions: tuple[DelegatePartition, ...] = ()
    applied: tuple[DelegateApplication, ...] = ()
    created: tuple[str, ...] = ()
    failures: tuple[str, ...] = ()

    @property
    def nodes_by_delegate(self) -> dict[str, int]:
        """Nodes each delegate took over, summed over its partition lines."""
        totals: dict[str, int] = {}
        for part in self.partitions:
            totals[part.delegate] = totals.get(part.delegate, 0) + part.nodes_replaced
        return totals

    @property
    def delegation(self) -> dict[str, Any] | None:
        """The delegate that took the most nodes: `delegate`, `nodes`, `total`, `partitions`, `ratio`
        (nodes / total) and `fully_delegated`; None when no partition line was printed."""
        by_delegate = self.nodes_by_delegate
        if not by_delegate:
            return None
        name = max(by_delegate, key=by_delegate.__getitem__)
        parts = [p for p in self.partitions if p.delegate == name]
        totals = [p.nodes_total for p in parts]
        total = sum(t for t in totals if t is not None) if None not in totals else None
        nodes = by_delegate[name]
        return {"delegate": name, "nodes": nodes, "total": total,
                "partitions": sum(p.partitions or 0 for p in parts) or None,
                "ratio": nodes / total if total else None,
                "fully_delegated": (nodes == total) if total else None}

    def to_dict(self) -> dict[str, Any]:
        return _jsonable({**asdict(self), "nodes_by_delegate": self.nodes_by_delegate,
                          "delegation": self.delegation})


_KNOWN_TABLES = ("run_order", "top_by_computation_time", "top_by_memory_use", "summary_by_node_type")


@dataclass(frozen=True)
class OpProfile:
    """Op-profiling tables of the primary graph; rows are dicts keyed by column."""

    tables: dict[str, tuple[dict[str, Any], ...]] = field(default_factory=dict)
    nodes_executed: int | None = None
    nodes_observed: int | None = None
    run_total: RunStats | None = None  # "Timings (microseconds): …" of the profiled runs

    @property
    def summary_by_node_type(self) -> tuple[dict[str, Any], ...]:
        return self.tables.get("summary_by_node_type", ())

    @property
    def top_by_computation_time(self) -> tuple[dict[str, Any], ...]:
        return self.tables.get("top_by_computation_time", ())

    def to_dict(self) -> dict[str, Any]:
        tables = {name: self.tables.get(name, ()) for name in _KNOWN_TABLES} | self.tables
        return _jsonable({
            **tables,
            "nodes_executed": self.nodes_executed,
            "nodes_observed": self.nodes_observed,
            "run_total": self.run_total.to_dict() if self.run_total else None,
        })


@dataclass(frozen=True)
class BenchmarkLog:
    """Everything one benchmark_model run printed that the harness uses."""

    timings: Timings
    memory: Memory
    delegates: Delegates
    parameters: dict[str, str]  # flag name -> value exactly as echoed
    complete: bool  # the final "… timings in us: …" summary line was found
    model_size_mb: float | None = None
    op_profile: OpProfile | None = None  # regular benchmark runs
    init_op_profile: OpProfile | None = None  # benchmark initialisation
    errors: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict; times in ms (see `Timings.to_dict`)."""
        return {
            "complete": self.complete,
            "timings": self.timings.to_dict(),
            "memory": self.memory.to_dict(),
            "delegates": self.delegates.to_dict(),
            "parameters": dict(self.parameters),
            "model_size_mb": _jsonable(self.model_size_mb),
            "op_profile": self.op_profile.to_dict() if self.op_profile else None,
            "init_op_profile": self.init_op_profile.to_dict() if self.init_op_profile else None,
            "errors": list(self.errors),
        }


# --------------------------------------------------------------------------- single lines

_STAT_KEYS = {"count", "first", "curr", "min", "max", "avg", "std", "p5", "median", "p95"}
_STAT_LINE = re.compile(rf"^(?:[a-z0-9]+={NUMBER}(?:\(all same\))?\s*)+$")
_STAT_PAIR = re.compile(rf"(?P<key>[a-z0-9]+)=(?P<value>{NUMBER})")


def _parse_run_stats(text: str) -> RunStats | None:
    """Parse a ``count=… curr=… …`` line (any key order, with or without ``first``)."""
    if not _STAT_LINE.match(text):
        return None
    values = {m["key"]: float(m["value"]) for m in _STAT_PAIR.finditer(text)}
    if "count" not in values or not values.keys() <= _STAT_KEYS:
        return None
    count = int(values.pop("count"))
    if count and "min" not in values and "curr" in values:  # all runs took the same time
        same = values["curr"]
        values = {"first": same, "min": same, "max": same, "avg": same, "std": 0.0} | values
    return RunStats(count=count, **{f"{key}_us": value for key, value in values.items()})


_SUMMARY = re.compile(r"^(?:Average )?[Ii]nference timings in us:(?P<body>.*)$")
_SUMMARY_PAIR = re.compile(rf"(?P<key>[A-Za-z][A-Za-z ()]*?)\s*:\s*(?P<value>{NUMBER})")
_SUMMARY_KEYS = {
    "init": "init", "first inference": "first", "warmup (avg)": "warmup_avg", "warmup": "warmup_avg",
    "inference (avg)": "avg", "inference": "avg", "no stats": "avg",
}


def _parse_summary(body: str) -> dict[str, float]:
    """Values of a modern or legacy summary line, keyed init/first/warmup_avg/avg."""
    values = {}
    for match in _SUMMARY_PAIR.finditer(body):
        key = _SUMMARY_KEYS.get(match["key"].strip().lower())
        if key:
            values[key] = float(match["value"])
    return values


# Parameter descriptions (LOG_TOOL_PARAM) whose snake_case differs from the flag name.
_PARAM_NAMES = {
    "min_num_runs": "num_runs",
    "min_runs_duration_seconds": "min_secs",
    "max_runs_duration_seconds": "max_secs",
    "inter_run_delay_seconds": "run_delay",
    "number_of_prorated_runs_per_second": "run_frequency",
    "threads_used_for_cpu_inference": "num_threads",
    "min_warmup_runs": "warmup_runs",
    "min_warmup_runs_duration_seconds": "warmup_min_secs",
    "log_parameter_values_verbosely": "verbose",
    "run_w_o_invoking_kernels": "dry_run",
    "report_the_peak_memory_footprint": "report_peak_memory_footprint",
    "memory_footprint_check_interval_ms": "memory_footprint_check_interval_ms",
    "signature_to_run": "signature_to_run_for",
    "input_layers": "input_layer",
    "input_shapes": "input_layer_shape",
    "input_value_ranges": "input_layer_value_range",
    "input_value_files": "input_layer_value_files",
    "max_initial_profiling_buffer_entries": "max_profiling_buffer_entries",
    "allow_dynamic_increase_on_profiling_buffer_entries": "allow_dynamic_profiling_buffer_increase",
    "csv_file_to_export_profiling_data_to": "profiling_output_csv_file",
    "print_out_all_supported_flags": "help",
    "max_number_of_delegated_partitions": "max_delegated_partitions",
    "number_of_gpu_delegate_invoke_loop_iterations": "gpu_invoke_loop_times",
    "directory_for_delegate_serialization": "delegate_serialize_dir",
    "model_specific_token_key_for_delegate_serialization": "delegate_serialize_token",
    "allow_lower_precision_in_gpu": "gpu_precision_loss_allowed",
    "enable_running_quant_models_in_gpu": "gpu_experimental_enable_quant",
    "prefer_maximizing_the_throughput_in_gpu": "gpu_inference_for_sustained_speed",
    "model_execution_priority_in_nnapi": "nnapi_execution_priority",
    "allow_fp16_in_nnapi": "nnapi_allow_fp16",
    "allow_dynamic_dimensions_in_nnapi": "nnapi_allow_dynamic_dimensions",
    "use_burst_mode_in_nnapi": "nnapi_use_burst_mode",
}


def _param_name(description: str) -> str:
    """Flag name for an echoed parameter description ("Num threads" -> "num_threads")."""
    slug = re.sub(r"[^a-z0-9]+", "_", description.lower()).strip("_")
    return _PARAM_NAMES.get(slug, slug)


# --------------------------------------------------------------------------- op-profile tables

_COLUMN_NAMES = {
    "node type": "node_type", "start": "start_ms", "first": "first_ms", "avg ms": "avg_ms", "avg_ms": "avg_ms",
    "%": "percent", "cdf%": "cdf_percent", "cdf %": "cdf_percent", "avg %": "avg_percent", "mem kb": "mem_kb",
    "times called": "times_called", "name": "name", "count": "count",
}
_INT_COLUMNS = {"count", "times_called"}
_CELL_NUMBER = re.compile(rf"{NUMBER}%?")
_ELLIPSIS = re.compile(r"(?:\.\.\.|…)")


class _Columns(NamedTuple):
    names: tuple[str, ...]
    csv: bool


def _parse_header(text: str) -> _Columns | None:
    """Column names of a table header, text (``[node type] …``) or CSV (``node type, …``)."""
    if re.match(r"\[node type\]", text, re.IGNORECASE):
        cells, csv = re.findall(r"\[([^\]]+)\]", text), False
    elif re.match(r"node type\s*,", text, re.IGNORECASE):
        cells, csv = [cell.strip() for cell in text.split(",")], True
    else:
        return None
    names = tuple(_COLUMN_NAMES.get(cell.lower(), re.sub(r"\W+", "_", cell.lower()).strip("_")) for cell in cells)
    return _Columns(names, csv)


def _split_cells(raw: str, csv: bool) -> tuple[list[str], str]:
    """Cells of a row and the separator to re-join multi-cell names with."""
    if csv:
        return [cell.strip() for cell in raw.strip().split(", ")], ", "
    if "\t" in raw:
        return [cell.strip() for cell in raw.split("\t") if cell.strip()], "\t"
    return raw.split(), " "  # tabs lost in a copy/paste


def _cell_value(column: str, cell: str) -> float | int:
    number = float(cell.rstrip("%"))
    return int(number) if column in _INT_COLUMNS else number


def _parse_row(raw: str, columns: _Columns) -> dict[str, Any] | None:
    """One table row; node type and name may contain separators, the numbers between them may not."""
    cells, joiner = _split_cells(raw, columns.csv)
    numeric = [name for name in columns.names if name not in ("node_type", "name")]
    has_name = columns.names[-1] == "name"
    width = len(numeric)
    for start in range(1, len(cells) - width + 1):
        end = start + width
        if (has_name or end == len(cells)) and all(_CELL_NUMBER.fullmatch(c) for c in cells[start:end]):
            row: dict[str, Any] = {"node_type": joiner.join(cells[:start])}
            row.update({name: _cell_value(name, cell) for name, cell in zip(numeric, cells[start:end])})
            if has_name:
                row["name"] = joiner.join(cells[end:])
            return row
    return None


@dataclass
class _Table:
    key: str
    columns: _Columns | None = None
    rows: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class _Profile:
    tables: dict[str, tuple[dict[str, Any], ...]] = field(default_factory=dict)
    nodes_executed: int | None = None
    nodes_observed: int | None = None
    run_total: RunStats | None = None

    def build(self) -> OpProfile | None:
        if not self.tables and self.nodes_executed is None and self.run_total is None:
            return None
        return OpProfile(dict(self.tables), self.nodes_executed, self.nodes_observed, self.run_total)


# --------------------------------------------------------------------------- one run

_MEMORY_FOOTPRINT = re.compile(
    rf"^(?P<label>Memory footprint delta from the start of the tool|Peak memory footprint) \(MB\):"
    rf"\s*init=(?P<init>{NUMBER})\s+overall=(?P<overall>{NUMBER})")
_PEAK_MEMORY = re.compile(rf"^Overall peak memory footprint \(MB\) via periodic monitoring:\s*(?P<mb>{NUMBER})")
_RSS = re.compile(rf"^[-+] (?P<name>VmRSS|RssAnnon|RssFile \+ RssShmem)\s*:\s*(?P<mb>{NUMBER}) MB")
_RSS_FIELDS = {"VmRSS": "vm_rss_mb", "RssAnnon": "rss_anon_mb", "RssFile + RssShmem": "rss_file_shmem_mb"}
_MEMORY_STATS = re.compile(
    rf"max resident set size(?:/physical footprint)? = (?P<rss>{NUMBER}) MB, "
    rf"total (?:malloc-ed|non-mmapped heap) size = (?P<total>{NUMBER}) MB, "
    rf"in-use (?:allocated/mmapped|heap) size = (?P<in_use>{NUMBER}) MB")
_MODEL_SIZE = re.compile(rf"^The input model file size \(MB\):\s*(?P<mb>{NUMBER})")
_SESSION = re.compile(rf"^Initialized session in (?P<value>{NUMBER})\s*(?P<unit>ms|s)\b")
_PARAMETER = re.compile(r"^(?P<description>[^\[\]:]+?)\s*:\s*\[(?P<value>.*)\]$")
_REPLACING = re.compile(
    r"^Replacing (?P<replaced>\d+)(?: out of (?P<total>\d+))? node\(s\) with delegate \((?P<delegate>[^)]*)\) node"
    r"(?:, yielding (?P<partitions>\d+) partitions?)?(?: for (?:the )?(?P<scope>whole graph|subgraph \d+))?")
_APPLIED = re.compile(
    r"^(?:Explicitly applied|Applied) (?P<name>.+?) delegate(?:, and the model graph will be "
    r"(?P<coverage>completely|partially) executed (?:by|w/) the delegate"
    r"(?: w/ (?P<kernels>\d+) delegate kernels)?)?\.?$")
_NOT_APPLIED = re.compile(r"^Though (?P<name>.+?) delegate is explicitly applied, the model graph will not be executed")
_CREATED = re.compile(r"^(?:Created TensorFlow Lite .*delegate for .+|\S+ delegate created)\.?$")
_TABLE_TITLE = re.compile(r"^=+ (?P<title>[^=]+?) =+$")
_SECTION = re.compile(r"^(?:(?P<init>Profiling Info for Benchmark Initialization)"
                      r"|Operator-wise Profiling Info for Regular Benchmark Runs):?$")
_SCOPE = re.compile(r"^(?:(?P<primary>Primary graph) \(name: .*\)|Subgraph \(index: \d+, name: .*\))"
                    r" (?:profile|summary):$|^Delegate internal:$")
_NODES_EXECUTED = re.compile(r"^Number of nodes executed: (?P<n>\d+)$")
_NODES_OBSERVED = re.compile(r"^(?P<n>\d+) nodes observed$")
_PROFILE_TOTAL = re.compile(r"^Timings \(microseconds\): (?P<stats>.*)$")
# Failure wording of the tool, the runtime and the delegates ("Failed to apply NNAPI delegate.",
# "Node number 248 (TfLiteNnapiDelegate) failed to prepare.", "NN API returned error …", …).
_FAILURE = re.compile(
    r"^(?:Failed|Disallowed|Couldn't|Cannot)\b|\bfailed\b|\bfailure\b|\breturned error\b|\bunsupported\b")
_DELEGATE_WORDS = re.compile(r"delegat|nnapi|nn api|\bgpu\b|opencl|opengl|xnnpack|hexagon|coreml|\bnpu\b|\bdsp\b",
                             re.IGNORECASE)
_RUN_START = re.compile(
    r"^(?:STARTING!|Running benchmark for|Loaded model|Initialized TensorFlow Lite runtime|(?:count|curr)=)")
# Lines the tool prints only before its summary line; after a summary they begin the next run.
_BEFORE_SUMMARY = (_RUN_START, _PARAMETER, _SESSION, _MODEL_SIZE, _REPLACING, _APPLIED, _NOT_APPLIED, _CREATED)


class _Run:
    """Accumulates the lines of one benchmark_model invocation."""

    def __init__(self) -> None:
        self.matched = False
        self.summary: dict[str, float] | None = None
        self._stats: list[RunStats] = []
        self._parameters: dict[str, str] = {}
        self._memory: dict[str, Any] = {}
        self._session_init_us: float | None = None
        self._model_size_mb: float | None = None
        self._partitions: list[DelegatePartition] = []
        self._applied: list[DelegateApplication] = []
        self._created: list[str] = []
        self._errors: list[str] = []
        self._profiles = {"init": _Profile(), "regular": _Profile()}
        self._section = "regular"  # profile output without a section header is the regular runs'
        self._primary_scope = True
        self._table: _Table | None = None
        self._handlers: tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], bool | None]], ...] = (
            (_STAT_LINE, self._on_run_stats),
            (_SUMMARY, self._on_summary),
            (_MEMORY_FOOTPRINT, self._on_footprint),
            (_PEAK_MEMORY, lambda m: self._memory.update(peak_mb=float(m["mb"]))),
            (_RSS, lambda m: self._memory.update({_RSS_FIELDS[m["name"]]: float(m["mb"])})),
            (_MEMORY_STATS, self._on_memory_stats),
            (_MODEL_SIZE, lambda m: setattr(self, "_model_size_mb", float(m["mb"]))),
            (_SESSION, self._on_session),
            (_REPLACING, self._on_replacing),
            (_APPLIED, self._on_applied),
            (_NOT_APPLIED, lambda m: self._applied.append(DelegateApplication(m["name"], "none"))),
            (_CREATED, lambda m: self._created.append(m[0].rstrip("."))),
            (_TABLE_TITLE, self._on_table_title),
            (_SECTION, self._on_section),
            (_SCOPE, lambda m: setattr(self, "_primary_scope", bool(m["primary"]))),
            (_NODES_EXECUTED, lambda m: self._set_profile(nodes_executed=int(m["n"]))),
            (_NODES_OBSERVED, lambda m: self._set_profile(nodes_observed=int(m["n"]))),
            (_PROFILE_TOTAL, lambda m: self._set_profile(run_total=_parse_run_stats(m["stats"]))),
            (_PARAMETER, lambda m: self._parameters.update({_param_name(m["description"]): m["value"]})),
        )

    # ---- feeding

    def starts_next_run(self, line: _LogLine) -> bool:
        """Whether this line opens a new invocation instead of continuing this one."""
        if line.text == "STARTING!":
            return self.matched
        return self.summary is not None and any(p.search(line.text) for p in _BEFORE_SUMMARY)

    def feed(self, line: _LogLine) -> None:
        """Record one line of the run."""
        if self._table is not None and self._feed_table(line):
            return
        for pattern, handler in self._handlers:
            match = pattern.search(line.text)
            if match and handler(match) is not False:
                self.matched = True
                return
        self._note_unmatched(line)

    def _note_unmatched(self, line: _LogLine) -> None:
        if _is_error(line):
            self._errors.append(line.text)

    # ---- handlers (return False to decline a line)

    def _on_run_stats(self, match: re.Match[str]) -> bool:
        stats = _parse_run_stats(match[0])
        if stats is not None:
            self._stats.append(stats)
        return stats is not None

    def _on_summary(self, match: re.Match[str]) -> bool:
        values = _parse_summary(match["body"])
        if values:  # a second summary of the same run (Android app listener) adds to the first
            self.summary = (self.summary or {}) | values
        memory = _MEMORY_STATS.search(match["body"])  # the Android app appends "Overall <memory stats>"
        if memory:
            self._on_memory_stats(memory)
        return bool(values)

    def _on_footprint(self, match: re.Match[str]) -> None:
        self._memory.update(init_mb=float(match["init"]), overall_mb=float(match["overall"]),
                            footprint_label=match["label"])

    def _on_memory_stats(self, match: re.Match[str]) -> None:
        self._memory.update(max_rss_mb=float(match["rss"]), heap_total_mb=float(match["total"]),
                            heap_in_use_mb=float(match["in_use"]))

    def _on_session(self, match: re.Match[str]) -> None:
        self._session_init_us = float(match["value"]) * (1e3 if match["unit"] == "ms" else 1e6)

    def _on_replacing(self, match: re.Match[str]) -> None:
        self._partitions.append(DelegatePartition(
            delegate=match["delegate"],
            nodes_replaced=int(match["replaced"]),
            nodes_total=int(match["total"]) if match["total"] else None,
            partitions=int(match["partitions"]) if match["partitions"] else None,
            scope=match["scope"],
        ))

    def _on_applied(self, match: re.Match[str]) -> None:
        coverage = {"completely": "complete", "partially": "partial"}.get(match["coverage"] or "")
        kernels = int(match["kernels"]) if match["kernels"] else (1 if coverage == "complete" else None)
        self._applied.append(DelegateApplication(match["name"], coverage, kernels))

    def _on_section(self, match: re.Match[str]) -> None:
        self._section, self._primary_scope = ("init" if match["init"] else "regular"), True

    def _set_profile(self, **values: Any) -> None:
        if self._primary_scope:  # subgraph / delegate-internal profiles are not reported
            for name, value in values.items():
                setattr(self._profiles[self._section], name, value)

    def _on_table_title(self, match: re.Match[str]) -> None:
        key = re.sub(r"\W+", "_", match["title"].lower()).strip("_")
        self._table = _Table(key)

    def _feed_table(self, line: _LogLine) -> bool:
        """Consume a line of the open table; False hands it back to the other handlers."""
        table = self._table
        assert table is not None
        if table.columns is None:
            table.columns = _parse_header(line.text)
            if table.columns is None:
                self._table = None
            return table.columns is not None
        if not line.text:
            return self._close_table()
        if _ELLIPSIS.fullmatch(line.text):  # rows elided in a pasted excerpt
            return True
        row = _parse_row(line.raw, table.columns)
        if row is None:
            self._close_table()
            return False
        table.rows.append(row)
        return True

    def _close_table(self) -> bool:
        table, self._table = self._table, None
        profile = self._profiles[self._section]
        if table is not None and self._primary_scope and table.key not in profile.tables:
            profile.tables[table.key] = tuple(table.rows)
        return True

    # ---- result

    def build(self) -> BenchmarkLog | None:
        """The run's record, or None when it printed no timings."""
        if self._table is not None and self._table.columns is not None:
            self._close_table()
        if self.summary is None and not self._stats:
            return None
        return BenchmarkLog(
            timings=self._timings(),
            memory=Memory(**self._memory),
            delegates=Delegates(
                partitions=tuple(self._partitions),
                applied=tuple(self._applied),
                created=tuple(self._created),
                failures=tuple(e for e in self._errors if _DELEGATE_WORDS.search(e)),
            ),
            parameters=dict(self._parameters),
            complete=self.summary is not None,
            model_size_mb=self._model_size_mb,
            op_profile=self._profiles["regular"].build(),
            init_op_profile=self._profiles["init"].build(),
            errors=tuple(self._errors),
        )

    def _timings(self) -> Timings:
        summary = self.summary or {}
        warmup, timed = _warmup_and_timed(self._stats, summary)
        return Timings(
            count=_stat(timed, "count"),
            warmup_count=_stat(warmup, "count"),
            avg_us=_known(summary.get("avg"), _stat(timed, "avg_us")),
            std_us=_stat(timed, "std_us"),
            min_us=_stat(timed, "min_us"),
            max_us=_stat(timed, "max_us"),
            init_us=_known(summary.get("init"), self._session_init_us),
            first_us=_known(summary.get("first"), _stat(warmup, "first_us")),
            warmup_avg_us=_known(summary.get("warmup_avg"), _stat(warmup, "avg_us")),
            p5_us=_stat(timed, "p5_us"),
            median_us=_stat(timed, "median_us"),
            p95_us=_stat(timed, "p95_us"),
        )


def _stat(stats: RunStats | None, name: str) -> Any:
    return getattr(stats, name) if stats is not None else None


def _is_error(line: _LogLine) -> bool:
    return bool(line.text) and (line.level in ("ERROR", "FATAL") or bool(_FAILURE.search(line.text)))


def _known(*candidates: float | None) -> float | None:
    """The first candidate that is a finite number."""
    return next((c for c in candidates if c is not None and math.isfinite(c)), None)


def _same(a: float | None, b: float | None) -> bool:
    return a is not None and b is not None and math.isclose(a, b, rel_tol=1e-5)


def _warmup_and_timed(stats: list[RunStats], summary: dict[str, float]) -> tuple[RunStats | None, RunStats | None]:
    """Tell the warm-up line from the timed-runs line (the tool prints warm-up first)."""
    if len(stats) >= 2:
        return stats[-2], stats[-1]
    if not stats:
        return None, None
    only = stats[0]
    if _same(only.avg_us, summary.get("warmup_avg")) and not _same(only.avg_us, summary.get("avg")):
        return only, None
    return None, only


# --------------------------------------------------------------------------- public API

def parse_benchmark_logs(text: str) -> list[BenchmarkLog]:
    """Every run in `text` that reported timings, in order."""
    runs = [_Run()]
    for raw_line in text.splitlines():
        line = _split_prefix(raw_line)
        if runs[-1].starts_next_run(line):
            runs.append(_Run())
        runs[-1].feed(line)
    return [log for log in (run.build() for run in runs) if log is not None]


def parse_benchmark_log(text: str) -> BenchmarkLog:
    """Parse benchmark_model output; with several runs in `text`, the last one with timings."""
    logs = parse_benchmark_logs(text)
    if logs:
        return logs[-1]
    errors = [line.text for line in map(_split_prefix, text.splitlines()) if _is_error(line)]
    detail = f"; errors in the log: {' | '.join(errors[-5:])}" if errors else ""
    raise BenchmarkLogError(
        "no benchmark_model timings found: looked for an 'Inference timings in us: …' or "
        "'Average inference timings in us: …' summary line and for 'count=… avg=…' run lines" + detail)
