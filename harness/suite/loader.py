"""Load a suite file: YAML → validated `Suite` → names and options checked against the registries.

Every problem becomes one `ConfigError` naming file, line and field.
"""

from __future__ import annotations

import fnmatch
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from harness.config.schema import CalibrationSpec, FinetuneSpec, ModelSpec, SchemeSpec, Suite, merge_finetune
from harness.config.yaml_lines import Path_, decode_text, load_yaml_with_lines, locate
from harness.datasets import DATASETS
from harness.errors import ConfigError, HarnessError
from harness.models import BUILDERS
from harness.models.paths import resolve_model_path
from harness.registry import Registry, UnknownName
from harness.schemes import SCHEMES
from harness.tasks import TASKS, threshold_metrics


@dataclass(frozen=True)
class LoadedSuite:
    """A validated suite with every implementation's options parsed."""

    path: Path
    suite: Suite
    sha256: str
    dataset_options: dict[str, BaseModel] = field(default_factory=dict)
    builder_options: dict[str, BaseModel] = field(default_factory=dict)
    scheme_options: dict[str, BaseModel] = field(default_factory=dict)
    task_options: dict[str, BaseModel] = field(default_factory=dict)  # by model label

    @property
    def name(self) -> str:
        """The suite's name (its run folder's name): `name:`, else the file name made path-safe."""
        return self.suite.name or re.sub(r"[^A-Za-z0-9_.+-]", "_", self.path.stem).lstrip(".") or "suite"

    @property
    def base_dir(self) -> Path:
        """Relative paths in the suite are relative to the suite file's folder."""
        return self.path.parent

    def calibration_for(self, model: ModelSpec, scheme: SchemeSpec) -> CalibrationSpec | None:
        """The calibration data of a cell: the scheme entry's own, else the model's, else the suite's."""
        return scheme.calibration or model.calibration or self.suite.calibration

    def finetune_for(self, model: ModelSpec, scheme: SchemeSpec) -> FinetuneSpec | None:
        """The fine-tuning budget of a training-time cell: suite, model and scheme `finetune:`
        blocks merged field by field (the most specific wins), the dataset defaulting to the
        model's `train:` dataset; None when no dataset is declared for it."""
        spec = merge_finetune(self.suite.finetune, model.finetune, scheme.finetune)
        if spec.dataset is None and model.train is not None:
            spec = spec.model_copy(update={"dataset": model.train.dataset})
        return spec if spec.dataset is not None else None


class _Checker:
    """Turns validation problems into ConfigErrors with line numbers."""

    def __init__(self, path: Path, lines: dict[Path_, int]) -> None:
        self.path, self.lines = path, lines

    def fail(self, loc: Path_, message: str) -> ConfigError:
        line, field_name = locate(loc, self.lines)
        return ConfigError(str(self.path), line, field_name or None, message)

    def from_validation(self, exc: ValidationError, prefix: Path_ = ()) -> ConfigError:
        error = exc.errors()[0]
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            message = "unknown key"
        elif error["type"] == "missing":
            message = "required field is missing"
        elif "input" in error and error["type"] not in ("value_error", "assertion_error"):
            message = f"{message} (got {error['input']!r})"
        return self.fail((*prefix, *error["loc"]), message.removeprefix("Value error, "))

    def options(self, registry: Registry, name: str, options: dict[str, Any], loc: Path_, name_key: str,
                context: dict[str, Any] | None = None) -> BaseModel:
        try:
            implementation = registry.get(name)
        except UnknownName as exc:
            raise self.fail((*loc, name_key), str(exc)) from None
        try:
            return implementation.Options.model_validate(options, context=context)
        except ValidationError as exc:
            raise self.from_validation(exc, loc) from None

    def known(self, registry: Registry, name: str, loc: Path_) -> None:
        if name not in registry:
            raise self.fail(loc, registry.unknown_message(name))


def load_suite(path: str | Path) -> LoadedSuite:
    """Parse and validate a suite file; raise ConfigError on the first problem."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(str(path), None, None, f"cannot read suite: {exc.strerror}") from None
    data, lines = load_yaml_with_lines(decode_text(raw, str(path)), str(path))
    check = _Checker(path, lines)
    if not isinstance(data, dict):
        raise check.fail((), "a suite must be a mapping with `models`, `schemes`, ...")
    try:
        suite = Suite.model_validate(data)
    except ValidationError as exc:
        raise check.from_validation(exc) from None
    loaded = LoadedSuite(path=path, suite=suite, sha256=hashlib.sha256(raw).hexdigest())
    _check_datasets(suite, check, loaded)
    _check_schemes(suite, check, loaded)
    _check_models(suite, check, loaded)
    _check_finetune(suite, check, loaded)
    _check_thresholds(suite, check)
    _check_devices(suite, check, loaded.base_dir)
    return loaded


def _check_devices(suite: Suite, check: _Checker, base_dir: Path) -> None:
    """Every device has a valid profile (devices/<name>.yaml; its errors name that file) or is
    built in (`local`)."""
    from harness.devices._base import BUILTIN_PROFILES, find_profile, profile_dirs, profile_options

    for index, name in enumerate(suite.devices):
        if name not in BUILTIN_PROFILES and find_profile(name, base_dir) is None:
            looked = ", ".join(str(d) for d in profile_dirs(base_dir))
            raise check.fail(("devices", index), f"no device profile {name!r} (looked for {name}.yaml in {looked})")
        profile_options(name, base_dir)


def _check_datasets(suite: Suite, check: _Checker, loaded: LoadedSuite) -> None:
    for name, spec in suite.datasets.items():
        loaded.dataset_options[name] = check.options(DATASETS, spec.kind, spec.options, ("datasets", name), "kind")
        files = DATASETS.get(spec.kind).files
        _check_dataset_files(loaded.dataset_options[name], files, loaded.base_dir, check, ("datasets", name))


def _check_dataset_files(options: BaseModel, files: tuple[str, ...], base_dir: Path, check: _Checker,
                         loc: Path_) -> None:
    """A dataset's file and folder options (its loader's `files`) name something that exists."""
    for key in files:
        value = getattr(options, key)
        if isinstance(value, str) and not (base_dir / value).exists():
            raise check.fail((*loc, key), f"{base_dir / value} does not exist")


def _dataset_ref(suite: Suite, check: _Checker, name: str, loc: Path_) -> None:
    if name not in suite.datasets:
        known = ", ".join(suite.datasets) or "none declared"
        raise check.fail(loc, f"unknown dataset {name!r} (datasets: {known})")


def _check_models(suite: Suite, check: _Checker, loaded: LoadedSuite) -> None:
    labels: dict[str, int] = {}
    for index, model in enumerate(suite.models):
        loc: Path_ = ("models", index)
        if model.label in labels:
            raise check.fail((*loc, "name"), f"two models are named {model.label!r}; give one a `name:`")
        labels[model.label] = index
        if model.builder is not None:
            loaded.builder_options[model.label] = check.options(BUILDERS, model.builder, model.options, loc, "builder")
        elif model.path is not None:  # the schema asks for a builder, a path, a torch factory or a generative spec
            _check_model_path(model.path, loaded.base_dir, check, (*loc, "path"))
        elif model.torch is not None:
            _check_model_path(model.torch.module, loaded.base_dir, check, (*loc, "torch", "module"))
        else:
            _check_generative(model, loaded.base_dir, check, (*loc, "generative"))
        if model.train is not None:
            _dataset_ref(suite, check, model.train.dataset, (*loc, "train", "dataset"))
        for position, pattern in enumerate(model.schemes or []):
            if not any(fnmatch.fnmatchcase(s.label, pattern) for s in suite.schemes):
                raise check.fail((*loc, "schemes", position), f"{pattern!r} matches none of the suite's schemes")
        _check_task(suite, model, check, loc, loaded)
        _check_calibration(suite, model, check, loc, loaded)


def _check_model_path(path: str, base_dir: Path, check: _Checker, loc: Path_) -> None:
    try:
        file = resolve_model_path(path, base_dir)
    except HarnessError as exc:
        raise check.fail(loc, str(exc)) from None
    if not file.exists():
        raise check.fail(loc, f"model file {file} does not exist")


def _check_generative(model: ModelSpec, base_dir: Path, check: _Checker, loc: Path_) -> None:
    """The torch extra is installed and a `checkpoint` exists."""
    from harness.models.generative import checkpoint_path, require_extra

    assert model.generative is not None
    try:
        checkpoint_path(model.generative, base_dir)
    except HarnessError as exc:
        raise check.fail((*loc, "checkpoint"), str(exc)) from None
    try:
        require_extra()
    except HarnessError as exc:
        raise check.fail(loc, str(exc)) from None


def _check_task(suite: Suite, model: ModelSpec, check: _Checker, loc: Path_, loaded: LoadedSuite) -> None:
    task = model.task or suite.task
    if task is None:
        raise check.fail((*loc, "task"), "no task: give the model a `task:` or the suite a top-level `task:`")
    task_loc = (*loc, "task") if model.task else ("task",)
    loaded.task_options[model.label] = check.options(TASKS, task.kind, task.options, task_loc, "kind",
                                                     {"base_dir": loaded.base_dir})
    runs_model = TASKS.get(task.kind).runs_model
    if model.generative is not None and not runs_model:
        raise check.fail((*task_loc, "kind"), f"a `generative` model needs the generation task, not {task.kind!r}")
    if runs_model and model.builder is not None:
        raise check.fail((*task_loc, "kind"), f"the {task.kind} task runs `generative` models (or their .tflite), "
                         f"not the builder {model.builder!r}")
    prefill, decode = (getattr(loaded.task_options[model.label], key, 0) for key in ("prefill", "decode_tokens"))
    if model.generative is not None and prefill + decode > model.generative.max_tokens:
        raise check.fail((*loc, "generative", "max_tokens"), f"the KV cache of {model.generative.max_tokens} tokens "
                         f"cannot hold the task's prefill {prefill} + decode_tokens {decode} = {prefill + decode}")
    text, tokenizer = (getattr(loaded.task_options[model.label], key, None) for key in ("text", "tokenizer"))
    if text is not None and tokenizer is None and model.generative is not None and model.generative.family != "toy":
        raise check.fail((*task_loc, "tokenizer"), f"text prompts for the {model.generative.family} family need its "
                         "`tokenizer` (a SentencePiece model file); byte-level tokens are the toy family's")
    if task.dataset is not None:
        _dataset_ref(suite, check, task.dataset, (*task_loc, "dataset"))
    elif not runs_model:
        raise check.fail(task_loc, f"the {task.kind} task needs a `dataset`")


def _check_calibration(suite: Suite, model: ModelSpec, check: _Checker, loc: Path_, loaded: LoadedSuite) -> None:
    calibration = model.calibration or suite.calibration
    for spec in suite.schemes:
        applies = model.schemes is None or any(fnmatch.fnmatchcase(spec.label, p) for p in model.schemes)
        needs = SCHEMES.get(spec.scheme).calibrates(loaded.scheme_options[spec.label])
        if applies and spec.calibration is None and calibration is None and needs:
            raise check.fail((*loc, "calibration"), f"scheme {spec.label!r} needs calibration data: "
                             "add `calibration: {dataset: ...}` (suite, model or scheme entry)")
    if calibration is not None:
        calibration_loc = (*loc, "calibration") if model.calibration else ("calibration",)
        _dataset_ref(suite, check, calibration.dataset, (*calibration_loc, "dataset"))


def _check_schemes(suite: Suite, check: _Checker, loaded: LoadedSuite) -> None:
    seen: set[str] = set()
    for index, spec in enumerate(suite.schemes):
        loc: Path_ = ("schemes", index)
        loaded.scheme_options[spec.label] = check.options(SCHEMES, spec.scheme, spec.options, loc, "scheme",
                                                          {"base_dir": loaded.base_dir})
        if spec.label in seen:
            raise check.fail(loc, f"scheme id {spec.label!r} appears twice; give one an `id:`")
        seen.add(spec.label)
        if spec.calibration is not None:
            if not SCHEMES.get(spec.scheme).needs_calibration:
                raise check.fail((*loc, "calibration"), f"scheme {spec.scheme!r} does not calibrate: "
                                 "`calibration` applies to full-integer schemes only")
            _dataset_ref(suite, check, spec.calibration.dataset, (*loc, "calibration", "dataset"))


def _check_finetune(suite: Suite, check: _Checker, loaded: LoadedSuite) -> None:
    """`finetune:` blocks name declared datasets and sit on training-time schemes only; every
    model (but a .tflite file or a torch model, where those schemes are n/a) has fine-tuning data for them."""
    blocks: list[tuple[Path_, FinetuneSpec | None]] = [(("finetune",), suite.finetune)]
    blocks += [(("models", i, "finetune"), m.finetune) for i, m in enumerate(suite.models)]
    blocks += [(("schemes", i, "finetune"), s.finetune) for i, s in enumerate(suite.schemes)]
    for loc, block in blocks:
        if block is not None and block.dataset is not None:
            _dataset_ref(suite, check, block.dataset, (*loc, "dataset"))
    training = [(i, s) for i, s in enumerate(suite.schemes)
                if SCHEMES.get(s.scheme).needs_training]
    trained = {i for i, _ in training}
    for index, spec in enumerate(suite.schemes):
        if spec.finetune is not None and index not in trained:
            raise check.fail(("schemes", index, "finetune"), f"scheme {spec.scheme!r} is post-training: "
                             "`finetune` applies to training-time schemes only")
    for model in suite.models:
        if not model.has_keras_model:
            continue
        for position, spec in training:
            if model.schemes is not None and not any(fnmatch.fnmatchcase(spec.label, p) for p in model.schemes):
                continue
            if loaded.finetune_for(model, spec) is None:
                raise check.fail(("schemes", position), (
                    f"scheme {spec.label!r} fine-tunes the model, and model {model.label!r} has no fine-tuning "
                    "data: give the model a `train:` dataset or a `finetune: {dataset: ...}` block (suite, model "
                    "or scheme)"))


def _check_thresholds(suite: Suite, check: _Checker) -> None:
    known = threshold_metrics()
    blocks: list[tuple[Path_, dict]] = [(("thresholds", "defaults"), suite.thresholds.defaults)]
    for index, override in enumerate(suite.thresholds.overrides):
        blocks.append((("thresholds", "overrides", index), override.__pydantic_extra__ or {}))
    for loc, bounds in blocks:
        for metric in bounds:
            if metric not in known:
                raise check.fail((*loc, metric), f"unknown metric {metric!r} (known: {', '.join(sorted(known))})")

