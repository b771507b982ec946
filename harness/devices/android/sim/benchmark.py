"""The ADB simulator's `benchmark_model`: benchmarks a pushed .tflite for real with LiteRT on
the host and prints the tool's current log format (parameters, init, warm-up and timed runs,
the inference-timings summary and memory lines). `--use_gpu`, `--use_nnapi` and an explicit
`--use_xnnpack=true` print the delegate lines of `_sim_delegates`. `--input_layer_value_files` and
`--output_filepath` run the model on given inputs and write its outputs (see `_numerics`; a phone spec
may perturb them, or be an old binary that lacks these flags)."""

from __future__ import annotations

import hashlib
import math
import re
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from ai_edge_litert.interpreter import Interpreter, OpResolverType

from harness.devices.android.sim._delegates import delegate_lines
from harness.devices.android.sim._numerics import perturb, split_names, split_shapes, split_value_file
from harness.devices.android.sim.shell import Killed, ShellIO, text_bytes

if TYPE_CHECKING:
    from harness.devices.android.sim.shell import Shell


# name -> (type, default, label in the parameter echo); order is the tool's echo order.
Param = int | float | str | bool  # a flag's value
_BENCH_PARAMS: dict[str, tuple[type, Param, str]] = {
    "num_runs": (int, 50, "Min num runs"),
    "min_secs": (float, 1.0, "Min runs duration (seconds)"),
    "max_secs": (float, 150.0, "Max runs duration (seconds)"),
    "run_delay": (float, -1.0, "Inter-run delay (seconds)"),
    "num_threads": (int, -1, "Num threads"),
    "benchmark_name": (str, "", "Benchmark name"),
    "output_prefix": (str, "", "Output prefix"),
    "warmup_runs": (int, 1, "Min warmup runs"),
    "warmup_min_secs": (float, 0.5, "Min warmup runs duration (seconds)"),
    "verbose": (bool, False, "Log parameter values verbosely"),
    "graph": (str, "", "Graph"),
    "use_xnnpack": (bool, True, "Use xnnpack"),
    "use_gpu": (bool, False, "Use gpu"),
    "use_nnapi": (bool, False, "Use nnapi"),
    "input_layer": (str, "", "Input layers"),
    "input_layer_shape": (str, "", "Input shapes"),
    "input_layer_value_files": (str, "", "Input value files"),
    "output_filepath": (str, "", "File path to export outputs layer as binary data"),
}
# what an old benchmark_model binary (NumericsSpec.old_benchmark) does not know
_IO_FLAGS = ("input_layer", "input_layer_shape", "input_layer_value_files", "output_filepath")


@dataclass(frozen=True)
class _InputLayer:
    """One --input_layer entry: the shape to resize to and the file of values (None: random)."""

    name: str
    shape: list[int]
    path: str | None


def _g(value: float) -> str:
    """C++ ostream's default formatting of a double (like printf %g)."""
    return f"{value:g}"


def _show(value: object) -> str:
    if isinstance(value, bool):
        return str(int(value))
    return _g(value) if isinstance(value, float) else str(value)


def _stat_line(values: list[int]) -> str:
    """The tool's Stat<int64_t> summary line."""
    if not values:
        return "count=0"
    ordered = sorted(values)
    count, low, high = len(values), ordered[0], ordered[-1]
    if low == high:
        text = f"count={count} curr={values[-1]}" + ("(all same)" if count > 1 else "")
    else:
        avg = sum(values) / count
        std = int(math.sqrt(max(sum(v * v for v in values) / count - avg * avg, 0.0)))
        text = (f"count={count} first={values[0]} curr={values[-1]} min={low} max={high} "
                f"avg={_g(avg)} std={std}")
    p5, p50, p95 = (ordered[int(p / 100 * (count - 1))] for p in (5, 50, 95))
    return f"{text} p5={p5} median={p50} p95={p95}"


def _random_input(rng: np.random.Generator, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """Random input data with the value ranges the real tool uses per type."""
    if np.issubdtype(dtype, np.floating):
        return rng.uniform(-0.5, 0.5, shape).astype(dtype)
    if dtype == np.int8:
        return rng.integers(-127, 128, shape).astype(dtype)
    if dtype == np.uint8:
        return rng.integers(0, 255, shape).astype(dtype)
    if dtype == np.bool_:
        return rng.integers(0, 2, shape).astype(bool)
    if np.issubdtype(dtype, np.integer):
        return rng.integers(0, 100, shape).astype(dtype)
    return np.zeros(shape, dtype)


def _max_rss_kb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _now_us() -> int:
    return time.perf_counter_ns() // 1000


SLOWDOWN = re.compile(rb"quantbench-sim-slowdown=([0-9]+(?:\.[0-9]+)?)")


def slowdown_of(binary: Path | None) -> float:
    """How much slower this "binary" runs every inference: a file holding the bytes
    `quantbench-sim-slowdown=1.3` imitates a build with slower kernels (default 1)."""
    try:
        found = SLOWDOWN.search(binary.read_bytes()[:65536]) if binary is not None else None
    except OSError:
        return 1.0
    return max(1.0, float(found.group(1))) if found else 1.0


def _stretch(start_us: int, factor: float) -> None:
    """Busy-wait so the inference begun at `start_us` takes `factor` times as long (as slower
    kernels would: the core stays busy)."""
    if factor > 1.0:
        deadline = start_us + (_now_us() - start_us) * factor
        while _now_us() < deadline:
            pass


class BenchmarkModel:
    """TFLite's benchmark_model, run on the host with LiteRT, logging in the tool's format."""

    def __init__(self, shell: Shell, io: ShellIO, binary: Path | None = None) -> None:
        self.shell, self.io = shell, io
        self.device, self.session = shell.device, shell.session
        self.slowdown = slowdown_of(binary)

    def info(self, text: str) -> None:
        """An INFO line on stdout, as TFLITE_LOG(INFO) prints it."""
        self.io.out(text_bytes(f"INFO: {text}\n"))

    def fail(self, text: str) -> int:
        """ERROR lines on stderr and the tool's failure exit status."""
        self.io.err(text_bytes(f"ERROR: {text}\nERROR: Benchmarking failed.\n"))
        return 1

    def run(self, args: list[str]) -> int:
        """Run the benchmark for `args` (the tool's --flag=value arguments)."""
        self.info("STARTING!")
        params: dict[str, Param] = {name: spec[1] for name, spec in _BENCH_PARAMS.items()}
        given: set[str] = set()
        known = set(_BENCH_PARAMS) - (set(_IO_FLAGS) if self.device.numerics.old_benchmark else set())
        for arg in args:
            name, sep, value = arg.lstrip("-").partition("=")
            if not arg.startswith("-") or not sep or name not in known:
                continue  # the real tool leaves unknown arguments alone
            kind = _BENCH_PARAMS[name][0]
            try:
                params[name] = value in ("true", "1") if kind is bool else kind(value)
            except ValueError:
                return self.fail(f"Invalid value for --{name}: {value}")
            given.add(name)
        self._log_params(params, given)
        graph = str(params["graph"])
        if not graph:
            return self.fail("Please specify the name of your TF Lite input file with --graph")
        return self._benchmark(graph, params, given)

    def _apply_delegate(self, model: Path, params: dict[str, Param], given: set[str]) -> int:
        """Print what an explicitly asked delegate does (see _sim_delegates); the exit status if it fails."""
        asked = [name for name in ("gpu", "nnapi", "xnnpack")
                 if params[f"use_{name}"] and (name != "xnnpack" or "use_xnnpack" in given)]
        if not asked:
            return 0
        lines, fails = delegate_lines(model, asked[0])
        for line in lines[:-1] if fails else lines:
            self.io.out(text_bytes(f"{line}\n"))
        return self.fail(lines[-1].removeprefix("ERROR: ")) if fails else 0

    def _input_layers(self, params: dict[str, Param]) -> list[_InputLayer]:
        """--input_layer, --input_layer_shape and --input_layer_value_files, checked as the tool does."""
        names, shapes_text = split_names(str(params["input_layer"])), str(params["input_layer_shape"])
        shapes = split_shapes(shapes_text)
        if len(names) != len(shapes):
            raise ValueError(f"The number of items in --input_layer_shape ({shapes_text}, with {len(shapes)} "
                             f"items) must match the number of items in --input_layer ({params['input_layer']}, "
                             f"with {len(names)} items).")
        if any(d == -1 for shape in shapes for d in shape):
            raise ValueError("Any unknown sizes in the shapes (-1's) must be replaced with the size you want "
                             "to benchmark with.")
        files: dict[str, str] = {}
        for item in split_names(str(params["input_layer_value_files"])):
            name, path = split_value_file(item)
            if name not in names:
                raise ValueError(f"Cannot find the corresponding input_layer name({name}) in --input_layer as "
                                 f"{params['input_layer']}")
            files[name] = path
        return [_InputLayer(name, shape, files.get(name)) for name, shape in zip(names, shapes)]

    def _file_inputs(self, inputs: list[tuple[int, np.ndarray]], layers: list[_InputLayer],
                     details: list[dict]) -> list[tuple[int, np.ndarray]]:
        """The random inputs with those that --input_layer_value_files names read from their files."""
        if layers and len(layers) != len(details):
            raise ValueError(f"Inputs mismatch: Model inputs #:{len(layers)} expected: {len(details)}")
        result = list(inputs)
        for position, (layer, detail) in enumerate(zip(layers, details)):
            if layer.path is None:
                continue
            try:
                data = self.shell.fs.host_path(layer.path, self.shell.cwd).read_bytes()
            except OSError:
                raise ValueError(f"Failed to read the input_layer_value_file:{layer.path}") from None
            dtype, shape = np.dtype(detail["dtype"]), tuple(detail["shape"])
            expected = int(np.prod(shape)) * dtype.itemsize
            if len(data) != expected:
                raise ValueError(f"The size of {layer.path} is {len(data)} bytes. It should be {expected} bytes.")
            result[position] = (detail["index"], np.frombuffer(data, dtype.newbyteorder("<")).astype(dtype)
                                .reshape(shape))
        return result

    def _save_outputs(self, interpreter: Interpreter, path: str) -> None:
        """Every output tensor's raw bytes, in order, as the perturbed (or honest) phone computed them."""
        tensors = [interpreter.get_tensor(d["index"]) for d in interpreter.get_output_details()]
        # the same outputs get the same noise: a simulated phone is reproducible
        digest = hashlib.sha256(b"".join(t.tobytes() for t in tensors)).digest()
        rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
        spec = self.device.numerics.perturb_outputs
        data = b"".join(np.ascontiguousarray(perturb(tensor, spec, rng)).astype(tensor.dtype.newbyteorder("<"))
                        .tobytes() for tensor in tensors)
        try:
            self.shell.fs.host_path(path, self.shell.cwd).write_bytes(data)
        except OSError:
            pass  # the tool writes nothing when the file cannot be opened

    def _log_params(self, params: dict[str, Param], given: set[str]) -> None:
        verbose = bool(params["verbose"])
        self.info(f"{_BENCH_PARAMS['verbose'][2]}: [{int(verbose)}]")
        for name, (_, _, label) in _BENCH_PARAMS.items():
            if name == "verbose" or not (verbose or name in given or name == "graph"):
                continue
            self.info(f"{label}: [{_show(params[name])}]")
            if name == "graph":
                self.info("Signature to run: []")
                if verbose or "num_threads" in given:
                    self.info(f"#threads used for CPU inference: [{params['num_threads']}]")

    def _benchmark(self, graph: str, params: dict[str, Param], given: set[str]) -> int:
        try:
            model = self.shell.fs.host_path(graph, self.shell.cwd)
            size_mb = model.stat().st_size / 1e6
        except OSError:
            return self.fail(f"Failed to mmap model {graph}")
        start_rss, start_us = _max_rss_kb(), _now_us()
        resolver = OpResolverType.AUTO if params["use_xnnpack"] else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        threads = int(params["num_threads"])
        try:
            interpreter = Interpreter(model_path=str(model), num_threads=threads if threads > 0 else None,
                                      experimental_op_resolver_type=resolver)
        except (ValueError, RuntimeError):
            return self.fail(f"Failed to mmap model {graph}")
        self.info(f"Loaded model {graph}")
        try:
            layers = self._input_layers(params)
        except ValueError as exc:
            return self.fail(str(exc))
        for layer, detail in zip(layers, interpreter.get_input_details()):
            interpreter.resize_tensor_input(detail["index"], layer.shape, strict=False)
        failed = self._apply_delegate(model, params, given)
        if failed:
            return failed
        try:
            interpreter.allocate_tensors()
        except RuntimeError:
            return self.fail("Failed to allocate tensors!")
        init_us, init_rss = _now_us() - start_us, _max_rss_kb()
        self.info(f"The input model file size (MB): {_g(size_mb)}")
        self.info(f"Initialized session in {_g(init_us / 1e3)}ms.")
        if self.device.hang_benchmark or 0 < self.device.hang_benchmark_from <= len(self.device.taskset_log):
            self._wait_until_killed()
        rng = np.random.default_rng()
        inputs = [(d["index"], _random_input(rng, tuple(d["shape"]), d["dtype"]))
                  for d in interpreter.get_input_details()]
        try:
            inputs = self._file_inputs(inputs, layers, interpreter.get_input_details())
        except ValueError as exc:
            return self.fail(str(exc))

        def invoke() -> None:
            for index, data in inputs:
                interpreter.set_tensor(index, data)
            interpreter.invoke()

        max_secs, delay = float(params["max_secs"]), float(params["run_delay"])
        warmup = self._runs(invoke, int(params["warmup_runs"]), float(params["warmup_min_secs"]), max_secs, delay)
        if self.device.drop_during_benchmark:
            self.session.drop_connection()
            self._wait_until_killed()
        timings = self._runs(invoke, int(params["num_runs"]), float(params["min_secs"]), max_secs, delay)
        overall_rss = _max_rss_kb()
        if params["output_filepath"]:
            self._save_outputs(interpreter, str(params["output_filepath"]))
        warmup_avg = sum(warmup) / len(warmup) if warmup else math.nan
        self.info(f"Inference timings in us: Init: {init_us}, First inference: {warmup[0] if warmup else 0}, "
                  f"Warmup (avg): {_g(warmup_avg)}, Inference (avg): {_g(sum(timings) / max(len(timings), 1))}")
        self.info("Note: as the benchmark tool itself affects memory footprint, the following is only "
                  "APPROXIMATE to the actual memory footprint of the model at runtime. Take the "
                  "information at your discretion.")
        self.info(f"Memory footprint delta from the start of the tool (MB): "
                  f"init={_g((init_rss - start_rss) / 1024)} overall={_g((overall_rss - start_rss) / 1024)}")
        return 0

    def _runs(self, invoke: Callable[[], None], min_runs: int, min_secs: float, max_secs: float,
              delay: float) -> list[int]:
        """One timed phase, with the tool's stopping rule; prints its header and Stat line."""
        self.info(f"Running benchmark for at least {min_runs} iterations and at least {_g(min_secs)} "
                  f"seconds but terminate if exceeding {_g(max_secs)} seconds.")
        now = _now_us()
        min_finish, max_finish = now + int(min_secs * 1e6), now + int(max_secs * 1e6)
        timings: list[int] = []
        while (len(timings) < min_runs or now < min_finish) and now <= max_finish:
            if self.session.cancelled.is_set():
                raise Killed
            start = _now_us()
            invoke()
            _stretch(start, self.slowdown)
            timings.append(_now_us() - start)
            if delay > 0 and self.session.cancelled.wait(delay):
                raise Killed
            now = _now_us()
        self.info(_stat_line(timings) + "\n")
        return timings

    def _wait_until_killed(self) -> None:
        """Block like a hung process until the command is cancelled."""
        self.session.cancelled.wait()
        raise Killed
