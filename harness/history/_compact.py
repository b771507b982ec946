"""A history row's compact record: what trend and attribution need, zlib-compressed, at most
`LIMIT` bytes per cell (issue 25). The full record stays in the run folder (results.jsonl), which
the run row names with its sha256 (`History.full_records`).

Left out: the raw latency sample and the per-op, per-layer and per-output detail (each listed in
`_DETAIL`). Kept: identity, status and error, every metric, latency statistics and setup, size,
verdicts, the model file's sha256, and the aggregate numbers checks read (weights, audit,
quantization coverage, delegation, acceleration). A record that is still over the limit loses the
whole fields of `_SPARE`, in that order, until it fits (what a verdict is built on never goes).
"""

from __future__ import annotations

import json
import zlib
from typing import Any

from harness.record import FORMAT_VERSION, CellRecord, encode_nonfinite

LIMIT = 1536  # bytes of compressed record per cell and run
LARGEST = 64 * 2**20  # a stored record that inflates beyond this is damaged (or hostile)

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
    "device_state": ("before", "after"),
    "latency_ab": ("pairs",),
    "latency_vs_float": ("pairs",),
    "latency_setup": ("command", "remote_calls", "mask"),
    "artifact": ("source_info", "rebuilt"),
    "technique": ("wrapped", "untouched", "output_quantized"),
    "executed_on": ("retried", "host_work"),
}
_CLAIM_DETAIL = ("left_float", "found")
# dropped whole, in this order, while a record is over LIMIT
_SPARE = ("evaluation", "calibration", "scheme_options", "io_types", "timings_s", "kernel_paths", "claims",
          "technique", "device_numerics", "diagnosis", "recovery", "memory", "executed_on", "device_state")


def compact(record: CellRecord) -> dict[str, Any]:
    """The record without its raw latency sample and per-op/per-layer detail."""
    kept: dict[str, Any] = {"format_version": FORMAT_VERSION}
    for key, value in record.items():
        left_out = _DETAIL.get(key, ())
        if left_out is None:
            continue
        if left_out and isinstance(value, dict):
            value = {k: v for k, v in value.items() if k not in left_out}
        if key == "claims" and isinstance(value, list):
            value = [{k: v for k, v in c.items() if k not in _CLAIM_DETAIL} if isinstance(c, dict) else c
                     for c in value]
        kept[key] = value
    return kept


def encode(record: CellRecord) -> bytes:
    """The compact record as zlib-compressed JSON, trimmed to LIMIT bytes where `_SPARE` allows."""
    kept = compact(record)
    blob = _deflate(kept)
    for key in _SPARE:
        if len(blob) <= LIMIT:
            break
        if kept.pop(key, None) is not None:
            blob = _deflate(kept)
    return blob


def decode(blob: object) -> Any:
    """A stored compact record's JSON (ValueError or TypeError when the bytes are not one)."""
    if not isinstance(blob, bytes):
        raise TypeError(f"the compact record is {type(blob).__name__}, not bytes")
    inflater = zlib.decompressobj()
    try:
        text = inflater.decompress(blob, LARGEST)
    except zlib.error as exc:
        raise ValueError(f"the compact record is not zlib data ({exc})") from None
    if inflater.unconsumed_tail:
        raise ValueError(f"the compact record inflates beyond {LARGEST} bytes")
    return json.loads(text)


def _deflate(value: dict[str, Any]) -> bytes:
    text = json.dumps(encode_nonfinite(value), allow_nan=False, default=str, separators=(",", ":"))
    return zlib.compress(text.encode(), 9)
