"""Speech datasets from a JSONL manifest (one `{"audio_filepath", "text", "duration"?}` per line).

The manifest format common speech toolkits use; relative audio paths are relative to the
manifest's folder. Audio must be 16 kHz mono WAV; features are declared in the suite.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field

from harness.cache import ArtifactCache
from harness.datasets._base import DATASETS, Dataset, DatasetLoader, LoaderOptions
from harness.datasets.audio_features import SAMPLE_RATE, FeatureOptions, log_mel, read_wav
from harness.errors import HarnessError


def read_manifest(path: Path) -> list[tuple[Path, str]]:
    """(audio path, transcript) of every line of a JSONL manifest."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise HarnessError(f"{path}: cannot read manifest ({exc.strerror})") from None
    entries = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            raise HarnessError(f"{path}:{number}: not a JSON object") from None
        if not isinstance(entry, dict) or not isinstance(entry.get("audio_filepath"), str) \
                or not isinstance(entry.get("text"), str):
            raise HarnessError(f"{path}:{number}: needs string fields `audio_filepath` and `text`")
        if "duration" in entry and not isinstance(entry["duration"], (int, float)):
            raise HarnessError(f"{path}:{number}: `duration` must be a number of seconds")
        entries.append((path.parent / entry["audio_filepath"], entry["text"]))
    if not entries:
        raise HarnessError(f"{path}: the manifest lists no utterances")
    return entries


def load_manifest(name: str, manifest: Path, features: FeatureOptions, on_long: str = "error",
                  limit: int | None = None, source: str | None = None) -> Dataset:
    """Read the audio a manifest lists and compute its features (x) and transcripts (y)."""
    entries = read_manifest(manifest)[:limit]
    signals, texts, skipped = [], [], 0
    for audio_path, text in entries:
        signal = read_wav(audio_path)
        if len(signal) > features.max_samples:
            if on_long == "error":
                raise HarnessError(
                    f"{audio_path}: {len(signal) / SAMPLE_RATE:.2f} s is longer than features.max_seconds "
                    f"({features.max_seconds}); raise max_seconds or set `on_long: skip`")
            skipped += 1
            continue
        signals.append(signal)
        texts.append(text)
    if not signals:
        raise HarnessError(f"{manifest}: every utterance is longer than features.max_seconds ({features.max_seconds})")
    note = f"; {skipped} longer than {features.max_seconds} s skipped" if skipped else ""
    return Dataset(name, log_mel(signals, features), np.array(texts, dtype=object), None,
                   f"{source or manifest}: {len(signals)} utterances, {features.kind} "
                   f"{features.frames}x{features.n_mels}{note}")


class _ManifestOptions(LoaderOptions):
    manifest: str = Field(description="JSONL manifest, relative to the suite file")
    features: FeatureOptions = FeatureOptions()
    on_long: Literal["error", "skip"] = Field(
        "error", description="utterances longer than features.max_seconds: stop, or skip them (counted)")
    limit: int | None = Field(None, ge=1, description="the first N utterances only")


@DATASETS.register("speech_manifest", "16 kHz WAV utterances listed in a JSONL manifest (audio_filepath, text), "
                   "as log-mel features")
class SpeechManifest(DatasetLoader):
    Options = _ManifestOptions
    files = ("manifest",)

    def load(self, name: str, options: _ManifestOptions, base_dir: Path, cache: ArtifactCache | None = None) -> Dataset:
        return load_manifest(name, base_dir / options.manifest, options.features, options.on_long, options.limit)
