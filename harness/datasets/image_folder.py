"""Images in one sub-folder per class (sorted folder names are the class indices)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field

from harness.cache import ArtifactCache
from harness.datasets._base import DATASETS, Dataset
from harness.datasets._images import ImageOptions, preprocess
from harness.errors import HarnessError

_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"}


class _FolderOptions(ImageOptions):
    path: str
    image_size: tuple[int, int] = Field((224, 224), description="every image is resized to [height, width]")
    color: Literal["rgb", "grayscale"] = "rgb"


@DATASETS.register("image_folder", "images in <path>/<class>/*.png|jpg, resized, scaled to `range`")
class ImageFolder:
    Options = _FolderOptions

    def load(self, name: str, options: _FolderOptions, base_dir: Path, cache: ArtifactCache | None = None) -> Dataset:
        from PIL import Image

        root = base_dir / options.path
        classes = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
        if not classes:
            raise HarnessError(f"dataset {name!r}: no class sub-folders in {root}")
        mode = "RGB" if options.color == "rgb" else "L"
        images, labels = [], []
        for label, cls in enumerate(classes):
            for file in sorted((root / cls).iterdir()):
                if file.suffix.lower() not in _SUFFIXES:
                    continue
                with Image.open(file) as image:
                    resized = image.convert(mode).resize(options.image_size[::-1], Image.Resampling.BILINEAR)
                pixels = np.asarray(resized, dtype=np.float32)
                images.append(pixels if pixels.ndim == 3 else pixels[..., np.newaxis])
                labels.append(label)
        if not images:
            raise HarnessError(f"dataset {name!r}: no images ({', '.join(sorted(_SUFFIXES))}) under {root}")
        x = preprocess(np.stack(images), options, 255.0, name)
        return Dataset(name, x, np.asarray(labels, np.int64), len(classes), str(root))
