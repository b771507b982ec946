"""The run history: every published run and its cells, in a SQLite file (the default, embedded)
or a PostgreSQL server a team shares (`--history postgresql://...`), one schema for both.

Each run is stored under its unique run id, with its suite identity (`suite_identity`: which suite
file it ran), why it is partial (`partial`) and the sha256 of its results.jsonl; each cell as a
compact record (what trend and attribution need, at most 1.5 KB: harness.history._compact) beside
the columns queries need; a trend reads each cell's slim part only (`History.trend`: TrendCell).
A run's whole records stay in its run folder (`History.full_records`).
Older SQLite stores (schemas 1 to 3) are migrated in place when opened, every row kept and read.
"""

from harness.history._artifacts import (
    ARTIFACTS,
    BINARY_SUFFIX,
    EarlierRun,
    artifacts_folder,
    identity_of,
    is_sha256,
    keep_artifacts,
    keep_artifacts_in,
    record_name,
    suite_identity,
)
from harness.history._errors import HistoryError
from harness.history._import import ImportResult, import_run, selected_cells
from harness.history._location import (
    DEFAULT_PATH,
    HistoryLocation,
    PostgresURL,
    parse_location,
    redact,
    redact_argv,
)
from harness.history._schema import _CELLS, _INDEX, _RUNS_V2, SCHEMA_VERSION
from harness.history._store import History, RunEntry
from harness.history._trend import TrendCell, trend_cells

__all__ = [
    "ARTIFACTS", "BINARY_SUFFIX", "DEFAULT_PATH", "SCHEMA_VERSION", "_CELLS", "_INDEX", "_RUNS_V2", "EarlierRun",
    "History", "HistoryError", "artifacts_folder", "HistoryLocation", "ImportResult", "PostgresURL", "RunEntry",
    "identity_of", "import_run", "is_sha256", "keep_artifacts", "keep_artifacts_in", "parse_location", "record_name",
    "redact", "redact_argv", "selected_cells", "suite_identity", "TrendCell", "trend_cells",
]
