"""scikit-learn's bundled 8x8 handwritten digits, split deterministically."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field

from harness.cache import ArtifactCache
from harness.datasets._base import DATASETS, Dataset, DatasetLoader
from harness.datasets._images import ImageOptions, preprocess


class _DigitsOptions(ImageOptions):
    split: Literal["train", "test"] = "test"
    test_fraction: float = Field(0.25, gt=0, lt=1)
    seed: int = 0


@DATASETS.register("digits", "scikit-learn 8x8 digits (1,797 images), seeded train/test split")
class Digits(DatasetLoader):
    Options = _DigitsOptions

    def load(self, name: str, options: _DigitsOptions, base_dir: Path, cache: ArtifactCache | None = None) -> Dataset:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

        bunch = load_digits()
        x = preprocess(bunch.images[..., np.newaxis], options, 16.0, name)  # 17 gray levels, 0..16
        x_train, x_test, y_train, y_test = train_test_split(
            x, bunch.target.astype(np.int64), test_size=options.test_fraction,
            random_state=options.seed, stratify=bunch.target,
        )
        x, y = (x_train, y_train) if options.split == "train" else (x_test, y_test)
        return Dataset(name, x, y, 10, f"sklearn digits ({options.split})")
