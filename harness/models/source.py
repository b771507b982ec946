"""Resolve a suite's model entry to a float source artifact (built, trained and cached if needed; a torch
source converted to its float .tflite: harness/models/torch_source.py)."""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from harness.cache import ArtifactCache, content_key, file_digest
from harness.config.schema import ModelSpec
from harness.datasets import Dataset
from harness.errors import HarnessError
from harness.models import determinism
from harness.models._base import BUILDERS
from harness.models.paths import resolve_model_path
from harness.tflite._flatbuffer import check_tflite_file
from harness.tflite.normalize import normalized_tflite
from harness.versions import tool_versions

SourceFormat = Literal["keras", "saved_model", "tflite", "torch"]
FLOAT_TFLITE_FORMATS = ("tflite", "torch")  # sources whose `path` is a float .tflite (torch: litert-torch's)


@dataclass(frozen=True)
class SourceModel:
    """The float model every scheme starts from."""

    name: str
    format: SourceFormat
    path: Path
    digest: str
    info: dict[str, Any] = field(default_factory=dict)
    program: Path | None = None  # a torch source's ExportedProgram (.pt2); `path` is then its float .tflite

    @property
    def float_tflite(self) -> bool:
        """Whether `path` is a float .tflite the schemes quantize (a .tflite file, or a torch model's
        conversion), rather than a Keras model or SavedModel TFLiteConverter converts."""
        return self.format in FLOAT_TFLITE_FORMATS


def detect_format(path: Path) -> SourceFormat:
    """Tell a model file's format from its name / layout."""
    if path.is_dir():
        if (path / "saved_model.pb").exists():
            return "saved_model"
        raise HarnessError(f"{path} is a directory without saved_model.pb (not a SavedModel)")
    suffix = path.suffix.lower()
    if suffix == ".tflite":
        return "tflite"
    if suffix in (".keras", ".h5", ".hdf5"):
        return "keras"
    if suffix == ".pt2":
        return "torch"
    raise HarnessError(f"{path}: unknown model format (expected .keras, .h5, .tflite, .pt2 or a SavedModel dir)")


def check_keras_file(path: Path) -> None:
    """A `.keras` file is a zip archive holding config.json with intact members; a `.h5`/`.hdf5`
    file is HDF5. Keras itself reports a damaged `.keras` as "File not found"."""
    if not path.is_file():
        raise HarnessError(f"{path}: no such model file")
    if path.suffix.lower() != ".keras":
        if not _is_hdf5(path):
            raise HarnessError(f"{path}: not a valid Keras HDF5 file (.h5)")
        return
    problem = _keras_archive_problem(path)
    if problem:
        raise HarnessError(f"{path}: not a valid Keras archive (.keras): {problem}")


def _keras_archive_problem(path: Path) -> str | None:
    """What is wrong with a .keras archive, or None."""
    try:
        with zipfile.ZipFile(path) as archive:
            if "config.json" not in archive.namelist():
                return "it holds no config.json"
            damaged = archive.testzip()
    except zipfile.BadZipFile as exc:
        return f"not a zip file ({exc})" if str(exc) != "File is not a zip file" else "not a zip file"
    except OSError as exc:
        return f"cannot read it ({exc.strerror or exc})"
    return f"member {damaged!r} is damaged (CRC mismatch)" if damaged else None


def _is_hdf5(path: Path) -> bool:
    import h5py

    try:
        return bool(h5py.is_hdf5(path))
    except OSError:
        return False


def resolve_source(
    spec: ModelSpec,
    builder_options: BaseModel | None,
    base_dir: Path,
    cache: ArtifactCache,
    train_data: Dataset | None,
    prefill: int | None = None,
) -> SourceModel:
    """The float source of a model entry (built and trained on the first use, then cached); a generative
    entry's is exported with a prefill signature of `prefill` tokens (the generation task's)."""
    if spec.generative is not None:
        from harness.models.generative import DEFAULT_PREFILL, generative_source

        path, made = generative_source(spec.generative, prefill or DEFAULT_PREFILL, base_dir, cache)
        return SourceModel(spec.label, "tflite", path, file_digest(path), made)
    if spec.torch is not None or (spec.path is not None and spec.path.lower().endswith(".pt2")):
        return torch_source(spec, base_dir, cache)
    if spec.path is not None:
        path = resolve_model_path(spec.path, base_dir)
        model_format = detect_format(path)
        info: dict[str, Any] = {}
        if model_format == "tflite":  # old-style files are rewritten so the quantizer can work on them
            check_tflite_file(path)
            path, info = normalized_tflite(path, cache, spec.baseline)
        if model_format == "keras":
            check_keras_file(path)
        return SourceModel(spec.label, model_format, path, file_digest(path), info)
    assert spec.builder is not None and builder_options is not None
    builder_name = spec.builder
    versions = tool_versions()
    key = content_key(
        kind="keras-source", builder=spec.builder, options=builder_options.model_dump(mode="json"),
        train=spec.train.model_dump() if spec.train else None,
        train_data=train_data.fingerprint if train_data else None,
        tensorflow=versions["tensorflow"], keras=versions["keras"], determinism=determinism.settings(),
    )
    info = {}

    def build(target: Path) -> None:
        import keras

        determinism.seed_everything(spec.train.seed if spec.train else 0, keras)  # initial weights too
        builder = BUILDERS.get(builder_name)
        model = builder.build(keras, builder_options)
        if spec.train is not None and train_data is not None:
            info["training"] = builder.fit(model, keras, train_data, spec.train, builder_options)
        model.save(target)
        cache.write_json("models", key, info)

    path, _ = cache.get_or_create("models", key, ".keras", build)
    return SourceModel(spec.label, "keras", path, file_digest(path), cache.read_json("models", key) or info)


def torch_source(spec: ModelSpec, base_dir: Path, cache: ArtifactCache) -> SourceModel:
    """A torch model's program (`.pt2`) and litert-torch's float .tflite of it."""
    from harness.models import torch_source as pt

    pt.torch_modules()  # without the extra: one line naming it, before anything is looked up
    program = pt.program_file(spec.path, spec.torch, base_dir, cache)
    path, digest = pt.float_tflite(program, cache)
    return SourceModel(spec.label, "torch", path, digest, pt.source_info(program), program)


def saved_model_dir(source: SourceModel, cache: ArtifactCache) -> Path:
    """A SavedModel for the converter: the source itself, or a cached export of a Keras model."""
    if source.format == "saved_model":
        return source.path
    if source.format != "keras":
        raise HarnessError(f"{source.name}: a {source.format} source has no SavedModel")

    def export(target: Path) -> None:
        import keras

        model = keras.models.load_model(source.path, compile=False)
        model.export(str(target), format="tf_saved_model", verbose=False)

    key = content_key(kind="saved-model", source=source.digest, versions=tool_versions())
    path, _ = cache.get_or_create("saved_models", key, "", export)
    return path

