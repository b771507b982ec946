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


def _model(cache: ArtifactCache, key: str, calls: list[Path], payload: bytes = b"0123456789" * 10) -> Path:
    def produce(target: Path) -> None:
        calls.append(target)
        target.write_bytes(payload)

    return cache.get_or_create("tflite", key, ".tflite", produce)[0]


@pytest.mark.parametrize("damage", ["flip", "truncate", "append", "seal"])
def test_a_damaged_entry_is_rebuilt_and_reported_once(tmp_path: Path, damage: str) -> None:
    cache, calls = ArtifactCache(tmp_path), []
    path = _model(cache, "ef" * 32, calls)
    data = bytearray(path.read_bytes())
    if damage == "flip":
        data[40:56] = bytes(b ^ 0xFF for b in data[40:56])  # same size, other bytes
        path.write_bytes(bytes(data))
    elif damage == "truncate":
        path.write_bytes(bytes(data[:37]))
    elif damage == "append":
        path.write_bytes(bytes(data) + b"x")
    else:
        path.with_name(path.name + ".sha256").unlink()  # a crash between seal and entry, or an older cache
    again, cached = cache.get_or_create("tflite", "ef" * 32, ".tflite", lambda t: t.write_bytes(b"0123456789" * 10))
    assert (again, cached) == (path, False)
    assert again.read_bytes() == b"0123456789" * 10
    assert len(cache.events) == 1 and cache.problems_for(path)
    assert "discarded and rebuilt" in str(cache.events[0])
    assert cache.get_or_create("tflite", "ef" * 32, ".tflite", lambda t: None) == (path, True)
    assert len(cache.events) == 1
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # nothing left aside


def test_a_damaged_directory_entry_is_rebuilt(tmp_path: Path) -> None:
    cache = ArtifactCache(tmp_path)

    def export(target: Path) -> None:
        target.mkdir()
        (target / "saved_model.pb").write_bytes(b"graph" * 20)

    path, _ = cache.get_or_create("saved_models", "aa" * 32, "", export)
    (path / "saved_model.pb").write_bytes(b"graph" * 19 + b"GRAPH")
    again, cached = cache.get_or_create("saved_models", "aa" * 32, "", export)
    assert not cached and (again / "saved_model.pb").read_bytes() == b"graph" * 20


def test_artifact_keys_change_with_the_code_that_produces_artifacts(tmp_path, monkeypatch) -> None:
    """An edit to a scheme, model builder or normalizer changes every artifact key (tool_versions
    carries the digest of harness/{models,schemes,tflite}), so no stale artifact is reused."""
    import shutil

    import harness
    from harness import versions

    root = Path(harness.__file__).parent
    copy = tmp_path / "harness"
    for folder in ("models", "schemes", "tflite"):
        shutil.copytree(root / folder, copy / folder)
    monkeypatch.setattr(harness, "__file__", str(copy / "__init__.py"))
    versions.producer_digest.cache_clear()
    before = versions.producer_digest()
    (copy / "schemes" / "int8.py").write_text((copy / "schemes" / "int8.py").read_text() + "\n# changed\n")
    versions.producer_digest.cache_clear()
    assert versions.producer_digest() != before
    versions.producer_digest.cache_clear()



def test_a_models_gzip_size_is_computed_once_per_content(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """gzip -9 of a large model is slow: its size is kept by the model's sha256 (and the level), sealed."""
    import gzip
    import hashlib

    from harness.runner import host

    cache = ArtifactCache(tmp_path / "cache")
    data = bytes(range(256)) * 4000 + b"tail"
    sha = hashlib.sha256(data).hexdigest()
    expected = len(gzip.compress(data, compresslevel=9, mtime=0))
    assert host.gzip_size(data, sha, cache) == expected
    real = gzip.compress
    calls: list[int] = []

    def counting(*args: object, **kwargs: object) -> bytes:
        calls.append(1)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(gzip, "compress", counting)
    assert host.gzip_size(data, sha, cache) == expected and not calls  # kept: not compressed again
    [entry] = (tmp_path / "cache" / "gzip").rglob("*.json")
    entry.write_text('{"gzip_bytes": 1}')  # changed by hand: fails its seal, computed again
    assert host.gzip_size(data, sha, cache) == expected and len(calls) == 1 and cache.events
