"""The artifact store beside a history (every timed model and phone binary, by content), each
cell's baseline (`EarlierRun`) and the suite identity runs are matched by."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from stat import S_ISREG
from typing import Any

from typing_extensions import TypeIs

from harness.cache import DEFAULT_ROOT, file_digest
from harness.history._location import HistoryLocation, PostgresURL
from harness.record import CellRecord, benchmark_binary

ARTIFACTS = "artifacts"  # beside the store: every timed model, by content (<sha256>.tflite)
BINARY_SUFFIX = ".benchmark_model"  # and every phone's benchmark binary (<sha256>.benchmark_model)


def artifacts_folder(location: HistoryLocation) -> Path:
    """Where a history keeps the models it timed: beside a SQLite file; for a PostgreSQL history,
    in this machine's cache folder ($QUANTBENCH_CACHE), since the models were timed here."""
    if isinstance(location, PostgresURL):
        return DEFAULT_ROOT / ARTIFACTS
    return location.resolve().parent / ARTIFACTS


_SHA256 = re.compile(r"[0-9a-f]{64}")


def is_sha256(value: object) -> TypeIs[str]:
    """True for a sha256 digest as the harness writes it (64 lowercase hex): the only record
    content ever used in a file name."""
    return isinstance(value, str) and _SHA256.fullmatch(value) is not None


def suite_identity(suite: str, suite_path: str | None) -> str | None:
    """Which suite a run ran: its `name:` and the suite file's resolved path (`name@/abs/suite.yaml`),
    so an edited file is still the same suite and another file with the same name is not; None
    when the run recorded no suite path (then runs are matched by name only, and that is said)."""
    return f"{suite}@{suite_path}" if suite_path else None


def identity_of(run_info: dict[str, Any]) -> str | None:
    """The suite identity of a run.json: its `suite_identity`, else from its suite name and path."""
    recorded = run_info.get("suite_identity")
    if isinstance(recorded, str) and recorded:
        return recorded
    path = run_info.get("suite_path")
    return suite_identity(str(run_info["suite"]), path if isinstance(path, str) else None)


@dataclass
class EarlierRun:
    """The baseline of a run, per cell: each cell's record from the most recent earlier run of the
    same suite that measured it (or from the pinned run), the label of that run per cell, and where
    the history keeps its models. `label` names the runs used, for one-line messages."""

    label: str = ""
    records: dict[str, CellRecord] = field(default_factory=dict)
    artifacts: Path | None = None  # the history's artifact store
    labels: dict[str, str] = field(default_factory=dict)  # cell id → the run its record came from
    notes: list[str] = field(default_factory=list)  # how the runs were chosen, when that needs saying

    def label_of(self, cell: str) -> str:
        """The run a cell's earlier record came from."""
        return self.labels.get(cell, self.label)

    def kept(self, record: CellRecord) -> Path | None:
        artifact = record.get("artifact")
        return self._kept(artifact.get("sha256") if artifact else None, ".tflite")

    def kept_binary(self, record: CellRecord) -> Path | None:
        """The artifact store's copy of the benchmark_model binary a phone cell was timed with."""
        return self._kept(benchmark_binary(record).get("sha256"), BINARY_SUFFIX)

    def _kept(self, sha: object, suffix: str) -> Path | None:
        return self.artifacts / f"{sha}{suffix}" if self.artifacts is not None and is_sha256(sha) else None


def keep_artifacts(store_path: Path, records: list[CellRecord]) -> list[str]:
    """`keep_artifacts_in` the artifact store beside a SQLite history file."""
    return keep_artifacts_in(store_path.parent / ARTIFACTS, records)


def keep_artifacts_in(folder: Path, records: list[CellRecord]) -> list[str]:
    """Copy each timed model (and each phone's benchmark binary) into the artifact store `folder`,
    once per content, so a later run can time it again beside its own; returns what could not be kept."""
    problems: list[str] = []
    for record in records:
        if record.get("status") != "ok":
            continue
        artifact: Mapping[str, object] = record.get("artifact") or {}
        binary = benchmark_binary(record)
        for source, sha, suffix in ((artifact.get("path"), artifact.get("sha256"), ".tflite"),
                                    (binary.get("path"), binary.get("sha256"), BINARY_SUFFIX)):
            problem = _keep(folder, source, sha, suffix) if source or sha else None
            if problem:
                problems.append(f"{record_name(record)}: {problem}")
    return problems


def _keep(folder: Path, source: object, sha: object, suffix: str) -> str | None:
    """Copy `source` to folder/<sha><suffix> unless it is there; the problem, if any. `sha` must be
    a digest and the bytes copied must have it: a record names the file, never where it goes."""
    if not is_sha256(sha) or not isinstance(source, str) or not source:
        return f"{source!r:.80} with sha256 {sha!r:.80}: not a file path and a sha256 digest"
    target = folder / f"{sha}{suffix}"
    if target.exists():
        return None
    staged = folder / f".{sha}.{os.getpid()}"
    try:
        if not _has_digest(Path(source), sha):
            return f"{source}: no file with the recorded sha256 {sha}"
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, staged)
        if file_digest(staged) != sha:
            return f"{source}: changed while it was copied"
        os.replace(staged, target)
    except OSError as exc:
        return f"{source}: {exc.strerror or exc}"
    finally:
        with suppress(OSError):
            staged.unlink(missing_ok=True)
    return None


def _has_digest(path: Path, sha: str) -> bool:
    """A non-empty regular file (not a device, a pipe or a /proc file that never ends) with this sha256."""
    status = path.stat() if path.exists() else None
    return status is not None and S_ISREG(status.st_mode) and status.st_size > 0 and file_digest(path) == sha


def record_name(record: Any) -> str:
    """`model/scheme@device` of a record as read, whatever its fields hold (for a warning)."""
    fields = record if isinstance(record, dict) else {}
    return "/".join(_shown(fields.get(k)) for k in ("model", "scheme")) + f"@{_shown(fields.get('device'))}"


def _shown(value: object) -> str:
    return value if isinstance(value, str) else f"{value!r:.40}"
