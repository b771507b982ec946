"""A small convolutional CTC speech recognizer over log-mel frames, with its own CTC training loop.

Class 0 is the CTC blank and class i >= 1 is `alphabet[i - 1]` (the `speech` task's default
layout). By default convolutions only (a strided stem, residual dilated depthwise-separable
blocks, a 1x1 classifier), so every post-training scheme can quantize the whole graph.
`recurrent: lstm | gru` inserts recurrent layers before the classifier (the DeepSpeech shape:
convolutional front, LSTM over time).
"""

from __future__ import annotations

import math
import time
from types import ModuleType
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer

from harness.config.schema import TrainSpec
from harness.datasets import Dataset
from harness.errors import HarnessError
from harness.models._base import BUILDERS, BuilderOptions, ModelBuilder
from harness.models.determinism import seed_everything

DEFAULT_ALPHABET = " abcdefghijklmnopqrstuvwxyz'"
_RECURRENT_FIELDS = ("recurrent", "recurrent_units", "recurrent_layers", "bidirectional")


class AugmentOptions(BaseModel):
    """Training-time augmentation of the feature frames (SpecAugment-style masks, band warping)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    time_masks: int = Field(2, ge=0)
    time_mask_frames: int = Field(20, ge=1, description="longest time mask")
    freq_masks: int = Field(2, ge=0)
    freq_mask_bands: int = Field(6, ge=1, description="widest frequency mask")
    warp: float = Field(0.1, ge=0, lt=0.5, description="stretch the mel axis by up to ±warp (a voice-like change)")


class _SpeechOptions(BuilderOptions):
    frames: int = Field(300, ge=8, description="feature frames per utterance (the dataset's features.frames)")
    n_mels: int = Field(40, ge=1)
    alphabet: str = Field(DEFAULT_ALPHABET, min_length=1)
    width: int = Field(128, ge=8)
    kernel: int = Field(7, ge=1)
    dilations: tuple[int, ...] = Field((1, 2, 4, 1, 2, 4), min_length=1, description="one residual block each")
    stride: int = Field(2, ge=1, le=4, description="time downsampling of the stem")
    augment: AugmentOptions = AugmentOptions()
    recurrent: Literal["none", "lstm", "gru"] = Field(
        "none", description="recurrent layers between the convolutional blocks and the classifier")
    recurrent_units: int = Field(128, ge=1, description="units per recurrent layer (and direction)")
    recurrent_layers: int = Field(1, ge=1)
    bidirectional: bool = Field(False, description="a forward and a backward layer, outputs concatenated")

    @model_serializer(mode="wrap")
    def _without_unused_recurrent(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """The options without the recurrent fields when there are no recurrent layers: the dump
        is the model's cache key, which then stays what it was before these fields existed."""
        data = handler(self)
        if self.recurrent == "none":
            for name in _RECURRENT_FIELDS:
                data.pop(name, None)
        return data


@BUILDERS.register("speech_ctc", "conv CTC recognizer: strided Conv1D stem, residual dilated separable Conv1D "
                   "blocks, optional LSTM/GRU layers, per-frame softmax over blank + alphabet")
class SpeechCtc(ModelBuilder):
    Options = _SpeechOptions

    def build(self, keras: ModuleType, options: _SpeechOptions) -> Any:
        layers = keras.layers
        inputs = keras.Input((options.frames, options.n_mels), name="features")
        x = layers.Conv1D(options.width, 5, strides=options.stride, padding="same", use_bias=False)(inputs)
        x = layers.ReLU()(layers.BatchNormalization()(x))
        for dilation in options.dilations:
            y = layers.SeparableConv1D(options.width, options.kernel, dilation_rate=dilation, padding="same",
                                       use_bias=False)(x)
            y = layers.ReLU()(layers.BatchNormalization()(y))
            x = layers.Add()([x, y])
        for _ in range(options.recurrent_layers if options.recurrent != "none" else 0):
            x = _recurrent_layer(layers, options)(x)
        logits = layers.Conv1D(len(options.alphabet) + 1, 1, name="logits")(x)
        return keras.Model(inputs, layers.Softmax(name="probs")(logits), name="speech_ctc")

    def fit(self, model: Any, keras: ModuleType, dataset: Dataset, spec: TrainSpec,
            options: _SpeechOptions) -> dict[str, Any]:
        """Train with CTC loss over each utterance's own frames, plus blank on the padding frames
        (without the latter, CTC is free to emit the last word deep in the padding, where no
        convolution sees the audio); Adam. Returns the training summary."""
        data = dataset.head(spec.limit)
        if data.y is None:
            raise HarnessError(f"cannot train on dataset {dataset.name!r}: it has no transcripts")
        features = data.x
        if not isinstance(features, np.ndarray):
            raise HarnessError(f"cannot train on dataset {dataset.name!r}: it gives {type(features).__name__} "
                               "samples, not one array of features")
        if features.shape[1:] != (options.frames, options.n_mels):
            raise HarnessError(f"dataset {dataset.name!r} has features {features.shape[1:]}; the model takes "
                               f"({options.frames}, {options.n_mels}): set the builder's frames and n_mels")
        labels = encode_transcripts(data.y, options.alphabet)
        settings = seed_everything(spec.seed, keras)
        rng = np.random.default_rng(spec.seed)
        logit_model = keras.Model(model.inputs, model.get_layer("logits").output)
        out_frames = int(logit_model.output.shape[1])
        lengths = (-(-speech_frames(features) * out_frames // options.frames)).astype(np.int32)  # frames with speech
        learning_rate: Any = spec.learning_rate
        if spec.schedule == "cosine":
            steps = spec.epochs * math.ceil(len(data) / spec.batch_size)
            learning_rate = keras.optimizers.schedules.CosineDecay(spec.learning_rate, steps)
        step = _train_step(logit_model, keras.optimizers.Adam(learning_rate=learning_rate, global_clipnorm=5.0))
        started = time.perf_counter()
        losses: list[float] = []
        for _ in range(spec.epochs):
            order = rng.permutation(len(data))
            epoch = []
            for start in range(0, len(order), spec.batch_size):
                index = np.sort(order[start : start + spec.batch_size])
                x = augment(features[index], options.augment, rng)
                epoch.append(float(step(x, labels[index], lengths[index])))
            losses.append(float(np.mean(epoch)))
        return {
            "dataset": dataset.name, "samples": len(data), "epochs": spec.epochs, "loss": "ctc + blank on padding",
            "epoch_losses": [round(v, 4) for v in losses], "final_loss": losses[-1],
            "seconds": round(time.perf_counter() - started, 1), "determinism": settings,
        }


def _recurrent_layer(layers: ModuleType, options: _SpeechOptions) -> Any:
    """One LSTM or GRU layer returning every step, unrolled over the (static) time axis.

    Unrolled because Keras 3 gives the converter a while loop over a tensor list whose element
    shape holds the dynamic batch, which TFLite cannot lower; unrolled, each step becomes
    FULLY_CONNECTED and element-wise ops that every scheme quantizes like any other op."""
    kind = layers.LSTM if options.recurrent == "lstm" else layers.GRU
    layer = kind(options.recurrent_units, return_sequences=True, unroll=True)
    return layers.Bidirectional(layer) if options.bidirectional else layer


def _train_step(logit_model: Any, optimizer: Any) -> Any:
    """One compiled optimisation step on (features, padded labels, output frames with speech)."""
    import tensorflow as tf

    @tf.function(reduce_retracing=True)
    def step(x: Any, target: Any, length: Any) -> Any:
        with tf.GradientTape() as tape:
            logits = logit_model(x, training=True)
            # sparse labels (the 0 padding dropped) take TF's fast CPU CTC kernel
            ctc = tf.nn.ctc_loss(tf.sparse.from_dense(target), logits, None, length,
                                 logits_time_major=False, blank_index=0)
            padding = tf.sequence_mask(length, tf.shape(logits)[1], dtype=logits.dtype) < 1
            blank = -tf.nn.log_softmax(logits)[:, :, 0]
            loss = tf.reduce_mean(ctc + tf.reduce_sum(tf.where(padding, blank, 0.0), axis=1))
        variables = logit_model.trainable_variables
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss

    return step


def speech_frames(x: np.ndarray) -> np.ndarray:
    """Frames up to each utterance's last non-zero frame (the speech loaders pad with zero frames)."""
    nonzero = np.any(x != 0, axis=2)
    return np.where(nonzero.any(axis=1), x.shape[1] - np.argmax(nonzero[:, ::-1], axis=1), x.shape[1])


def encode_transcripts(texts: np.ndarray, alphabet: str) -> np.ndarray:
    """Class indices (blank 0, `alphabet[i]` → i + 1) of each transcript, padded with 0."""
    index = {char: i + 1 for i, char in enumerate(alphabet)}
    encoded = []
    for number, text in enumerate(texts):
        normal = " ".join(str(text).lower().split())
        unknown = sorted({c for c in normal if c not in index})
        if unknown:
            raise HarnessError(f"transcript {number} ({normal!r}) has characters outside the alphabet: {unknown}")
        encoded.append([index[c] for c in normal])
    labels = np.zeros((len(encoded), max(1, *(len(e) for e in encoded))), np.int32)
    for row, sequence in enumerate(encoded):
        labels[row, : len(sequence)] = sequence
    return labels


def augment(x: np.ndarray, options: AugmentOptions, rng: np.random.Generator) -> np.ndarray:
    """A batch of (N, frames, bands) features with a random mel-axis warp and time/band masks."""
    count, frames, bands = x.shape
    if options.warp > 0:
        scale = rng.uniform(1 - options.warp, 1 + options.warp, size=(count, 1))
        source = np.clip(np.arange(bands)[None, :] * scale, 0, bands - 1)
        low = np.floor(source).astype(int)
        high = np.minimum(low + 1, bands - 1)
        weight = (source - low)[:, None, :]
        rows = np.arange(count)[:, None, None]
        x = (1 - weight) * x[rows, np.arange(frames)[None, :, None], low[:, None, :]] \
            + weight * x[rows, np.arange(frames)[None, :, None], high[:, None, :]]
    for axis, masks, widest in ((1, options.time_masks, options.time_mask_frames),
                                (2, options.freq_masks, options.freq_mask_bands)):
        size = x.shape[axis]
        for _ in range(masks):
            width = rng.integers(0, min(widest, size) + 1, size=count)
            start = rng.integers(0, size - width + 1)
            position = np.arange(size)[None, :]
            masked = (position >= start[:, None]) & (position < (start + width)[:, None])
            x = x * ~(masked[:, :, None] if axis == 1 else masked[:, None, :])
    return x.astype(np.float32)
