"""Images in one sub-folder per class (sorted folder names are the class indices)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field

from harness.cache import ArtifactCache
from harness.datasets._base import DATASETS, Dataset, LoaderOptions
from harness.errors import HarnessError

_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"}


class _FolderOptions(LoaderOptions):
    path: str
    image_size: tuple[int, int] = (224, 224)
    color: Literal["rgb", "grayscale"] = "rgb"
    range: tuple[float, float] = Field((0.0, 1.0), description="pixel values are mapped to this range")


@DATASETS.register("image_folder", "images in <path>/<class>/*.png|jpg, resized, scaled to `range`")
class ImageFolder:
    Options = _FolderOptions

    def load(self, name: str, options: _FolderOptions, base_dir: Path, cache: ArtifactCache | None = None) -> Dataset:
        from PIL import Image

        root = base_dir / options.path
        classes = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
        if not classes:
            raise HarnessError(f"dataset {name!r}: no class sub-folders in {root}")
        low, high = options.range
        mode = "RGB" if options.color == "rgb" else "L"
        images, labels = [], []
        for label, cls in enumerate(classes):
            for file in sorted((root / cls).iterdir()):
                if file.suffix.lower() not in _SUFFIXES:
                    continue
                with Image.open(file) as image:
                    resized = image.convert(mode).resize(options.image_size[::-1], Image.BILINEAR)
                pixels = np.asarray(resized, dtype=np.float32) / 255.0
                images.append(pixels if pixels.ndim == 3 else pixels[..., np.newaxis])
                labels.append(label)
        if not images:
            raise HarnessError(f"dataset {name!r}: no images ({', '.join(sorted(_SUFFIXES))}) under {root}")
        x = np.stack(images) * (high - low) + low
        return Dataset(name, x.astype(np.float32), np.asarray(labels, np.int64), len(classes), str(root))
