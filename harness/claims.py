"""What a scheme claims about the .tflite it produces, checked against what the file holds.

Every scheme states its claims in its own module (`claims = (...)` on its registry entry):
- `integer_only`: every op runs in integers and the model's inputs and outputs are integer
  (`int8_only`); found from the audit's `integer_only`;
- `weights_quantized`: the share of kernel weights (conv/dense kernels, also behind DEQUANTIZE)
  stored as integers, at least `min` (1: all of them); kernels of fewer than `min_elements`
  weights are not claimed (dynamic range quantizes kernels of 1,024 weights or more);
- `weights_float16`: the same with float16 kernels (`float16`);
- `quantized_ops_share`: the share of compute ops (every op but QUANTIZE/DEQUANTIZE, SHAPE/RANK
  and those on shapes and indices only) that run in int8 or int16, at least `min`.

`check_claims` turns them into the record's `claims` part — per claim what was found, whether it
holds as the scheme states it, and the ops or kernels left float — from the record's `audit` and
`weights` (both read back from the produced file). `harness.verdicts.claim_verdicts` (through
`harness.verdicts.check`, above the schemes whose registry states the claims) makes each a verdict named after
the claim; the suite may accept one
(`claims: {integer_only: false}`) or restate its minimum (`claims: {quantized_ops_share: {min: 0.5}}`)
per model and scheme in `thresholds.overrides`. An option the user gave to keep layers float on
request (`float_layers`, `recover`) waives the claims that name it (`waived_by`): recorded, not checked.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from harness.config.schema import ClaimName
from harness.record import Audit, ClaimResult, WeightStats

CONVERSION_OPS = frozenset({"QUANTIZE", "DEQUANTIZE"})
SHAPE_OPS = frozenset({"SHAPE", "RANK"})  # read a tensor's shape, not its values: never compute, whatever its type
NOT_COMPUTE = CONVERSION_OPS | SHAPE_OPS
INTEGER_DTYPES = frozenset({"int8", "uint8", "int4", "int16"})
LISTED = 5  # op types or kernels named in a finding; the rest are counted
NAMES_PER_OP = 3


@dataclass(frozen=True)
class Claim:
    """One thing a scheme says its .tflite holds (see the module docstring for each name)."""

    name: ClaimName
    min: float = 1.0
    min_elements: int = 0
    waived_by: tuple[str, ...] = ()

    def statement(self) -> str:
        """The claim in words, for the record."""
        share = "all" if self.min >= 1 else f"at least {self.min:.0%} of"
        small = f" of {self.min_elements:,} weights or more" if self.min_elements else ""
        return {
            "integer_only": "every op runs in integers, integer inputs and outputs",
            "weights_quantized": f"{share} kernel weights{small} stored as integers",
            "weights_float16": f"{share} kernel weights{small} stored as float16",
            "quantized_ops_share": f"{share} compute ops run in int8 or int16",
        }[self.name]


def weights_quantized(min_elements: int = 0, waived_by: tuple[str, ...] = ()) -> Claim:
    return Claim("weights_quantized", min_elements=min_elements, waived_by=waived_by)


def quantized_ops_share(minimum: float, waived_by: tuple[str, ...] = ()) -> Claim:
    return Claim("quantized_ops_share", min=minimum, waived_by=waived_by)


INTEGER_ONLY = Claim("integer_only")
WEIGHTS_FLOAT16 = Claim("weights_float16")
FULL_INTEGER_SHARE = 0.9
"""The share of compute ops a full-integer scheme with float fallback (int8, int16x8, QAT) claims in integer."""


# -- what the file holds -------------------------------------------------------------------------
@dataclass(frozen=True)
class Finding:
    value: float | None  # None: the record lacks what the claim is read from
    found: str
    left_float: list[str]


def short_name(tensor: str) -> str:
    """A tensor name as a reader finds the layer in it: the converter's fused names (`a/MatMul;a/BiasAdd;…`)
    shortened to their first part, at most 60 characters."""
    first = tensor.split(";", 1)[0]
    return first if len(first) <= 60 else first[:59] + "…"


def _capped(items: Sequence[str]) -> str:
    """The first LISTED items, and how many more there are."""
    return ", ".join(items[:LISTED]) + (f", +{len(items) - LISTED} more" if len(items) > LISTED else "")


def _float_ops(audit: Audit) -> dict[str, int]:
    """Op type → how many of its ops run in float, most first."""
    counts = {op: row.get("float", 0) for op, row in (audit.get("ops") or {}).items() if row.get("float")}
    return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))


def _op_group(audit: Audit, op: str, count: int) -> str:
    """`PRELU ×53 (p_re_lu, p_re_lu_1, p_re_lu_2, …)`: the op's output tensors the audit names."""
    names = [short_name(name) for group in audit.get("stayed_float") or [] if group.get("op") == op
             for name in group.get("outputs") or []][:NAMES_PER_OP]
    more = ", …" if names and count > len(names) else ""
    return f"{op} ×{count}" + (f" ({', '.join(names)}{more})" if names else "")


def _float_groups(audit: Audit, leave_out: frozenset[str]) -> tuple[list[str], int, int]:
    """(the float op groups but `leave_out`'s, how many ops they hold, how many QUANTIZE/DEQUANTIZE) in float."""
    counts = _float_ops(audit)
    kept = {op: n for op, n in counts.items() if op not in leave_out}
    groups = [_op_group(audit, op, n) for op, n in kept.items()]
    return groups, sum(kept.values()), sum(n for op, n in counts.items() if op in CONVERSION_OPS)


def _integer_only(audit: Audit | None) -> Finding:
    if not audit or "integer_only" not in audit:
        return Finding(None, "not produced: the record has no audit of the model", [])
    groups, compute, conversions = _float_groups(audit, CONVERSION_OPS)
    io = [b for b in audit.get("integer_only_breakers") or [] if b.startswith(("input ", "output "))]
    if audit["integer_only"]:
        return Finding(1.0, "every op runs in integers, integer inputs and outputs", [])
    around = f"; {conversions} QUANTIZE/DEQUANTIZE around them" if conversions else ""
    runs = f"{compute} op runs" if compute == 1 else f"{compute} ops run"
    parts = ([f"{runs} in float: {_capped(groups)}{around}"] if compute else
             [f"{conversions} QUANTIZE/DEQUANTIZE run in float"] if conversions else [])
    return Finding(0.0, "; ".join(parts + io) or "not integer-only", groups + io)


def _ops_share(audit: Audit | None) -> Finding:
    if not audit or "ops" not in audit:
        return Finding(None, "not produced: the record has no audit of the model", [])
    rows = [row for op, row in (audit.get("ops") or {}).items() if op not in NOT_COMPUTE]
    integer = sum(row.get("int8", 0) + row.get("int16", 0) for row in rows)
    total = integer + sum(row.get("float", 0) for row in rows)
    if not total:
        return Finding(0.0, "no compute op runs in int8, int16 or float", [])
    groups, in_float, _ = _float_groups(audit, NOT_COMPUTE)
    found = f"{integer} of {total} compute ops run in int8/int16"
    return Finding(integer / total, found + (f"; {in_float} in float: {_capped(groups)}" if in_float else ""), groups)


def _weights(weights: WeightStats | None, dtypes: frozenset[str], label: str, min_elements: int) -> Finding:
    """The share of the claimed kernels' weights stored in `dtypes`, and the kernels that are not."""
    if weights is None or "layers" not in weights:
        return Finding(None, "not produced: the record has no weight statistics of the model", [])
    kernels = [row for row in weights["layers"] if row.get("weights", 0) >= min_elements]
    total = sum(row.get("weights", 0) for row in kernels)
    if not total:
        limit = f" of {min_elements:,} weights or more" if min_elements else ""
        return Finding(1.0, f"the model has no kernel{limit} (nothing to store as {label})", [])
    other = [row for row in kernels if row.get("dtype") not in dtypes]
    left = sum(row.get("weights", 0) for row in other)
    names = [f"{short_name(str(row.get('layer')))} ({row.get('dtype')})" for row in other]
    found = f"{len(kernels) - len(other)} of {len(kernels)} kernels {label}"
    if other:
        found += f"; {len(other)} not ({left:,} of {total:,} weights, {_bytes(other)}): {_capped(names)}"
    return Finding((total - left) / total, found, names)


def _bytes(rows: Sequence[Mapping[str, Any]]) -> str:
    size = sum(row.get("weights", 0) * _ITEMSIZE.get(str(row.get("dtype")), 4) for row in rows)
    return f"{size / 1e6:.1f} MB" if size >= 1e5 else f"{size:,} B"


_ITEMSIZE = {"float32": 4, "float16": 2, "int8": 1, "uint8": 1, "int16": 2, "int32": 4, "float64": 8}


def find(claim: Claim, audit: Audit | None, weights: WeightStats | None) -> Finding:
    """What the file holds against `claim`."""
    if claim.name == "integer_only":
        return _integer_only(audit)
    if claim.name == "quantized_ops_share":
        return _ops_share(audit)
    if claim.name == "weights_float16":
        return _weights(weights, frozenset({"float16"}), "float16", claim.min_elements)
    return _weights(weights, INTEGER_DTYPES, "integer", claim.min_elements)


# -- the record's `claims` part ------------------------------------------------------------------
def _given(options: Any, name: str) -> bool:
    value = options.get(name) if isinstance(options, Mapping) else getattr(options, name, None)
    return bool(value)


def check_claim(claim: Claim, options: Any, audit: Audit | None, weights: WeightStats | None) -> ClaimResult:
    """One claim against the file: what was found and whether it holds as the scheme states it."""
    result: ClaimResult = {"claim": claim.name, "statement": claim.statement(), "min": claim.min}
    waivers = [name for name in claim.waived_by if _given(options, name)]
    if waivers:
        return {**result, "value": None, "pass": None, "found": "not checked", "left_float": [],
                "waived": f"`{waivers[0]}` keeps layers float on request"}
    finding = find(claim, audit, weights)
    holds = finding.value is not None and finding.value >= claim.min
    return {**result, "value": finding.value, "pass": holds, "found": finding.found,
            "left_float": finding.left_float[:20]}


def check_claims(claims: Sequence[Claim], options: Any, record: Mapping[str, Any]) -> list[ClaimResult]:
    """The record's `claims` part: every claim of the scheme against the record's audit and weights."""
    return [check_claim(claim, options, record.get("audit"), record.get("weights")) for claim in claims]
