"""Spoken digit strings synthesized with the Debian `flite` binary: voices × speaking rates × pitch.

The WAVs and their `manifest.jsonl` go to a content-addressed folder in the run's artifact
cache (`<cache>/speech/...`), then load like any `speech_manifest` dataset. Voices that
synthesize at 8 kHz (flite's `kal`) are resampled to 16 kHz (polyphase, scipy).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from pydantic import Field, field_validator

from harness.cache import DEFAULT_ROOT, ArtifactCache, content_key
from harness.datasets._base import DATASETS, Dataset, DatasetLoader, LoaderOptions
from harness.datasets.audio_features import SAMPLE_RATE, FeatureOptions
from harness.datasets.speech_manifest import load_manifest
from harness.errors import HarnessError

WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_FORMAT = 1  # bump when the folder layout or the synthesis command changes


def flite_binary() -> str:
    """Path of the flite executable, or a clear error."""
    path = shutil.which("flite")
    if path is None:
        raise HarnessError("flite not found: install the Debian package flite (`apt-get install flite`)")
    return path


def flite_voices() -> list[str]:
    """The voices this flite build has (`flite -lv`)."""
    done = subprocess.run([flite_binary(), "-lv"], capture_output=True, text=True, check=False)
    return done.stdout.split(":", 1)[-1].split()


def flite_version() -> str:
    done = subprocess.run([flite_binary(), "--version"], capture_output=True, text=True, check=False)
    return done.stdout.strip()


def synthesize(text: str, voice: str, target: Path, rate: float = 1.0, f0_mean: float | None = None,
               speed: float = 1.0) -> float:
    """Speak `text` into a 16 kHz mono 16-bit WAV at `target`; return its duration in seconds.

    `rate` is flite's duration_stretch (> 1 speaks slower); `f0_mean` its pitch target in Hz
    (the clustergen and diphone voices honour it; `rms` ignores it); `speed` resamples the
    waveform (speed perturbation: > 1 is faster and shifts pitch and formants up, like a
    shorter vocal tract)."""
    from scipy.io import wavfile
    from scipy.signal import resample_poly

    command = [flite_binary(), "-voice", voice, "--setf", f"duration_stretch={rate}"]
    if f0_mean is not None:
        command += ["--setf", f"int_f0_target_mean={f0_mean}"]
    done = subprocess.run([*command, "-t", text, "-o", str(target)], capture_output=True, text=True, check=False)
    if done.returncode != 0 or not target.exists():
        raise HarnessError(f"flite failed for voice {voice!r}: {done.stderr.strip() or done.returncode}")
    sample_rate, samples = wavfile.read(target)
    if sample_rate != SAMPLE_RATE or speed != 1.0:
        divisor = math.gcd(SAMPLE_RATE, round(sample_rate * speed))
        resampled = resample_poly(samples.astype(np.float64), SAMPLE_RATE // divisor,
                                  round(sample_rate * speed) // divisor)
        samples = np.clip(np.round(resampled), -32768, 32767).astype(np.int16)
        wavfile.write(target, SAMPLE_RATE, samples)
    return len(samples) / SAMPLE_RATE


class _FliteOptions(LoaderOptions):
    voices: list[str] = Field(min_length=1, description="flite voices (`flite -lv`), used in turn")
    rates: list[float] = Field([1.0], min_length=1, description="duration_stretch values, drawn per utterance")
    f0_means: list[float] | None = Field(None, description="pitch targets (Hz), drawn per utterance; "
                                         "default: each voice's own")
    speeds: list[float] = Field([1.0], min_length=1, description="speed perturbation factors (resampling), "
                                "drawn per utterance; 0.01 steps")
    count: int = Field(200, ge=1)
    digits: tuple[int, int] = Field((2, 5), description="fewest and most digits per utterance")
    seed: int = 0
    features: FeatureOptions = FeatureOptions()

    @field_validator("rates", "f0_means", "speeds")
    @classmethod
    def _positive(cls, values: list[float] | None) -> list[float] | None:
        if values is not None and any(v <= 0 for v in values):
            raise ValueError("values must be positive")
        return values

    @field_validator("digits")
    @classmethod
    def _range(cls, value: tuple[int, int]) -> tuple[int, int]:
        if not 1 <= value[0] <= value[1]:
            raise ValueError("give [fewest, most] with 1 <= fewest <= most")
        return value


def _plan(options: _FliteOptions) -> list[dict]:
    """Text, voice, rate and pitch of every utterance (seeded)."""
    rng = np.random.default_rng(options.seed)
    plan = []
    for index in range(options.count):
        count = int(rng.integers(options.digits[0], options.digits[1] + 1))
        plan.append({
            "audio_filepath": f"{index:05d}.wav",
            "text": " ".join(WORDS[d] for d in rng.integers(0, 10, count)),
            "voice": options.voices[index % len(options.voices)],
            "rate": float(rng.choice(options.rates)),
            "f0_mean": float(rng.choice(options.f0_means)) if options.f0_means else None,
            "speed": round(float(rng.choice(options.speeds)), 2),
        })
    return plan


def synthesize_manifest(options: _FliteOptions, cache: ArtifactCache | None = None) -> Path:
    """The manifest of the synthesized utterances (synthesized on the first use, then cached)."""
    available = flite_voices()
    unknown = [v for v in options.voices if v not in available]
    if unknown:
        raise HarnessError(f"flite has no voice {', '.join(unknown)} (available: {', '.join(available)})")
    plan = _plan(options)
    key = content_key(kind="flite-digits", format=_FORMAT, flite=flite_version(), plan=plan)

    def produce(folder: Path) -> None:
        folder.mkdir()

        def speak(entry: dict) -> dict:
            seconds = synthesize(entry["text"], entry["voice"], folder / entry["audio_filepath"],
                                 entry["rate"], entry["f0_mean"], entry["speed"])
            return {**entry, "duration": round(seconds, 4)}

        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            entries = list(pool.map(speak, plan))
        (folder / "manifest.jsonl").write_text("".join(json.dumps(e) + "\n" for e in entries))

    folder, _ = (cache or ArtifactCache(DEFAULT_ROOT)).get_or_create("speech", key, "", produce)
    return folder / "manifest.jsonl"


@DATASETS.register("flite_digits", "spoken digit strings synthesized with Debian flite (voices, rates, pitch, speed), "
                   "as log-mel features")
class FliteDigits(DatasetLoader):
    Options = _FliteOptions

    def load(self, name: str, options: _FliteOptions, base_dir: Path, cache: ArtifactCache | None = None) -> Dataset:
        manifest = synthesize_manifest(options, cache)
        pitch = f"; f0 {options.f0_means} Hz" if options.f0_means else ""
        speed = f"; speeds {options.speeds}" if options.speeds != [1.0] else ""
        source = f"flite digits ({', '.join(options.voices)}; rates {options.rates}{pitch}{speed}; {manifest.parent})"
        return load_manifest(name, manifest, options.features, source=source)
