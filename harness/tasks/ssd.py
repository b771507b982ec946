"""SSD-style anchors and box decoding for detectors that output raw regressors per anchor.

Anchors follow the SSD anchor scheme MediaPipe's detector graphs declare (e.g. BlazeFace):
consecutive layers that share a stride share one feature map, and each layer adds one
anchor per aspect ratio plus one at the scale interpolated with the next layer's.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator


class AnchorOptions(BaseModel):
    """SSD anchor generation, as a detector's graph declares it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    input_size: tuple[int, int] = Field(description="model input height, width (pixels)")
    num_layers: int = Field(ge=1)
    strides: list[int] = Field(min_length=1, description="one stride per layer")
    min_scale: float = Field(gt=0)
    max_scale: float = Field(gt=0)
    aspect_ratios: list[float] = Field([1.0], min_length=1)
    interpolated_scale_aspect_ratio: float = Field(
        1.0, ge=0, description="aspect ratio of the extra anchor between this layer's and the next's scale (0: none)")
    offset: tuple[float, float] = Field((0.5, 0.5), description="anchor centre within its cell (x, y)")
    fixed_anchor_size: bool = Field(False, description="every anchor 1 x 1 (the regressors carry the size)")

    @model_validator(mode="after")
    def _one_stride_per_layer(self) -> AnchorOptions:
        if len(self.strides) != self.num_layers:
            raise ValueError(f"`strides` has {len(self.strides)} entries for {self.num_layers} layers")
        return self


def _scale(options: AnchorOptions, layer: int) -> float:
    if options.num_layers == 1:
        return (options.min_scale + options.max_scale) / 2
    return options.min_scale + (options.max_scale - options.min_scale) * layer / (options.num_layers - 1)


def ssd_anchors(options: AnchorOptions) -> np.ndarray:
    """Anchors (K, 4) as normalised (x_centre, y_centre, width, height), in the model's output order."""
    height, width = options.input_size
    groups: list[np.ndarray] = []
    layer = 0
    while layer < options.num_layers:
        stride = options.strides[layer]
        sizes: list[tuple[float, float]] = []
        while layer < options.num_layers and options.strides[layer] == stride:
            scale = _scale(options, layer)
            sizes += [(scale * math.sqrt(r), scale / math.sqrt(r)) for r in options.aspect_ratios]
            if options.interpolated_scale_aspect_ratio > 0:
                after = 1.0 if layer == options.num_layers - 1 else _scale(options, layer + 1)
                mean, ratio = math.sqrt(scale * after), options.interpolated_scale_aspect_ratio
                sizes.append((mean * math.sqrt(ratio), mean / math.sqrt(ratio)))
            layer += 1
        rows, cols = math.ceil(height / stride), math.ceil(width / stride)
        grid_y, grid_x = np.meshgrid((np.arange(rows) + options.offset[1]) / rows,
                                     (np.arange(cols) + options.offset[0]) / cols, indexing="ij")
        wh = np.ones((len(sizes), 2)) if options.fixed_anchor_size else np.asarray(sizes)
        centres = np.stack([grid_x.ravel(), grid_y.ravel()], axis=1)  # row-major cells
        cell = np.repeat(centres, len(sizes), axis=0)  # every size of a cell, then the next cell
        groups.append(np.concatenate([cell, np.tile(wh, (len(centres), 1))], axis=1))
    return np.concatenate(groups).astype(np.float32)


class BoxCoding(BaseModel):
    """How raw regressors encode a box relative to its anchor."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    order: Literal["xywh", "yxhw"] = Field("xywh", description="order of the first four regressor values")
    scale: tuple[float, float, float, float] = Field(
        (10.0, 10.0, 5.0, 5.0), description="divisors of x, y, w, h (the input size for BlazeFace)")
    log_size: bool = Field(False, description="w, h are log-encoded (exp(w/scale) * anchor size)")


def decode_boxes(raw: np.ndarray, anchors: np.ndarray, coding: BoxCoding) -> np.ndarray:
    """Regressors (N, K, >=4) → normalised boxes (N, K, 4) as (x_min, y_min, x_max, y_max)."""
    values = raw[..., :4].astype(np.float64)
    if coding.order == "yxhw":
        values = values[..., [1, 0, 3, 2]]
    values = values / np.asarray(coding.scale)
    size = np.exp(values[..., 2:4]) if coding.log_size else values[..., 2:4]
    centre = values[..., 0:2] * anchors[:, 2:4] + anchors[:, 0:2]
    half = size * anchors[:, 2:4] / 2
    return np.concatenate([centre - half, centre + half], axis=-1)


def decode_scores(raw: np.ndarray, sigmoid: bool, clip: float | None) -> np.ndarray:
    """Raw class scores (N, K, C) → probabilities (logits clipped to ±clip, then a sigmoid)."""
    scores = raw.astype(np.float64)
    if clip is not None:
        scores = np.clip(scores, -clip, clip)
    return 1.0 / (1.0 + np.exp(-scores)) if sigmoid else scores
