"""The `bench` command line."""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import typer  # noqa: E402
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn  # noqa: E402
from rich.text import Text  # noqa: E402

from harness import cli_numerics, cli_reports  # noqa: E402
from harness._console import plain_console  # noqa: E402
from harness.cli_devices import devices_app  # noqa: E402
from harness.errors import HarnessError  # noqa: E402
from harness.registry import Registry  # noqa: E402

if TYPE_CHECKING:  # harness.history is imported when a command needs it, keeping `bench --help` fast
    from harness.history import HistoryLocation

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="quantbench: how much smaller, faster and less accurate each optimization makes your models.")
console = plain_console()
errors = plain_console(stderr=True)

EXIT_CONFIG = 2


@contextmanager
def native_stderr_to(path: Path) -> Iterator[None]:
    """Send C++ runtime logging (TensorFlow, LiteRT) on fd 2 to a file while the run draws progress."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stderr.flush()
    saved = os.dup(2)
    with open(path, "ab") as log:
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


def _fail(message: str, code: int = EXIT_CONFIG) -> typer.Exit:
    errors.print(Text.assemble(("error:", "bold red"), " ", message), highlight=False, soft_wrap=True)
    return typer.Exit(code)


@app.command()
def run(
    suite: Annotated[Path, typer.Argument(help="suite YAML file, e.g. suites/cnn.yaml")],
    out: Annotated[Path | None, typer.Option(help="run directory",
                                                show_default="<reports>/<suite>/<UTC time>")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="continue the latest (or --out) run, skipping finished cells",
                                         show_default="off")] = False,
    only: Annotated[list[str] | None, typer.Option(
        help="run only the cells matching GLOB (over model/scheme or model/scheme@device) and their float "
             "baselines; repeatable", show_default="every cell")] = None,
    devices: Annotated[str | None, typer.Option(help="comma-separated device names overriding the suite's",
                                                   show_default="the suite's")] = None,
    reports: Annotated[Path, typer.Option(help="root folder of run directories")] = Path("reports"),
    cache: Annotated[Path | None, typer.Option(help="artifact cache",
                                                  show_default="$QUANTBENCH_CACHE, else ~/.cache/quantbench")] = None,
    history: Annotated[str | None, typer.Option(help="run history store: a SQLite file, or a "
                                                   "postgresql://USER@HOST/DB URL (a team's shared store)",
                                                   show_default="<reports>/history.sqlite")] = None,
    no_history: Annotated[bool, typer.Option("--no-history", help="do not record the run in (or compare it through) "
                                             "the history store", show_default="off")] = False,
    executor: Annotated[str, typer.Option(
        help="who runs the cells: inprocess (this process) or ray (a Ray cluster)")] = "inprocess",
    ray_address: Annotated[str | None, typer.Option(help="with --executor ray: the cluster's HOST:PORT",
                                                       show_default="$RAY_ADDRESS, else auto")] = None,
) -> None:
    """Optimize, run and score every model × scheme × device cell of a suite."""
    from harness import _interrupt
    from harness.config.schema import check_name
    from harness.executors import make_executor
    from harness.history import parse_location
    from harness.plan import plan_cells
    from harness.results import locked
    from harness.suite import load_suite

    store = None if no_history else parse_location(history) if history else reports / "history.sqlite"
    loaded = load_suite(suite)
    device_names = [check_name(d.strip(), "--devices") for d in devices.split(",") if d.strip()] if devices else None
    runs_on = make_executor(executor, ray_address)
    cells = plan_cells(loaded, only, device_names)
    if not cells:
        raise HarnessError(f"--only {only} matches no cell of {suite}")
    # One life-cycle under one signal regime: a Ctrl-C or SIGTERM at any point from here on ends in
    # _interrupted (exit 130 / 143), and the lock is released whatever happens (locked).
    with _interrupt.stop_on_signals():
        fresh = not resume and (out is None or not out.exists())
        run_dir = _run_dir(out, resume, reports, loaded.name)
        with locked(run_dir, fresh=fresh):
            try:
                outcome, (regressed, verdict) = _run_and_publish(loaded, cells, run_dir, resume, cache, store,
                                                                 runs_on)
            except KeyboardInterrupt as exc:
                raise _interrupted(run_dir, exc) from None
    _verdict(outcome, regressed, verdict)


def _run_and_publish(loaded: Any, cells: list[Any], run_dir: Path, resume: bool, cache: Path | None,
                     store: HistoryLocation | None, runs_on: Any) -> tuple[Any, tuple[int, Any]]:
    """Run the cells, then publish (reports, history). Whatever stops the run after its cells
    finished is written in run.json (`interrupted` or `failed` while publishing: `--resume` finishes
    it); a stop during the cells the runner has already written."""
    from harness import _interrupt
    from harness.cache import DEFAULT_ROOT, ArtifactCache
    from harness.report.publish import earlier_run
    from harness.report.terminal import results_table
    from harness.results import holds_a_run, stopped_after_cells
    from harness.runner import SuiteRunner

    if not resume and holds_a_run(run_dir):
        raise HarnessError(f"--out {run_dir} already holds a run: give --resume to continue it, "
                           "or another (empty) --out")
    artifacts = ArtifactCache(cache or DEFAULT_ROOT)
    earlier = earlier_run(store, run_dir, loaded.name, loaded.path, [c.id for c in cells])
    runner = SuiteRunner(loaded, run_dir, artifacts, earlier=earlier, executor=runs_on)
    try:
        outcome = _run_cells(runner, cells)
        for note in outcome.notes:
            _say(Text.assemble(("resume: ", "yellow"), note))
        for event in artifacts.events:
            _say(Text.assemble(("warning: ", "yellow"), str(event)))
        for note, count in _record_notes(outcome.records).items():  # e.g. calibration overlapping evaluation
            _say(Text.assemble(("warning: ", "yellow"), f"{note} ({count} cell{'s' if count > 1 else ''})"))
        console.print(results_table(outcome.records, f"{loaded.name} — {run_dir}"))
        return outcome, cli_reports.publish_after_run(run_dir, store, loaded.suite)
    except BaseException as exc:
        if runner.finished:  # else the runner wrote how the cells stopped
            with _interrupt.deferred():  # a second Ctrl-C cannot tear this write
                stopped_after_cells(run_dir, exc, "publishing")
        raise


def _record_notes(records: list[Any]) -> dict[str, int]:
    """Each distinct note of the run's records, with the number of cells that carry it."""
    counts: dict[str, int] = {}
    for record in records:
        for note in record.get("notes") or []:
            counts[note] = counts.get(note, 0) + 1
    return counts


def _say(text: Text) -> None:
    console.print(text, highlight=False, soft_wrap=True)


def _run_dir(out: Path | None, resume: bool, reports: Path, suite_name: str) -> Path:
    """--out, the latest run (with --resume), or a new uniquely named run directory."""
    from harness.results import create_run_dir, latest_run_dir

    if resume:
        run_dir = out or latest_run_dir(reports / suite_name)
        if run_dir is None or not (run_dir / "run.json").exists():
            raise HarnessError(f"--resume: no earlier run of {suite_name!r} in {run_dir or reports / suite_name}")
        return run_dir
    return out if out is not None else create_run_dir(reports / suite_name)


def _run_cells(runner: Any, cells: list[Any]) -> Any:
    """Run with a progress bar (Ctrl-C or SIGTERM stop it: the runner keeps what finished); run.json's
    argv has any history URL's credentials taken out."""
    from harness.history import redact_argv
    from harness.results import RUNTIME_LOG

    _say(Text.assemble((runner.loaded.name, "bold"), f": {len(cells)} cells → {runner.run_dir}"))
    columns = [TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn()]
    with Progress(*columns, console=console, transient=True) as progress:
        runner.progress = partial(_on_progress, progress, progress.add_task("starting", total=len(cells)))
        with native_stderr_to(runner.run_dir / RUNTIME_LOG):
            return runner.run(cells, redact_argv(sys.argv))


def _on_progress(progress: Progress, bar: Any, cell: str, stage: str, record: dict | None) -> None:
    from harness.report.terminal import clip_words

    if stage != "done":
        progress.update(bar, description=f"{cell}: {stage}")
        return
    progress.advance(bar)
    assert record is not None
    style = {"ok": "green", "n/a": "yellow"}.get(record["status"], "red")
    note = f" {clip_words(record['error'], 120)}" if record.get("error") else ""
    progress.console.print(Text.assemble("  ", (f"{record['status']:>6}", style), f" {cell}{note}"),
                           highlight=False)


def _interrupted(run_dir: Path, exc: KeyboardInterrupt) -> typer.Exit:
    """After an interrupt: reports of the finished cells, marked incomplete; not recorded in history."""
    from harness.report.publish import publish_run
    from harness.results import read_run_info

    code = getattr(exc, "exit_code", 130)
    info = read_run_info(run_dir)
    if not info:
        errors.print(Text("interrupted before the run started: nothing was written"), highlight=False)
        return typer.Exit(code)
    written = ""
    try:
        if info.get("status") == "interrupted":  # not a finished run whose resume was stopped at start-up
            publish_run(run_dir, None)
            written = f"reports of the finished cells (marked incomplete) are in {run_dir}; "
    except HarnessError:
        pass
    when = " while publishing (every cell had finished)" if info.get("stopped_in") else ""
    errors.print(Text(f"interrupted{when}: finished cells are saved; {written}continue with "
                      f"bench run --resume --out {run_dir}"), highlight=False, soft_wrap=True)
    return typer.Exit(code)


def _verdict(outcome: Any, regressed: int, verdict: Any) -> None:
    """The last lines: where the results are, and the run's one verdict line (harness.compare.verdict_line)."""
    if outcome.skipped:
        _say(Text(f"resumed: {outcome.skipped} cell(s) were already done"))
    _say(Text(f"results: {outcome.run_dir / 'results.jsonl'}   report: {outcome.run_dir / 'report.html'}"))
    cli_reports.say_verdict(verdict, console)
    raise typer.Exit(max(outcome.exit_code, regressed))


@app.command()
def validate(suite: Annotated[Path, typer.Argument(help="suite YAML file")]) -> None:
    """Check a suite file without running it."""
    from harness.runner import plan_cells
    from harness.suite import load_suite

    loaded = load_suite(suite)
    console.print(f"{suite}: ok ({len(plan_cells(loaded))} cells)")


@app.command("list")
def list_(what: Annotated[str, typer.Argument(help="schemes | models | datasets | tasks | devices")] = "schemes") -> None:
    """List the registered schemes, model builders, dataset kinds, tasks or device kinds."""
    from harness.datasets import DATASETS
    from harness.devices import DEVICE_KINDS
    from harness.models import BUILDERS
    from harness.schemes import SCHEMES
    from harness.tasks import TASKS

    registries: dict[str, Registry[Any]] = {"schemes": SCHEMES, "models": BUILDERS, "datasets": DATASETS, "tasks": TASKS,
                  "devices": DEVICE_KINDS}
    if what not in registries:
        raise HarnessError(f"cannot list {what!r}; choose one of {', '.join(registries)}")
    width = max(len(n) for n in registries[what].names())
    for name, summary in registries[what].summaries():
        console.print(f"{name:<{width}}  {summary}", highlight=False, soft_wrap=True)


@app.command()
def measure(
    model: Annotated[Path, typer.Argument(help=".tflite file")],
    repeat: Annotated[int, typer.Option(help="independent measurements (fresh process each)")] = 5,
    device: Annotated[str, typer.Option(help="device profile name")] = "local",
    num_runs: Annotated[int, typer.Option(help="timed runs per measurement")] = 50,
    min_secs: Annotated[float, typer.Option(help="minimum timed seconds per measurement")] = 1.0,
    warmup_runs: Annotated[int, typer.Option(help="warm-up runs per measurement")] = 10,
) -> None:
    """Measure one model's latency several times and report how stable the median is."""
    from harness.devices import load_device
    from harness.stats import coefficient_of_variation

    if repeat < 1:
        raise HarnessError(f"--repeat must be at least 1 (got {repeat})")
    settings = _measure_settings(warmup_runs=warmup_runs, num_runs=num_runs, min_secs=min_secs)
    path = _tflite_file(model)
    target = load_device(device, Path("suites"))
    try:
        raws = [_measure_once(target, path, settings, index) for index in range(repeat)]
    finally:
        target.close()
    medians = [typical for _, typical in raws]
    spread = (f"medians CV {coefficient_of_variation(medians) * 100:.2f}% over {repeat} runs" if repeat > 1
              else "one run: no CV of the medians (give --repeat 2 or more)")
    console.print(Text(f"{model.name} on {device} ({target.describe().get('core_reason', '')}): {spread}"))
    if raws[0][0].get("acceleration"):  # the local device's probe, done by its first measurement
        console.print(Text(_delegation(raws[0][0]["acceleration"])))


def _delegation(acceleration: dict[str, Any]) -> str:
    """The local probe's answer in a line: how many of the model's nodes XNNPACK took."""
    if acceleration.get("error"):
        return f"acceleration: {acceleration['error']}"
    text = (f"XNNPACK took {acceleration.get('delegated_nodes')} of {acceleration.get('nodes')} nodes "
            f"in {acceleration.get('partitions')} partition(s); fully delegated: {acceleration.get('fully_delegated')}")
    return text + (f" ({acceleration['note']})" if acceleration.get("note") else "")


def _measure_settings(**options: Any) -> Any:
    """The latency settings from `bench measure`'s options; a bad value names its option."""
    from pydantic import ValidationError

    from harness.config.schema import LatencySpec

    try:
        return LatencySpec(**options)
    except ValidationError as exc:
        error = exc.errors()[0]
        option = "--" + str(error["loc"][0]).replace("_", "-")
        raise HarnessError(f"{option}: {error['msg'].lower()} (got {error.get('input')!r})") from None


def _tflite_file(model: Path) -> Path:
    """`model`, resolved, if it is a readable file with a TFLite flatbuffer's identifier."""
    from harness.tflite._flatbuffer import check_tflite_file

    check_tflite_file(model)
    return model.resolve()


def _measure_once(target: Any, model: Path, settings: Any, index: int) -> tuple[dict[str, Any], float]:
    """One independent measurement, printed: the device's answer and its median (mean when there is no median)."""
    from harness._latency import latency_stats

    raw = target.measure_latency(model, settings)
    stats = latency_stats(raw)
    typical = stats.get("median") or stats.get("mean")
    if typical is None:
        raise HarnessError(f"{model}: the device reported neither a median nor a mean latency")
    generation = raw.get("generation")  # a generative model: a sample is a run's mean decode step
    unit = (f" per decode step ({generation['prefill_tokens']}-token prefill, {generation['decode_tokens']} decode "
            "steps a run)") if generation else ""
    console.print(f"run {index + 1}: median {typical:.3f} ms{unit}, p90 {stats.get('p90') or float('nan'):.3f}, "
                  f"std {stats.get('std') or float('nan'):.3f}, n={stats.get('count')}")
    return raw, typical


@app.command("parse-log")
def parse_log(
    file: Annotated[Path, typer.Argument(help="a benchmark_model output log")],
    as_json: Annotated[bool, typer.Option("--json", help="print the whole record as JSON", show_default="off")] = False,
) -> None:
    """Parse a benchmark_model log (any version's format) into timings, memory, delegates, op profile."""
    import json

    from harness.devices.android.benchmark_log import parse_benchmark_log

    try:
        text = file.read_text(errors="replace")
    except OSError as exc:
        raise HarnessError(f"cannot read {file}: {exc.strerror}") from None
    record = parse_benchmark_log(text).to_dict()
    if as_json:
        print(json.dumps(record, indent=2))
        return
    timings = record["timings"]
    console.print(f"{file}: avg {timings['avg']} ms, std {timings['std']}, min {timings['min']}, "
                  f"max {timings['max']}, count {timings['count']}; init {timings['init']} ms, "
                  f"first {timings['first']} ms, warm-up avg {timings['warmup_avg']} ms", highlight=False)
    memory = record["memory"]
    if memory.get("overall_mb") is not None:
        console.print(f"memory: init {memory['init_mb']} MB, overall {memory['overall_mb']} MB")
    for partition in record["delegates"]["partitions"]:
        console.print(f"delegate {partition['delegate']}: {partition['nodes_replaced']} of "
                      f"{partition['nodes_total']} nodes, {partition['partitions']} partition(s)")
    for failure in record["delegates"]["failures"]:
        console.print(Text.assemble(("delegate failure:", "yellow"), " ", failure), highlight=False)


app.add_typer(devices_app, name="devices")
app.command("report")(cli_reports.report)
app.add_typer(cli_reports.history_app, name="history")
app.command("compare")(cli_reports.compare)
app.command("diagnose")(cli_numerics.diagnose)


def main() -> None:
    """Entry point: config and harness errors print one line and exit 2, without a traceback."""
    try:
        app()
    except HarnessError as exc:
        raise SystemExit(_fail(str(exc)).exit_code) from None
    except KeyboardInterrupt as exc:
        errors.print("interrupted: finished cells are saved; continue with --resume")
        raise SystemExit(getattr(exc, "exit_code", 130)) from None
    except Exception:  # noqa: BLE001 - a harness bug: say so, keep the traceback
        errors.print(Text.assemble(("internal error", "bold red"), " (please report):"))
        traceback.print_exc()
        raise SystemExit(EXIT_CONFIG) from None


if __name__ == "__main__":
    main()
