"""Content-addressed artifact cache: the same inputs never produce the same artifact twice."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

DEFAULT_ROOT = Path(os.environ.get("QUANTBENCH_CACHE", Path.home() / ".cache" / "quantbench"))


def content_key(**parts: Any) -> str:
    """A stable hash of JSON-serialisable parts (sorted keys)."""
    blob = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def file_digest(path: Path) -> str:
    """sha256 of a file, or of every file (relative path + bytes) under a directory."""
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        if path.is_dir():
            digest.update(str(file.relative_to(path)).encode())
        with open(file, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


class ArtifactCache:
    """Files and directories under `root/<kind>/<key[:2]>/<key><suffix>`, created atomically."""

    def __init__(self, root: Path = DEFAULT_ROOT) -> None:
        self.root = Path(root)

    def path(self, kind: str, key: str, suffix: str = "") -> Path:
        return self.root / kind / key[:2] / f"{key}{suffix}"

    def get_or_create(
        self, kind: str, key: str, suffix: str, produce: Callable[[Path], None]
    ) -> tuple[Path, bool]:
        """Return (path, was_cached); on a miss `produce(tmp_path)` writes the artifact."""
        final = self.path(kind, key, suffix)
        if final.exists():
            return final, True
        final.parent.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=".tmp-", dir=final.parent))
        try:
            staged = scratch / final.name
            produce(staged)
            if not staged.exists():
                raise RuntimeError(f"cache producer for {kind} wrote nothing")
            try:
                os.replace(staged, final)
            except OSError:
                if not final.exists():  # another process won the race: keep theirs
                    raise
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        return final, False

    def write_json(self, kind: str, key: str, data: dict) -> Path:
        """Store a small JSON sidecar (metadata about an artifact)."""
        path = self.path(kind, key, ".json")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".json.{os.getpid()}")
        tmp.write_text(json.dumps(data, indent=2, default=str))
        os.replace(tmp, path)
        return path

    def read_json(self, kind: str, key: str) -> dict | None:
        path = self.path(kind, key, ".json")
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            return None
