"""A history row's compact record: what trend and attribution need, zlib-compressed, at most
`LIMIT` bytes per cell (issue 25). The full record stays in the run folder (results.jsonl), which
the run row names with its sha256 (`History.full_records`).

Left out: the raw latency sample and the per-op, per-layer and per-output detail (each listed in
`_DETAIL`). Kept: identity, status and error, every metric, latency statistics and setup, size,
verdicts, the model file's sha256, and the aggregate numbers checks read (weights, audit,
quantization coverage, delegation, acceleration). A record that is still over the limit loses whole
fields, those of `_SPARE` in that order and then any other but the `ESSENTIAL` ones, largest first,
until it fits: what a verdict, a comparison or a trend reads from an earlier record never goes.
"""

from __future__ import annotations

import json
import zlib
from typing import Any

from harness.record import FORMAT_VERSION, CellRecord, encode_nonfinite

LIMIT = 1280  # bytes of compressed record per cell and run: with its row and index entries, at most 1.5 KB
LARGEST = 64 * 2**20  # a stored record that inflates beyond this is damaged (or hostile)

# A preset zlib dictionary (the record's field names, and the values most records share) saves about a
# fifth of each compact record. Stored rows name theirs by its adler32 (zlib's DICTID): never edit a
# dictionary in place; add a new one (a test pins each one's adler32).
_KEYS_1 = (
    "acceleration", "activations", "after", "alias_generator", "allow_inf_nan", "applied",
    "arbitrary_types_allowed", "argv", "artifact", "as_asked", "asked", "attempts", "audit", "avg_ms", "baseline",
    "baseline_binary_sha256", "baseline_path", "baseline_run", "baseline_sha256", "before", "benchmark_binary",
    "bits", "block_size", "bound", "buffer_layout", "busy", "busy_reason", "bytes_by_dtype", "bytes_by_role",
    "cache_dir", "cache_strings", "cached", "calibration", "cell_key", "chain", "check", "ci", "claim", "claims",
    "class", "coerce_numbers_to_str", "command", "compared", "compared_with", "confidence", "convert", "cooldown_s",
    "core", "cosine", "count", "coverage", "created", "cross_check", "defer_build", "delegate", "delegated_nodes",
    "delegates", "delegation", "device", "device_numerics", "device_state", "devices", "diagnosis", "dtype",
    "during", "error", "evaluate", "evaluation", "executed_on", "extended", "extra", "failures",
    "field_title_generator", "file_bytes", "finished_at", "first", "float", "float32", "float_layers", "float_ops",
    "float_path", "float_sha256", "float_tensors", "format_version", "found", "from_attributes", "frozen",
    "fully_accelerated", "fully_delegated", "git_commit", "got", "granularity", "gzip_bytes",
    "hide_input_in_errors", "host", "host_work", "hostname", "hot", "hybrid", "hybrid_ops", "ignored_types", "init",
    "int16", "int32", "int8", "integer_only", "integer_only_breakers", "invocations", "io_types", "json_encoders",
    "json_schema_extra", "json_schema_mode_override", "json_schema_serialization_defaults_required", "kernel_paths",
    "kernels", "latency", "latency_ab", "latency_log", "latency_ms", "latency_ratio", "latency_samples_ms",
    "latency_setup", "latency_vs_float", "layer", "layers", "left_float", "loc_by_alias", "mask", "max",
    "max_abs_error", "max_unique", "max_unique_per_channel", "mean", "mean_abs_error", "measurements", "median",
    "memory", "met", "metric", "metrics", "metrics_na", "min", "min_snr_db", "model", "model_pushed",
    "model_title_generator", "n_pairs", "na", "name", "node_id", "node_type", "nodes", "nodes_by_delegate",
    "nodes_executed", "nodes_observed", "not_as_asked", "note", "notes", "nrmse", "observed", "op", "op_count",
    "op_profile", "ops", "ops_by_kind", "other", "other_share", "output", "output_quantized", "outputs", "p5",
    "p90", "p95", "pairs", "partitions", "pass", "path", "peak_rss_mb", "plan", "plugin_settings",
    "populate_by_name", "protected_namespaces", "quantization", "ranked", "ranked_by", "ranking", "ratio", "reason",
    "rebuilt", "recovery", "reference", "regex_engine", "remote_calls", "repeat_cv", "repeat_medians", "repeats",
    "resumed_at", "retried", "revalidate_instances", "route", "rss_before_model_mb", "rules", "run_id", "run_order",
    "run_total", "runtime", "samples", "schema_generator", "scheme", "scheme_kind", "scheme_options",
    "ser_json_bytes", "ser_json_inf_nan", "ser_json_timedelta", "serialize_by_alias", "sha256", "shape",
    "size_bytes", "size_ratio", "snr_curve", "snr_db", "source", "source_info", "sparse_encoded", "sparsity",
    "started_at", "statement", "status", "stayed_float", "std", "steal_share", "steps", "stored_bits",
    "str_max_length", "str_min_length", "str_strip_whitespace", "str_to_lower", "str_to_upper", "strict", "suite",
    "suite_identity", "suite_path", "suite_sha256", "summary_by_node_type", "targeted", "technique", "tensors",
    "threads", "threshold", "throttled", "timings_s", "title", "tool_versions", "top1", "top1_agreement", "top5",
    "top_by_computation_time", "top_by_memory_use", "total", "unavailable", "unique", "unique_per_channel_max",
    "unpaired_ratio", "untouched", "use_attribute_docstrings", "use_enum_values", "val_json_bytes",
    "validate_assignment", "validate_by_alias", "validate_by_name", "validate_default", "validate_return",
    "validation_error_cause", "value", "verdicts", "waived", "warmup_mean", "watched_s", "weights", "worst",
    "wrapped", "zeros"
)
_DICTIONARY_1 = ("".join(f'"{key}":' for key in _KEYS_1) + '"status":"ok","device":"local","runtime":"ai-edge-litert '
                 '2.3.0","pass":true,"baseline":null,"note":null,"format_version":').encode()
DICTIONARIES = {zlib.adler32(_DICTIONARY_1): _DICTIONARY_1}
_WRITTEN_WITH = _DICTIONARY_1

# field → its keys left out (None: the whole field)
_DETAIL: dict[str, tuple[str, ...] | None] = {
    "latency_samples_ms": None, "op_profile": None, "latency_log": None, "outputs": None,
    "weights": ("layers",),
    "audit": ("ops", "stayed_float", "integer_only_breakers", "bytes_by_role", "buffer_layout"),
    "quantization": ("rules", "ops", "left_float", "not_as_asked"),
    "delegates": ("partitions", "applied", "created"),
    "diagnosis": ("ranked", "snr_curve", "cross_check"),
    "recovery": ("ranking", "float_tensors", "float_layers", "steps"),
    "device_numerics": ("outputs",),
    "device_state": ("after",),  # and `before` keeps its numbers only (harness.record: it is required)
    "latency_ab": ("pairs",),
    "latency_vs_float": ("pairs",),
    "latency_setup": ("command", "remote_calls", "mask"),
    "artifact": ("source_info", "rebuilt"),
    "technique": ("wrapped", "untouched", "output_quantized"),
    "executed_on": ("retried", "host_work"),
}
_CLAIM_DETAIL = ("left_float", "found")
# never dropped: what verdicts, comparisons, trends and A/B re-timing read from an earlier record
ESSENTIAL = frozenset({
    "format_version", "model", "scheme", "device", "status", "scheme_kind", "cell_key", "error", "size_bytes",
    "gzip_bytes", "metrics", "metrics_na", "latency_ms", "verdicts", "artifact", "latency_setup", "latency_ab",
    "weights", "audit", "quantization", "delegates", "acceleration", "finished_at", "compared_with"})
# dropped whole, in this order (then any other field, largest first), while a record is over LIMIT
_SPARE = ("evaluation", "calibration", "scheme_options", "io_types", "timings_s", "kernel_paths", "claims",
          "technique", "device_numerics", "diagnosis", "recovery", "memory", "executed_on", "device_state",
          "latency_vs_float", "notes")


def compact(record: CellRecord) -> dict[str, Any]:
    """The record without its raw latency sample and per-op/per-layer detail."""
    kept: dict[str, Any] = {"format_version": FORMAT_VERSION}
    for key, value in record.items():
        left_out = _DETAIL.get(key, ())
        if left_out is None:
            continue
        if left_out and isinstance(value, dict):
            value = {k: v for k, v in value.items() if k not in left_out}
        if key == "device_state" and isinstance(value, dict) and isinstance(value.get("before"), dict):
            value = {**value, "before": {k: v for k, v in value["before"].items() if not isinstance(v, (list, dict))}}
        if key == "claims" and isinstance(value, list):
            value = [{k: v for k, v in c.items() if k not in _CLAIM_DETAIL} if isinstance(c, dict) else c
                     for c in value]
        kept[key] = value
    return kept


def encode(record: CellRecord) -> bytes:
    """The compact record as zlib-compressed JSON, trimmed to LIMIT bytes where `_SPARE` allows."""
    kept = compact(record)
    blob = _deflate(kept)
    others = sorted(set(kept) - ESSENTIAL - set(_SPARE), key=lambda k: -len(_deflate({k: kept[k]})))
    for key in (*_SPARE, *others):
        if len(blob) <= LIMIT:
            break
        if kept.pop(key, None) is not None:
            blob = _deflate(kept)
    return blob


def decode(blob: object) -> Any:
    """A stored compact record's JSON (ValueError or TypeError when the bytes are not one)."""
    if not isinstance(blob, bytes):
        raise TypeError(f"the compact record is {type(blob).__name__}, not bytes")
    inflater = zlib.decompressobj(zdict=_dictionary_of(blob))
    try:
        text = inflater.decompress(blob, LARGEST)
    except zlib.error as exc:
        raise ValueError(f"the compact record is not zlib data ({exc})") from None
    if inflater.unconsumed_tail:
        raise ValueError(f"the compact record inflates beyond {LARGEST} bytes")
    return json.loads(text)


def _dictionary_of(blob: bytes) -> bytes:
    """The preset dictionary a zlib stream names in its header (FDICT, DICTID); b"" when it names none."""
    header_ok = len(blob) >= 6 and blob[0] & 0x0F == 8 and (blob[0] * 256 + blob[1]) % 31 == 0  # deflate, checked
    if not header_ok or not blob[1] & 0x20:
        return b""  # zlib itself says what is wrong with a stream that is not one
    dictionary = DICTIONARIES.get(int.from_bytes(blob[2:6], "big"))
    if dictionary is None:
        raise ValueError(f"the compact record names an unknown zlib dictionary ({blob[2:6].hex()})")
    return dictionary


def _deflate(value: dict[str, Any]) -> bytes:
    text = json.dumps(encode_nonfinite(value), allow_nan=False, default=str, separators=(",", ":"))
    deflater = zlib.compressobj(9, zdict=_WRITTEN_WITH)
    return deflater.compress(text.encode()) + deflater.flush()
