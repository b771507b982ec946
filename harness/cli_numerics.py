"""`bench diagnose RUN_DIR CELL`: per intermediate tensor, where a cell's error comes from (registered in harness.cli)."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from harness._console import plain_console
from harness.cache import file_digest
from harness.errors import HarnessError
from harness.record import CellRecord, artifact_of, record_id
from harness.results import RESULTS, read_results, read_run_info
from harness.schemes import debugged

if TYPE_CHECKING:
    from harness.plan import Cell
    from harness.suite.loader import LoadedSuite

console = plain_console()


def find_cell(run_dir: Path, cell: str) -> tuple[CellRecord, CellRecord]:
    """The cell's record (`model/scheme` or `model/scheme@device`) and its float32 baseline's, both
    with the model file the run produced (same sha256)."""
    records = {record_id(r): r for r in read_results(_run_folder(run_dir))}
    matches = [r for key, r in records.items() if key == cell or key.split("@")[0] == cell]
    if len(matches) != 1:
        raise HarnessError(f"{run_dir}: {'no' if not matches else 'several'} cells match {cell!r} "
                           f"(cells: {_some(sorted(records))})")
    record = matches[0]
    baseline = records.get(f"{record['model']}/float32@{record['device']}")
    _check_model_file(cell, "cell", record)
    _check_model_file(cell, "float baseline", baseline)
    assert baseline is not None
    return record, baseline


def _run_folder(run_dir: Path) -> Path:
    """`run_dir`, if it holds a run (results.jsonl); else a clear error saying what is missing."""
    if not run_dir.exists():
        raise HarnessError(f"{run_dir}: no such run folder")
    if not (run_dir / RESULTS).is_file():
        raise HarnessError(f"{run_dir}: not a run folder (no {RESULTS})")
    return run_dir


def _check_model_file(cell: str, which: str, candidate: CellRecord | None) -> None:
    """The record finished with a model file that is still the one the run produced."""
    artifact = candidate.get("artifact") if candidate else None
    if candidate is None or candidate["status"] != "ok" or not artifact:
        raise HarnessError(f"{cell}: the {which} has no model file to run (status "
                           f"{candidate.get('status') if candidate else None})")
    path = Path(artifact["path"])
    if not path.is_file():
        raise HarnessError(f"{cell}: the {which}'s model file {path} is gone")
    if file_digest(path) != artifact["sha256"]:
        raise HarnessError(f"{cell}: the {which}'s model file {path} changed since the run (sha256 differs)")


def _suite_cell(info: dict[str, Any], record: CellRecord) -> tuple[LoadedSuite, Cell]:
    """The run's suite as it is now and the cell in it, which must be defined as when it ran."""
    from harness.plan import cell_key, plan_cells
    from harness.suite import load_suite

    loaded = load_suite(info["suite_path"])
    cells = {c.id: c for c in plan_cells(loaded, devices=[record["device"]])}
    name = record_id(record)
    if name not in cells:
        raise HarnessError(f"{name}: no longer in the suite {loaded.path} (edited since the run; "
                           f"its cells now: {_some(sorted(cells))})")
    if not record.get("cell_key"):
        raise HarnessError(f"{name}: recorded without a cell key (an older quantbench), so whether {loaded.path} "
                           "still defines it as it ran cannot be told: re-run it before diagnosing")
    if record.get("cell_key") != cell_key(loaded, cells[name]):
        raise HarnessError(f"{name}: the suite {loaded.path} defines it differently since the run "
                           f"(model, scheme, data or device changed): re-run it before diagnosing")
    return loaded, cells[name]


def _some(names: list[str], shown: int = 8) -> str:
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return (", ".join(names[:shown]) or "none") + more


def _inputs(run_dir: Path, record: CellRecord, samples: int) -> tuple[Any, Any, Any]:
    """The loaded suite, the first `samples` evaluation samples, and the cell's calibration samples (or None)."""
    from harness.cache import ArtifactCache
    from harness.datasets import DATASETS

    info = read_run_info(run_dir)
    if not info.get("suite_path"):
        raise HarnessError(f"{run_dir}: no run.json naming the suite")
    loaded, cell = _suite_cell(info, record)
    cache = ArtifactCache(Path(info["cache_dir"])) if info.get("cache_dir") else None
    load = lambda name: DATASETS.get(loaded.suite.datasets[name].kind).load(  # noqa: E731
        name, loaded.dataset_options[name], loaded.base_dir, cache)
    task = cell.model.task or loaded.suite.task
    if task is None or task.dataset is None:
        raise HarnessError(f"{record_id(record)}: its suite's task has no dataset: no samples to run the tensors on")
    data = load(task.dataset).head(samples)
    spec = loaded.calibration_for(cell.model, cell.scheme)
    calibration = load(spec.dataset).sample(spec.samples, spec.seed) if spec is not None else None
    return cache, data.x, calibration


def _as_lists(x: Any, model: Path) -> Any:
    """Samples as the debugger takes them: per sample, a list of (1, ...) arrays in the model's input order."""
    from harness.tflite.runtime import bind_inputs, load_interpreter

    arrays = bind_inputs(x, load_interpreter(model), model.name)
    return lambda: ([a[i : i + 1].astype("float32") for a in arrays] for i in range(len(arrays[0])))


def _quantized_in_torch(record: CellRecord) -> bool:
    """A PT2E cell's model was quantized in torch, not by litert-quantizer from the float .tflite: its graph is
    not the float one's with quantization added, so litert-quantizer's validate() does not apply."""
    from harness.schemes import SCHEMES

    return record["scheme_kind"] in SCHEMES.names() and SCHEMES.get(record["scheme_kind"]).quantizes_torch


def _debugger(record: CellRecord, baseline: CellRecord, cache: Any, x: Any,
              calibration: Any) -> dict[str, dict[str, float]]:
    from harness.models.source import SourceModel, detect_format, saved_model_dir
    from harness.numerics.diagnose import debugger_statistics

    path = Path(artifact_of(record)["source"])
    digest = hashlib.sha256(path.read_bytes() if path.is_file() else str(path).encode()).hexdigest()
    saved = saved_model_dir(SourceModel(record["model"], detect_format(path), path, digest), cache)
    float_model = Path(artifact_of(baseline)["path"])
    return debugger_statistics(saved, _as_lists(calibration, float_model), _as_lists(x, float_model))


def _validate_route(record: CellRecord, baseline: CellRecord, x: Any, optimized: dict[str, Any],
                    reference: dict[str, Any], rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """litert-quantizer's validate() numbers joined to the rows, and their cross-check."""
    from harness.numerics._validate import cross_check_validate, join_validate, validate_statistics
    from harness.numerics.diagnose import on_builtin_kernels

    float_path, cell_path = Path(artifact_of(baseline)["path"]), Path(artifact_of(record)["path"])
    statistics = validate_statistics(float_path, cell_path, x)
    builtin_rows, optimized, reference = on_builtin_kernels(cell_path, float_path, x)  # what validate() computes
    check = {**cross_check_validate(builtin_rows, optimized, reference, statistics), "kernels": "builtin"}
    return join_validate(rows, statistics), check


def _table(rows: list[dict[str, Any]], title: str) -> Table:
    table = Table(title=Text(title))
    for column in ("#", "op", "tensor", "dtype", "snr_db", "nrmse", "rmse/scale", "debugger rmse/scale",
                   "validate snr_db"):
        table.add_column(column, overflow="fold")
    show = lambda v: "–" if v is None else (v if isinstance(v, str) else f"{v:.4g}")  # noqa: E731
    for row in rows:
        cells = (str(row["position"]), row["op"], row["tensor"][:60], row["dtype"], show(row["snr_db"]),
                 show(row["nrmse"]), show(row["rmse_per_scale"]), show(row.get("debugger_rmse_per_scale")),
                 show(row.get("validate_snr_db")))
        table.add_row(*(Text(str(cell)) for cell in cells))  # tensor names are never Rich markup
    return table


def worst_first(rows: list[dict[str, Any]], top: int) -> list[dict[str, Any]]:
    """The `top` rows of lowest SNR, worst first (a NaN SNR, where the numbers broke, before any
    number; a row without an SNR last); every row in graph order when `top` is 0."""
    if top == 0:
        return rows
    return sorted(rows, key=_snr_rank)[:top]


def _snr_rank(row: dict[str, Any]) -> tuple[int, float]:
    value = row.get("snr_db")
    if value is None:
        return (2, 0.0)
    number = float(value)  # "NaN" / "Infinity" as JSON writes them, too
    return (0, 0.0) if math.isnan(number) else (1, number)


def _shown_title(cell: str, shown: int, compared: int, tensors: int, top: int) -> str:
    if top == 0 or shown == compared:
        return f"{cell}: {compared} of {tensors} tensors vs float, in graph order"
    return (f"{cell}: the {shown} of lowest SNR (worst first) of {compared} compared ({tensors} tensors) vs float; "
            "--all for every one, in graph order")


def diagnose(
    run_dir: Annotated[Path, typer.Argument(help="a run directory (reports/<suite>/<time>)")],
    cell: Annotated[str, typer.Argument(help="model/scheme or model/scheme@device")],
    samples: Annotated[int, typer.Option(help="evaluation samples to run (first N)")] = 8,
    top: Annotated[int, typer.Option(help="print the N tensors of lowest SNR, worst first (0: every tensor, "
                                          "in graph order)")] = 20,
    all_rows: Annotated[bool, typer.Option("--all", help="print every tensor, in graph order (as --top 0)",
                                           show_default="off")] = False,
    debugger: Annotated[bool, typer.Option("--debugger/--no-debugger",
                                           help="TF QuantizationDebugger too (converter sources, int8 schemes)")] = True,
    validate: Annotated[bool, typer.Option("--validate/--no-validate",
                                           help="litert-quantizer's validate() too (.tflite sources)")] = True,
) -> None:
    """Per intermediate tensor of the cell's model vs the float model: SNR, NRMSE, RMSE / scale. Prints the
    --top 20 of lowest SNR, worst first (--all: every tensor, in graph order); writes every tensor, in graph
    order, to RUN_DIR/diagnose/<model>__<scheme>__<device>.json."""
    from harness.numerics.diagnose import (
        check_names,
        compare_tensors,
        cross_check,
        diagnosed_on,
        join,
        on_builtin_kernels,
        run_all_tensors,
    )

    if samples < 1:
        raise HarnessError(f"--samples must be at least 1 (got {samples})")
    if top < 0:
        raise HarnessError(f"--top must be 0 (every tensor) or more (got {top})")
    top = 0 if all_rows else top
    record, baseline = find_cell(run_dir, cell)
    cache, x, calibration = _inputs(run_dir, record, samples)
    optimized = run_all_tensors(Path(artifact_of(record)["path"]), x)
    reference = run_all_tensors(Path(artifact_of(baseline)["path"]), x)
    rows = compare_tensors(optimized, reference)
    check_names(rows, optimized)
    result: dict[str, Any] = {"cell": record_id(record), "samples": len(rows and optimized[rows[0]["tensor"]]["values"]),
                              "tensors": len(optimized), "compared": len(rows),
                              "kernels": diagnosed_on(Path(artifact_of(record)["path"]))}
    # a .tflite file, or a torch program (.pt2) whose cells quantize litert-torch's float .tflite: that route
    source_is_tflite = Path(artifact_of(record)["source"]).suffix.lower() in (".tflite", ".pt2")
    if debugger and debugged(record["scheme_kind"]) and not source_is_tflite and calibration is not None:
        statistics = _debugger(record, baseline, cache, x, calibration)
        rows = join(rows, statistics)
        builtin_rows, _, _ = on_builtin_kernels(Path(artifact_of(record)["path"]), Path(artifact_of(baseline)["path"]), x)
        result["cross_check"] = {**cross_check(builtin_rows, statistics), "kernels": "builtin"}
    elif validate and source_is_tflite and record["scheme_kind"] != "float32" and not _quantized_in_torch(record):
        rows, result["cross_check"] = _validate_route(record, baseline, x, optimized, reference, rows)
    result["layers"] = rows
    finite = [r for r in rows if math.isfinite(float(r["snr_db"]))]
    result["worst"] = sorted(finite, key=lambda r: float(r["snr_db"]))[:5]
    out = run_dir / "diagnose" / f"{record_id(record).replace('/', '__').replace('@', '__')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1, allow_nan=False))
    shown = worst_first(rows, top)
    console.print(_table(shown, _shown_title(result["cell"], len(shown), len(rows), len(optimized), top)))
    if "cross_check" in result:
        check = result["cross_check"]
        console.print(Text(f"{check.get('route', 'QuantizationDebugger')} cross-check: {check}"), highlight=False,
                      soft_wrap=True)
    console.print(Text(f"kernels: {result['kernels']} (the kernels the cell's model is deployed on)"),
                  highlight=False, soft_wrap=True)
    console.print(Text(f"written: {out}"), highlight=False, soft_wrap=True)
