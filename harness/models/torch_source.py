"""PyTorch sources (the `torch` extra): a `torch.export` program (`path: model.pt2`) or a module factory
(`torch: {module, factory, input_shape}`), converted to the float .tflite with litert-torch.

A factory's module is exported to a `.pt2` first (cached), so both sources reach the schemes as one
ExportedProgram: the float-.tflite schemes quantize litert-torch's float .tflite (the `.tflite` route),
the PT2E schemes (harness/schemes/pt2e.py) quantize the program in torch. torch is imported only here,
when such a source is used: without the extra a torch source is one error line naming it.
"""

from __future__ import annotations

import importlib.util
import os
import zipfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from harness.cache import ArtifactCache, content_key, file_digest
from harness.config.schema import TorchInput, TorchSpec
from harness.errors import HarnessError
from harness.models.paths import resolve_model_path
from harness.versions import package_versions, tool_versions

EXTRA = "pip install 'quantbench[torch]'"
CONVERTER = "litert-torch"
# The packages that shape a torch source's artifacts: part of their cache keys and of the record.
TORCH_PACKAGES = ("torch", "litert-torch", "torchao", "ai-edge-quantizer", "litert-converter")


def torch_versions() -> dict[str, str]:
    """Installed versions of the torch conversion stack ("absent" when a package is not installed)."""
    return package_versions(TORCH_PACKAGES)


def torch_modules() -> tuple[ModuleType, ModuleType]:
    """(torch, litert_torch), or one HarnessError line naming the extra when they are not installed."""
    os.environ.setdefault("LITERT_TORCH_SHOW_PROGRESS", "n")  # its progress lines would mix with the run's
    try:
        import torch  # noqa: I001 - torch first: its absence is the one to name
        import litert_torch
    except ImportError as exc:
        missing = exc.name or "torch"
        raise HarnessError(f"a torch model needs the `torch` extra ({missing} is not installed): {EXTRA}") from None
    return torch, litert_torch


def check_program_file(path: Path) -> None:
    """A `.pt2` file is a zip archive (what `torch.export.save` writes)."""
    if not path.is_file():
        raise HarnessError(f"{path}: no such model file")
    if not zipfile.is_zipfile(path):
        raise HarnessError(f"{path}: not a torch.export program (.pt2 is a zip archive written by torch.export.save)")


def _load_factory_module(file: Path) -> ModuleType:
    """The user's module file, imported under a name of its own (not on sys.path)."""
    if not file.is_file():
        raise HarnessError(f"torch.module: {file} does not exist")
    # named after the file (not registered in sys.modules): torch's op names, which `bench diagnose` shows and
    # `float_layers` matches, begin with it
    name = file.stem if file.stem.isidentifier() else "torch_model"
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:
        raise HarnessError(f"torch.module: {file} is not a Python file")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def factory_model(spec: TorchSpec, base_dir: Path) -> Any:
    """The factory's nn.Module, in eval mode."""
    torch, _ = torch_modules()
    file = resolve_model_path(spec.module, base_dir)
    factory = getattr(_load_factory_module(file), spec.factory, None)
    if not callable(factory):
        raise HarnessError(f"torch.factory: {file} defines no function {spec.factory!r}")
    model = factory()
    if not isinstance(model, torch.nn.Module):
        raise HarnessError(f"torch.factory: {spec.factory}() returned a {type(model).__name__}, not a torch.nn.Module")
    return model.eval()


def example_inputs(spec: TorchSpec) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """(args, kwargs) of zeros in the declared shapes and dtypes, as torch.export traces with."""
    torch, _ = torch_modules()

    def tensor(item: TorchInput) -> Any:
        return torch.zeros(item.shape, dtype=getattr(torch, item.dtype))

    inputs = spec.inputs
    return (tuple(tensor(item) for name, item in inputs if name is None),
            {name: tensor(item) for name, item in inputs if name is not None})


def program_file(spec_path: str | None, torch_spec: TorchSpec | None, base_dir: Path, cache: ArtifactCache) -> Path:
    """The `.pt2` of a torch source: the file given, or the factory's model exported (cached by the module
    file's content, the factory, the inputs and the torch versions)."""
    if spec_path is not None:
        path = resolve_model_path(spec_path, base_dir)
        check_program_file(path)
        return path
    assert torch_spec is not None
    module_file = resolve_model_path(torch_spec.module, base_dir)
    if not module_file.is_file():
        raise HarnessError(f"torch.module: {module_file} does not exist")
    key = content_key(kind="torch-program", module=file_digest(module_file), factory=torch_spec.factory,
                      inputs=torch_spec.model_dump(mode="json")["input_shape"], torch=torch_versions(),
                      versions=tool_versions())

    def export(target: Path) -> None:
        torch, _ = torch_modules()
        torch.manual_seed(0)  # a factory that initializes or trains at random does so the same way every time
        args, kwargs = example_inputs(torch_spec)
        program = torch.export.export(factory_model(torch_spec, base_dir), args, kwargs=kwargs)
        torch.export.save(program, str(target))

    path, _ = cache.get_or_create("torch_programs", key, ".pt2", export)
    return path


def load_program(path: Path) -> Any:
    """The ExportedProgram of a `.pt2` file (one error line when torch cannot read it)."""
    torch, _ = torch_modules()
    try:
        return torch.export.load(str(path))
    except Exception as exc:  # noqa: BLE001 - torch raises many kinds for a damaged or foreign file
        raise HarnessError(f"{path}: torch.export.load cannot read it ({type(exc).__name__}: {exc})") from None


def program_inputs(program: Any, path: Path) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The program's example (args, kwargs): those it was exported with."""
    example = getattr(program, "example_inputs", None)
    if example is None:
        raise HarnessError(f"{path}: the program holds no example inputs (export it with torch.export.export "
                           "and save it with torch.export.save, torch >= 2.5)")
    args, kwargs = example
    return tuple(args), dict(kwargs)


def float_tflite(program: Path, cache: ArtifactCache) -> tuple[Path, str]:
    """litert-torch's float .tflite of a program (cached by the program's content and every converter
    version) and that cache key (the source's digest)."""
    key = content_key(kind="torch-float-tflite", program=file_digest(program), torch=torch_versions(),
                      versions=tool_versions())

    def convert(target: Path) -> None:
        _, litert_torch = torch_modules()
        loaded = load_program(program)
        args, kwargs = program_inputs(loaded, program)
        litert_torch.convert(loaded.module(), args, kwargs).export(str(target))

    path, _ = cache.get_or_create("torch_tflite", key, ".tflite", convert)
    return path, key


def source_info(program: Path) -> dict[str, Any]:
    """What the record says about a torch source: its program and the converter and versions that made the
    float .tflite (and, for PT2E schemes, the quantized one)."""
    return {"framework": "torch", "program": str(program), "converter": CONVERTER, "versions": torch_versions()}


# --- running the program on a dataset's samples (conversion check, PT2E calibration) ---

def _input_slots(args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[tuple[int | str, Any]]:
    """(position or keyword, example tensor) of each input, in the order litert-torch names the .tflite's
    inputs: `args_0`, `args_1`, ..., then the keyword names."""
    return [*((i, a) for i, a in enumerate(args)), *kwargs.items()]


def slot_name(slot: int | str) -> str:
    """The .tflite signature input name litert-torch gives an input."""
    return f"args_{slot}" if isinstance(slot, int) else slot


def torch_batches(program: Any, path: Path, arrays: dict[str, np.ndarray]) -> Iterator[tuple[int, tuple, dict]]:
    """(samples in this batch, args, kwargs) over the samples, one batch of the program's example batch size
    at a time (the last one padded with its first sample; callers keep only `count` rows)."""
    torch, _ = torch_modules()
    slots = _input_slots(*program_inputs(program, path))
    missing = [slot_name(s) for s, _ in slots if slot_name(s) not in arrays]
    if missing:
        raise HarnessError(f"{path.name}: no samples for input(s) {missing} (the samples have {sorted(arrays)})")
    batch = int(slots[0][1].shape[0]) if slots and slots[0][1].dim() else 1
    total = len(next(iter(arrays.values())))
    for start in range(0, total, batch):
        count = min(batch, total - start)
        feeds = {}
        for slot, example in slots:
            rows = arrays[slot_name(slot)][start : start + count]
            if count < batch:
                rows = np.concatenate([rows, np.repeat(rows[:1], batch - count, axis=0)])
            feeds[slot] = torch.from_numpy(np.ascontiguousarray(rows.reshape(tuple(example.shape)))).to(example.dtype)
        yield count, tuple(feeds[s] for s, _ in slots if isinstance(s, int)), {
            s: feeds[s] for s, _ in slots if isinstance(s, str)}


def output_names(outputs: Any) -> list[tuple[str, Any]]:
    """(.tflite signature name, tensor) of each output leaf as litert-torch names them: a dict's keys,
    else `output_0`, `output_1`, ... in flattening order."""
    import torch.utils._pytree as pytree

    leaves, _ = pytree.tree_flatten_with_path(outputs)
    named = []
    for index, (keypath, leaf) in enumerate(leaves):
        last = keypath[-1] if keypath else None
        key = getattr(last, "key", None)
        named.append((str(key) if isinstance(key, str) else f"output_{index}", leaf))
    return named


def program_outputs(path: Path, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every output of the program on the samples ({input name: (N, ...)}), by .tflite output name."""
    torch, _ = torch_modules()
    program = load_program(path)
    module = program.module()
    collected: dict[str, list[np.ndarray]] = {}
    with torch.no_grad():
        for count, args, kwargs in torch_batches(program, path, arrays):
            for name, tensor in output_names(module(*args, **kwargs)):
                collected.setdefault(name, []).append(tensor.detach().float().numpy()[:count])
    return {name: np.concatenate(parts) for name, parts in collected.items()}

