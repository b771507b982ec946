"""A real PostgreSQL server for the history tests, and the `store` fixture every contract test runs on
twice: a SQLite file and a PostgreSQL database.

The server is Debian's `postgresql` (the Makefile's DEBS), started once per session (per xdist worker)
as a private cluster: initdb and pg_ctl from /usr/lib/postgresql/*/bin, a unix socket in its own temp
folder (no TCP port to collide on), password authentication (so the URLs carry a password to keep out
of every message). PostgreSQL refuses to run as root: as root (CI) it runs as `nobody`, in a folder
that user owns. Each test gets a database of its own.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PASSWORD = "s3cret-pw"  # what no output may show
USER = "quantbench"


@dataclass
class Server:
    """A running private PostgreSQL cluster."""

    folder: Path
    bin: Path

    def url(self, database: str) -> str:
        return f"postgresql://{USER}:{PASSWORD}@/{database}?host={self.folder}"

    def new_database(self) -> str:
        """A fresh empty database's URL."""
        import psycopg

        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url(name)


def _postgres_bin() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return found[-1].parent if found else None


def _as_owner(command: list[str]) -> list[str]:
    """The command as an unprivileged user when this is root (PostgreSQL will not run as root)."""
    return ["runuser", "-u", "nobody", "--", *command] if os.geteuid() == 0 else command


@pytest.fixture(scope="session")
def postgres() -> Iterator[Server]:
    bin_dir = _postgres_bin()
    if bin_dir is None:
        pytest.skip("Debian's postgresql package is not installed (make setup installs it as root)")
    pytest.importorskip("psycopg", reason="psycopg is not installed (pip install -e '.[postgres]')")
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        pytest.skip("running as root without runuser: PostgreSQL cannot be started as another user")
    folder = Path(tempfile.mkdtemp(prefix="qb-pg-"))  # /tmp: short enough for the socket path
    server = Server(folder, bin_dir)
    (folder / "pw").write_text(PASSWORD + "\n")
    if os.geteuid() == 0:
        shutil.chown(folder, "nobody")
        shutil.chown(folder / "pw", "nobody")
    try:
        subprocess.run(_as_owner([str(bin_dir / "initdb"), "-D", str(folder / "data"), "-U", USER, "-E", "UTF8",
                                  "--auth-local=scram-sha-256", "--auth-host=scram-sha-256",
                                  f"--pwfile={folder / 'pw'}", "--no-sync"]),
                       check=True, capture_output=True, timeout=300)
        options = f"-c listen_addresses='' -k {folder} -c fsync=off -c max_connections=50"
        subprocess.run(_as_owner([str(bin_dir / "pg_ctl"), "-D", str(folder / "data"), "-o", options,
                                  "-l", str(folder / "log"), "-w", "-t", "300", "start"]),
                       check=True, capture_output=True, timeout=330)
        yield server
    finally:
        subprocess.run(_as_owner([str(bin_dir / "pg_ctl"), "-D", str(folder / "data"), "-m", "fast", "-w", "stop"]),
                       check=False, capture_output=True, timeout=120)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres: Server) -> str:
    """A fresh database on the session's server."""
    return postgres.new_database()


@pytest.fixture(params=["sqlite", "postgres"])
def store_location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a test's history lives: a new SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        return str(tmp_path / "history.sqlite")
    return request.getfixturevalue("postgres_url")
