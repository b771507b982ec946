"""Images in one sub-folder per class (sorted folder names are the class indices), optionally split.

A split is decided per file by a stable hash of its path relative to the folder (sha256 of the
POSIX path), so a file stays in its split when others are added or removed, on every machine;
or by an explicit list of files.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from harness.cache import ArtifactCache
from harness.datasets._base import DATASETS, Dataset, DatasetLoader
from harness.datasets._images import ImageOptions, preprocess
from harness.errors import HarnessError

_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"}


class _FolderOptions(ImageOptions):
    path: str
    image_size: tuple[int, int] = Field((224, 224), description="every image is resized to [height, width]")
    color: Literal["rgb", "grayscale"] = "rgb"
    split: Literal["all", "train", "test"] = Field("all", description=(
        "all files, or a deterministic split by a stable hash of each file's relative path"))
    test_fraction: float = Field(0.2, gt=0, lt=1, description="with split: the share of files in `test`")
    files: str | None = Field(None, description=(
        "a text file listing the images to take (paths relative to `path`, one a line, # comments)"))

    @model_validator(mode="after")
    def _fraction_needs_a_split(self) -> _FolderOptions:
        if "test_fraction" in self.model_fields_set and self.split == "all":
            raise ValueError("test_fraction applies with split: train or test")
        return self


def hash_fraction(relative: str) -> float:
    """Where a file falls in [0, 1): the first 8 bytes of sha256 of its relative POSIX path."""
    return int.from_bytes(hashlib.sha256(relative.encode()).digest()[:8], "big") / 2.0**64


def in_split(relative: str, options: _FolderOptions) -> bool:
    """Whether the file at `relative` belongs to the split `options` asks for."""
    if options.split == "all":
        return True
    return (hash_fraction(relative) < options.test_fraction) == (options.split == "test")


def listed_files(list_path: Path, root: Path, name: str) -> set[str]:
    """The relative paths a `files:` list names; a line naming no image under `root` is an error."""
    try:
        lines = list_path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise HarnessError(f"dataset {name!r}: files: cannot read {list_path}: {exc}") from None
    chosen = set()
    for number, line in enumerate(lines, 1):
        entry = line.split("#", 1)[0].strip()
        if not entry:
            continue
        relative = Path(entry).as_posix()
        if Path(entry).is_absolute() or ".." in Path(entry).parts or not (root / relative).is_file():
            raise HarnessError(f"{list_path}:{number}: files: {entry!r} is not an image under {root}")
        chosen.add(relative)
    return chosen


def class_files(root: Path, classes: list[str], options: _FolderOptions, name: str,
                base_dir: Path) -> list[tuple[int, str]]:
    """(label, relative path) of every image the options select, in class then file-name order."""
    chosen = listed_files(base_dir / options.files, root, name) if options.files is not None else None
    rows = []
    for label, cls in enumerate(classes):
        for file in sorted((root / cls).iterdir()):
            relative = f"{cls}/{file.name}"
            if file.suffix.lower() not in _SUFFIXES or (chosen is not None and relative not in chosen):
                continue
            if in_split(relative, options):
                rows.append((label, relative))
    return rows


@DATASETS.register("image_folder", "images in <path>/<class>/*.png|jpg, resized, scaled to `range`; "
                   "split: train|test by a stable hash of each file's path, or files: a list")
class ImageFolder(DatasetLoader):
    Options = _FolderOptions
    files = ("path", "files")

    def load(self, name: str, options: _FolderOptions, base_dir: Path, cache: ArtifactCache | None = None) -> Dataset:
        from PIL import Image

        root = base_dir / options.path
        classes = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
        if not classes:
            raise HarnessError(f"dataset {name!r}: no class sub-folders in {root}")
        mode = "RGB" if options.color == "rgb" else "L"
        rows = class_files(root, classes, options, name, base_dir)
        images = []
        for _, relative in rows:
            with Image.open(root / relative) as image:
                resized = image.convert(mode).resize(options.image_size[::-1], Image.Resampling.BILINEAR)
            pixels = np.asarray(resized, dtype=np.float32)
            images.append(pixels if pixels.ndim == 3 else pixels[..., np.newaxis])
        if not images:
            raise HarnessError(f"dataset {name!r}: no images ({', '.join(sorted(_SUFFIXES))}) under {root}"
                               + (f" in split {options.split!r}" if options.split != "all" else ""))
        x = preprocess(np.stack(images), options, 255.0, name)
        ids = tuple(str((root / relative).resolve()) for _, relative in rows)
        return Dataset(name, x, np.asarray([label for label, _ in rows], np.int64), len(classes), str(root), ids=ids)
