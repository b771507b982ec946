"""The artifact cache produces each key once and never leaves half-written artifacts."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.cache import ArtifactCache, content_key, file_digest


def test_content_key_is_stable_and_order_free() -> None:
    assert content_key(a=1, b={"x": [1, 2]}) == content_key(b={"x": [1, 2]}, a=1)
    assert content_key(a=1) != content_key(a=2)


def test_get_or_create_runs_producer_once(tmp_path: Path) -> None:
    cache, calls = ArtifactCache(tmp_path), []

    def produce(target: Path) -> None:
        calls.append(target)
        target.write_bytes(b"model")

    first, cached_first = cache.get_or_create("tflite", "ab" * 32, ".tflite", produce)
    second, cached_second = cache.get_or_create("tflite", "ab" * 32, ".tflite", produce)
    assert first == second and first.read_bytes() == b"model"
    assert (cached_first, cached_second, len(calls)) == (False, True, 1)


def test_failed_producer_leaves_nothing(tmp_path: Path) -> None:
    cache = ArtifactCache(tmp_path)

    def broken(target: Path) -> None:
        target.write_bytes(b"half")
        raise RuntimeError("converter crashed")

    with pytest.raises(RuntimeError):
        cache.get_or_create("tflite", "cd" * 32, ".tflite", broken)
    assert not cache.path("tflite", "cd" * 32, ".tflite").exists()
    assert list(cache.path("tflite", "cd" * 32).parent.iterdir()) == []


def test_directory_digest_covers_names_and_bytes(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a").write_text("1")
    before = file_digest(tmp_path / "d")
    (tmp_path / "d" / "a").rename(tmp_path / "d" / "b")
    assert file_digest(tmp_path / "d") != before
