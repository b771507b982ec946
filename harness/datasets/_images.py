"""Image preprocessing options every image dataset takes, so inputs are what the model expects.

A model with its own `Rescaling(1/255)` wants pixels 0–255 (`range: [0, 255]`), one without
wants 0–1 (the default), MobileNet's preprocessing −1–1 (`range: [-1, 1]`), a torch-style
model `mean`/`std` per channel and `layout: nchw`. Applied in this order to the raw pixels
(0..`pixel_max`: 255 for image files and IDX, 16 for the 8x8 digits, as stored for `.npz`):

1. `image_size: [h, w]`: bilinear resize;
2. `channels: 1|3`: gray repeated to RGB, or RGB averaged to gray;
3. `range: [low, high]` maps 0..pixel_max linearly to low..high, or `scale: s` multiplies
   the raw values by s (give one of the two);
4. `mean` / `std` (one value, or one per channel): `(x - mean) / std`;
5. `layout: nhwc` (default) or `nchw`.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field, field_validator, model_validator

from harness.datasets._base import LoaderOptions
from harness.errors import HarnessError


class ImageOptions(LoaderOptions):
    """The shared preprocessing options (mix into a loader's options)."""

    image_size: tuple[int, int] | None = Field(None, description="[height, width] to resize to (bilinear)")
    channels: Literal[1, 3] | None = Field(None, description="1: gray (RGB averaged), 3: RGB (gray repeated)")
    range: tuple[float, float] | None = Field(None, description="0..pixel_max mapped to [low, high]")
    scale: float | None = Field(None, description="raw values multiplied by this (instead of `range`)")
    mean: tuple[float, ...] | None = Field(None, description="subtracted per channel, after range/scale")
    std: tuple[float, ...] | None = Field(None, description="divides per channel, after mean")
    layout: Literal["nhwc", "nchw"] = "nhwc"

    @field_validator("std")
    @classmethod
    def _no_zero_std(cls, value: tuple[float, ...] | None) -> tuple[float, ...] | None:
        if value is not None and any(v == 0 for v in value):
            raise ValueError("std must not be 0")
        return value

    @model_validator(mode="after")
    def _one_mapping(self) -> ImageOptions:
        if self.range is not None and self.scale is not None:
            raise ValueError("give `range` or `scale`, not both")
        return self


def preprocess(x: np.ndarray, options: ImageOptions, pixel_max: float, name: str,
               default_range: tuple[float, float] | None = (0.0, 1.0)) -> np.ndarray:
    """Raw pixels (N, H, W, C) in 0..pixel_max → the model's input, as `options` ask."""
    x = np.asarray(x, np.float32)
    if x.ndim != 4:
        raise HarnessError(f"dataset {name!r}: image options need (N, H, W, C) images, got shape {x.shape}")
    if options.image_size is not None and tuple(x.shape[1:3]) != tuple(options.image_size):
        x = _resize(x, options.image_size)
    if options.channels is not None:
        x = _channels(x, options.channels)
    x = _values(x, options, pixel_max, default_range)
    x = _normalize(x, options, name)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2) if options.layout == "nchw" else x)


def _resize(x: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    import tensorflow as tf

    return tf.image.resize(x, size, method="bilinear").numpy().astype(np.float32)


def _channels(x: np.ndarray, channels: int) -> np.ndarray:
    if x.shape[-1] == channels:
        return x
    if channels == 3:
        return np.repeat(x[..., :1], 3, axis=-1)
    return x.mean(axis=-1, keepdims=True)


def _values(x: np.ndarray, options: ImageOptions, pixel_max: float,
            default_range: tuple[float, float] | None) -> np.ndarray:
    if options.scale is not None:
        return x * np.float32(options.scale)
    low, high = options.range if options.range is not None else (default_range or (0.0, pixel_max))
    if (low, high) == (0.0, pixel_max):
        return x
    return (x / pixel_max) * (high - low) + low  # as the loaders always computed it: same bytes, same cache keys


def _normalize(x: np.ndarray, options: ImageOptions, name: str) -> np.ndarray:
    for key in ("mean", "std"):
        values = getattr(options, key)
        if values is not None and len(values) not in (1, x.shape[-1]):
            raise HarnessError(f"dataset {name!r}: `{key}` has {len(values)} values; the images have "
                               f"{x.shape[-1]} channels (give 1 or {x.shape[-1]})")
    if options.mean is not None:
        x = x - np.asarray(options.mean, np.float32)
    if options.std is not None:
        x = x / np.asarray(options.std, np.float32)
    return x
