"""Content-addressed artifact cache: the same inputs never produce the same artifact twice.

Every entry is written with a seal beside it (`<entry>.sha256`: its sha256 and size), and every
read checks the entry against its seal. An entry that does not match (flipped bytes, a truncated
file, a file changed by hand) or that has no seal (a crash between the two writes, an older
quantbench) is never used: it is moved aside, rebuilt, and reported once in `events`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_ROOT = Path(os.environ.get("QUANTBENCH_CACHE", Path.home() / ".cache" / "quantbench"))
SEAL = ".sha256"


def content_key(**parts: Any) -> str:
    """A stable hash of JSON-serialisable parts (sorted keys)."""
    blob = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def _files(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]


def file_digest(path: Path) -> str:
    """sha256 of a file, or of every file (relative path + bytes) under a directory."""
    digest = hashlib.sha256()
    for file in _files(path):
        if path.is_dir():
            digest.update(str(file.relative_to(path)).encode())
        with open(file, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def _size(path: Path) -> int:
    return sum(f.stat().st_size for f in _files(path))


@dataclass(frozen=True)
class CacheEvent:
    """A cache entry that failed its check and was rebuilt."""

    kind: str
    path: Path
    problem: str

    def __str__(self) -> str:
        return f"cache entry {self.path} {self.problem}: discarded and rebuilt"


class ArtifactCache:
    """Files and directories under `root/<kind>/<key[:2]>/<key><suffix>`, created atomically and
    verified against their seal on every read."""

    def __init__(self, root: Path = DEFAULT_ROOT) -> None:
        self.root = Path(root)
        self.events: list[CacheEvent] = []
        self._lock = threading.Lock()

    def path(self, kind: str, key: str, suffix: str = "") -> Path:
        return self.root / kind / key[:2] / f"{key}{suffix}"

    def get_or_create(
        self, kind: str, key: str, suffix: str, produce: Callable[[Path], object]
    ) -> tuple[Path, bool]:
        """Return (path, was_cached); on a miss, or a bad entry, `produce(tmp_path)` writes the artifact."""
        found = self.lookup(kind, key, suffix)
        if found is not None:
            return found, True
        final = self.path(kind, key, suffix)
        final.parent.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=".tmp-", dir=final.parent))
        try:
            staged = scratch / final.name
            produce(staged)
            if not staged.exists():
                raise RuntimeError(f"cache producer for {kind} wrote nothing")
            self._publish(staged, final)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        return final, False

    def lookup(self, kind: str, key: str, suffix: str = "") -> Path | None:
        """The entry when it is there and matches its seal; None on a miss. A bad entry is moved aside
        and reported in `events`, so the caller's rebuild (get_or_create) is reported once."""
        final = self.path(kind, key, suffix)
        if not final.exists():
            return None
        problem = self._problem(final)
        if problem is None:
            return final
        self._discard(kind, final, problem)
        return None

    def _publish(self, staged: Path, final: Path) -> None:
        """Seal first, then the entry: a crash in between leaves an entry that fails its check."""
        seal = {"sha256": file_digest(staged), "size": _size(staged)}
        _write_atomic(_seal_path(final), json.dumps(seal))
        try:
            os.replace(staged, final)
        except OSError:
            if not final.exists():  # another process won the race: keep theirs
                raise

    def _problem(self, final: Path) -> str | None:
        """None when the entry matches its seal, else what is wrong with it."""
        try:
            seal = json.loads(_seal_path(final).read_text())
            expected, size = str(seal["sha256"]), int(seal["size"])
        except (OSError, ValueError, KeyError, TypeError):
            return "has no valid seal (interrupted write, or an older quantbench)"
        actual = _size(final)
        if actual != size:
            return f"has {actual} bytes where {size} were written (truncated or changed)"
        if file_digest(final) != expected:
            return "does not match the sha256 it was written with (corrupted or changed)"
        return None

    def _discard(self, kind: str, final: Path, problem: str) -> None:
        aside = final.with_name(f".bad-{os.getpid()}-{final.name}")
        try:
            os.replace(final, aside)
        except FileNotFoundError:
            pass  # another process discarded it first
        else:
            if aside.is_dir():
                shutil.rmtree(aside, ignore_errors=True)
            else:
                aside.unlink(missing_ok=True)
        with self._lock:
            self.events.append(CacheEvent(kind, final, problem))

    def problems_for(self, path: Path) -> list[str]:
        """What was wrong with this entry, if this cache rebuilt it during the run."""
        with self._lock:
            return [e.problem for e in self.events if e.path == path]

    def write_json(self, kind: str, key: str, data: dict) -> Path:
        """Store a small JSON sidecar (metadata about an artifact)."""
        path = self.path(kind, key, ".json")
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_atomic(path, json.dumps(data, indent=2, default=str))
        return path

    def read_json(self, kind: str, key: str) -> dict | None:
        path = self.path(kind, key, ".json")
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None


def _seal_path(final: Path) -> Path:
    return final.with_name(final.name + SEAL)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
