"""Audio front end shared by the speech dataset kinds: 16 kHz WAV reading and log-mel features.

Features are computed once, in the dataset loader, so the float model and every quantized
model see exactly the same input array.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from harness.errors import HarnessError

SAMPLE_RATE = 16_000
_CHUNK = 128  # utterances per STFT batch (bounds memory: the spectra are complex64)
_STD_FLOOR = 0.1  # natural-log units; speech bands vary by about 1 to 3


class FeatureOptions(BaseModel):
    """How audio becomes the model input: log-mel frames, padded to a fixed count."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["log_mel"] = "log_mel"
    n_mels: int = Field(40, ge=1)
    window_ms: float = Field(25.0, gt=0)
    hop_ms: float = Field(10.0, gt=0)
    fft_size: int | None = Field(None, ge=16, description="default: the next power of two >= the window")
    f_min: float = Field(20.0, ge=0)
    f_max: float = Field(7600.0, gt=0, le=SAMPLE_RATE / 2)
    max_seconds: float = Field(4.0, gt=0, description="fixed input length: frames = max_seconds / hop")
    normalize: Literal["utterance", "none"] = Field(
        "utterance", description="utterance: zero mean, unit variance per mel band over the utterance's frames")

    @model_validator(mode="after")
    def _consistent(self) -> FeatureOptions:
        if self.f_min >= self.f_max:
            raise ValueError("f_min must be below f_max")
        if self.hop_ms > self.window_ms:
            raise ValueError("hop_ms must not exceed window_ms")
        return self

    @property
    def window(self) -> int:
        return round(self.window_ms * SAMPLE_RATE / 1000)

    @property
    def hop(self) -> int:
        return round(self.hop_ms * SAMPLE_RATE / 1000)

    @property
    def fft(self) -> int:
        return self.fft_size or 1 << (self.window - 1).bit_length()

    @property
    def max_samples(self) -> int:
        return round(self.max_seconds * SAMPLE_RATE)

    @property
    def frames(self) -> int:
        """Frames per utterance (the model's time axis): max_seconds / hop."""
        return max(1, math.ceil(self.max_samples / self.hop))

    def frames_of(self, samples: int) -> int:
        """Frames that lie wholly inside a signal of `samples` samples (at least one)."""
        return max(1, 1 + (samples - self.window) // self.hop)


def read_wav(path: Path) -> np.ndarray:
    """A 16 kHz mono WAV file as float32 samples in [-1, 1]."""
    from scipy.io import wavfile

    try:
        rate, data = wavfile.read(path)
    except FileNotFoundError:
        raise HarnessError(f"{path}: audio file not found") from None
    except ValueError as exc:
        raise HarnessError(f"{path}: not a readable WAV file ({exc})") from None
    if data.ndim == 2 and data.shape[1] == 1:
        data = data[:, 0]
    if rate != SAMPLE_RATE or data.ndim != 1:
        channels = 1 if data.ndim == 1 else data.shape[1]
        raise HarnessError(f"{path}: {rate} Hz, {channels} channel(s); expected {SAMPLE_RATE} Hz mono WAV "
                           f"(convert it, e.g. `sox in.wav -r {SAMPLE_RATE} -c 1 out.wav`)")
    if data.dtype.kind == "f":
        return data.astype(np.float32)
    if data.dtype == np.uint8:
        return (data.astype(np.float32) - 128) / 128
    return (data / float(-np.iinfo(data.dtype).min)).astype(np.float32)


def log_mel(signals: list[np.ndarray], options: FeatureOptions) -> np.ndarray:
    """Features (N, frames, n_mels) float32 of 16 kHz signals no longer than `max_samples`.

    Frames past an utterance's end, partial ones included, are zero (after normalisation, zero
    is the band mean)."""
    import tensorflow as tf

    mel_matrix = tf.signal.linear_to_mel_weight_matrix(
        options.n_mels, options.fft // 2 + 1, SAMPLE_RATE, options.f_min, options.f_max)
    out = np.zeros((len(signals), options.frames, options.n_mels), np.float32)
    for start in range(0, len(signals), _CHUNK):
        chunk = signals[start : start + _CHUNK]
        batch = np.zeros((len(chunk), options.max_samples), np.float32)
        for row, signal in enumerate(chunk):
            batch[row, : len(signal)] = signal
        spectra = tf.signal.stft(batch, options.window, options.hop, options.fft, pad_end=True)
        mel = tf.math.log(tf.tensordot(tf.abs(spectra) ** 2, mel_matrix, 1) + 1e-6).numpy().astype(np.float64)
        for row, signal in enumerate(chunk):
            valid = mel[row, : options.frames_of(len(signal))]
            if options.normalize == "utterance":
                # the floor keeps steady bands (a tone, digital silence) from amplifying rounding noise
                valid = (valid - valid.mean(axis=0)) / np.maximum(valid.std(axis=0), _STD_FLOOR)
            out[start + row, : len(valid)] = valid
    return out
