"""`--history` values: a SQLite path or a PostgreSQL URL whose credentials are never printed."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import HarnessError
from harness.history import PostgresURL, parse_location, redact, redact_argv

URL = "postgresql://alice:p%40ss-word@db.example:5432/bench?sslmode=require&password=other-secret"


def test_a_url_is_shown_without_user_password_or_secret_parameters() -> None:
    location = parse_location(URL)
    assert isinstance(location, PostgresURL) and location.url == URL
    shown = f"{location} {location!r}"
    assert "alice" not in shown and "p%40ss" not in shown and "other-secret" not in shown
    assert str(location) == "postgresql://***@db.example:5432/bench?sslmode=require&password=***"


def test_a_driver_message_is_scrubbed_of_the_url_and_its_secrets() -> None:
    location = PostgresURL(URL)
    message = location.scrub(f'FATAL: password authentication failed for user "alice" (p@ss-word) via {URL}')
    assert "alice" not in message and "p@ss-word" not in message and "other-secret" not in message


@pytest.mark.parametrize("value", ["reports/history.sqlite", "/abs/h.sqlite", "h"])
def test_a_path_is_a_sqlite_file(value: str) -> None:
    assert parse_location(value) == Path(value)


@pytest.mark.parametrize("value", ["mysql://bob:hunter2@h/db", Path("postgresql://bob:hunter2@h/db")])
def test_another_url_or_a_url_made_a_path_is_one_clear_error(value: str | Path) -> None:
    with pytest.raises(HarnessError, match="give a SQLite file path") as caught:
        parse_location(value)
    assert "hunter2" not in str(caught.value) and "bob" not in str(caught.value)


def test_run_json_argv_keeps_no_credentials() -> None:
    argv = ["bench", "run", "s.yaml", "--history", URL, f"--history={URL}", "--only", "a/*"]
    kept = redact_argv(argv)
    assert kept[:3] == argv[:3] and kept[-2:] == argv[-2:] and "alice" not in " ".join(kept)
    assert kept[4] == redact(URL) and kept[5] == f"--history={redact(URL)}"
