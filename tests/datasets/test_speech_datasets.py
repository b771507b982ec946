"""Speech datasets: JSONL manifests of 16 kHz WAVs as log-mel features, and flite-synthesized digits."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from scipy.io import wavfile

from harness.cache import ArtifactCache
from harness.datasets import DATASETS
from harness.datasets.audio_features import FeatureOptions
from harness.datasets.flite_digits import WORDS, _FliteOptions, synthesize_manifest
from harness.datasets.speech_manifest import load_manifest
from harness.errors import HarnessError

needs_flite = pytest.mark.skipif(shutil.which("flite") is None,
                                 reason="Debian package flite is not installed (`make setup` installs it)")


def tone(path: Path, hz: float, seconds: float, rate: int = 16_000, channels: int = 1) -> None:
    t = np.arange(int(seconds * rate)) / rate
    samples = (0.5 * np.sin(2 * np.pi * hz * t) * 32767).astype(np.int16)
    wavfile.write(path, rate, samples if channels == 1 else np.stack([samples] * channels, axis=1))


def manifest(folder: Path, entries: list[dict]) -> Path:
    path = folder / "manifest.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in entries))
    return path


def load(folder: Path, **options):
    loader = DATASETS.get("speech_manifest")
    return loader.load("speech", loader.Options.model_validate({"manifest": "manifest.jsonl", **options}), folder)


def test_manifest_of_tones(tmp_path: Path) -> None:
    (tmp_path / "audio").mkdir()
    tone(tmp_path / "audio" / "low.wav", 500, 0.5)
    tone(tmp_path / "audio" / "high.wav", 3000, 0.3)
    manifest(tmp_path, [{"audio_filepath": "audio/low.wav", "text": "one two", "duration": 0.5},
                        {"audio_filepath": str(tmp_path / "audio" / "high.wav"), "text": "three"}])
    data = load(tmp_path, features={"n_mels": 40, "max_seconds": 1.0, "normalize": "none"})
    assert data.x.shape == (2, 100, 40) and data.x.dtype == np.float32
    assert data.y.tolist() == ["one two", "three"] and data.num_classes is None
    valid = [1 + (8000 - 400) // 160, 1 + (4800 - 400) // 160]  # whole 25 ms windows, 10 ms hop
    for row, frames in enumerate(valid):
        assert np.all(data.x[row, frames:] == 0) and np.all(np.any(data.x[row, :frames] != 0, axis=1))
    low_band, high_band = (int(np.argmax(data.x[row, :frames].mean(axis=0))) for row, frames in enumerate(valid))
    assert 5 < low_band < high_band  # the mel band of the tone: higher pitch, higher band
    assert "2 utterances, log_mel 100x40" in data.source


def test_utterance_normalisation(tmp_path: Path) -> None:
    tone(tmp_path / "a.wav", 800, 0.6)
    manifest(tmp_path, [{"audio_filepath": "a.wav", "text": "a"}])
    data = load(tmp_path, features={"max_seconds": 1.0})
    speech = data.x[0, : 1 + (9600 - 400) // 160]
    assert np.allclose(speech.mean(axis=0), 0, atol=1e-4)
    assert np.all(speech.std(axis=0) <= 1 + 1e-4)  # unit variance, or less for steady bands


def test_wrong_sample_rate_and_channels_name_the_file(tmp_path: Path) -> None:
    tone(tmp_path / "eight_k.wav", 440, 0.2, rate=8000)
    tone(tmp_path / "stereo.wav", 440, 0.2, channels=2)
    manifest(tmp_path, [{"audio_filepath": "eight_k.wav", "text": "a"}])
    with pytest.raises(HarnessError, match=r"eight_k\.wav: 8000 Hz, 1 channel\(s\); expected 16000 Hz mono"):
        load(tmp_path)
    manifest(tmp_path, [{"audio_filepath": "stereo.wav", "text": "a"}])
    with pytest.raises(HarnessError, match=r"stereo\.wav: 16000 Hz, 2 channel\(s\)"):
        load(tmp_path)


def test_missing_audio_and_bad_manifests(tmp_path: Path) -> None:
    manifest(tmp_path, [{"audio_filepath": "gone.wav", "text": "a"}])
    with pytest.raises(HarnessError, match=r"gone\.wav: audio file not found"):
        load(tmp_path)
    (tmp_path / "manifest.jsonl").write_text('{"audio_filepath": "a.wav", "text": "a"}\nnot json\n')
    with pytest.raises(HarnessError, match=r"manifest\.jsonl:2: not a JSON object"):
        load(tmp_path)
    manifest(tmp_path, [{"audio_filepath": "a.wav"}])
    with pytest.raises(HarnessError, match=r"manifest\.jsonl:1: needs string fields"):
        load(tmp_path)
    with pytest.raises(HarnessError, match="cannot read manifest"):
        load(tmp_path, manifest="elsewhere.jsonl")


def test_long_utterances_stop_or_are_skipped_and_counted(tmp_path: Path) -> None:
    tone(tmp_path / "short.wav", 440, 0.5)
    tone(tmp_path / "long.wav", 440, 1.5)
    manifest(tmp_path, [{"audio_filepath": "short.wav", "text": "a"}, {"audio_filepath": "long.wav", "text": "b"}])
    with pytest.raises(HarnessError, match=r"long\.wav: 1\.50 s is longer than features\.max_seconds \(1\.0\)"):
        load(tmp_path, features={"max_seconds": 1.0})
    data = load(tmp_path, features={"max_seconds": 1.0}, on_long="skip")
    assert data.y.tolist() == ["a"] and "1 longer than 1.0 s skipped" in data.source


@needs_flite
def test_flite_synthesizes_digit_strings(tmp_path: Path) -> None:
    options = _FliteOptions(voices=["slt", "kal"], rates=[0.9, 1.2], f0_means=[120], count=2, digits=(2, 3), seed=3)
    path = synthesize_manifest(options, ArtifactCache(tmp_path))
    entries = [json.loads(line) for line in path.read_text().splitlines()]
    assert [e["voice"] for e in entries] == ["slt", "kal"]
    for entry in entries:
        words = entry["text"].split()
        assert 2 <= len(words) <= 3 and set(words) <= set(WORDS) and entry["rate"] in (0.9, 1.2)
        rate, samples = wavfile.read(path.parent / entry["audio_filepath"])
        assert rate == 16_000 and samples.dtype == np.int16  # kal speaks at 8 kHz: resampled
        assert entry["duration"] == pytest.approx(len(samples) / rate, abs=1e-3) and entry["duration"] > 0.5
        assert np.abs(samples).max() > 1000  # not silence
    assert synthesize_manifest(options, ArtifactCache(tmp_path)) == path  # cached: same folder, not redone
    data = load_manifest("digits", path, FeatureOptions(max_seconds=4.0))
    assert data.x.shape == (2, 400, 40) and data.y.tolist() == [e["text"] for e in entries]


@needs_flite
def test_flite_unknown_voice(tmp_path: Path) -> None:
    with pytest.raises(HarnessError, match=r"flite has no voice nobody \(available: .*slt"):
        synthesize_manifest(_FliteOptions(voices=["nobody"], count=1), ArtifactCache(tmp_path))


def test_flite_missing_says_which_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(HarnessError, match="install the Debian package flite"):
        synthesize_manifest(_FliteOptions(voices=["slt"], count=1), ArtifactCache(tmp_path))
