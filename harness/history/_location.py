"""Where a history lives: a SQLite file (a path, the default) or a PostgreSQL server (a
`postgresql://` URL). A URL's credentials are never printed: `str()` of a `PostgresURL` is its
redacted form, and `scrub` takes them out of any message a driver wrote."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from harness.errors import HarnessError

DEFAULT_PATH = Path("reports/history.sqlite")
POSTGRES_SCHEMES = ("postgresql", "postgres")
_SECRET_PARAMS = ("password", "sslpassword", "user")
HIDDEN = "***"


@dataclass(frozen=True)
class PostgresURL:
    """A PostgreSQL connection URL; printing it shows `postgresql://***@host:port/db`."""

    url: str = field(repr=False)

    def __str__(self) -> str:
        return redact(self.url)

    def __repr__(self) -> str:
        return f"PostgresURL({self})"

    def secrets(self) -> list[str]:
        """The user name and password in the URL, as written and percent-decoded (for `scrub`)."""
        try:
            parts = urlsplit(self.url)
            values = [parts.username, parts.password,
                      *(v for k, v in parse_qsl(parts.query) if k in _SECRET_PARAMS)]
        except ValueError:
            return []
        found = {text for value in values if value for text in (value, unquote(value)) if len(text) >= 2}
        return sorted(found, key=len, reverse=True)

    def scrub(self, message: str) -> str:
        """`message` with this URL shown redacted and its user name and password taken out."""
        message = message.replace(self.url, str(self))
        for secret in self.secrets():
            message = message.replace(secret, HIDDEN)
        return message


HistoryLocation = Path | PostgresURL


def redact(url: str) -> str:
    """The URL without its user name, password or secret query parameters (a URL that cannot be
    parsed is shown as its scheme only)."""
    try:
        parts = urlsplit(url)
        host = parts.netloc.rpartition("@")[2]
        netloc = f"{HIDDEN}@{host}" if "@" in parts.netloc else host
        pairs = parse_qsl(parts.query, keep_blank_values=True)
        query = urlencode([(k, HIDDEN if k in _SECRET_PARAMS else v) for k, v in pairs], safe="/*:")
        return urlunsplit((parts.scheme, netloc, parts.path, query, ""))
    except ValueError:
        return f"{url.partition(':')[0][:20]}://{HIDDEN}"


def _scheme(text: str) -> str | None:
    head, sep, _ = text.partition("://")
    return head.lower() if sep else None


def parse_location(value: str | Path | PostgresURL) -> HistoryLocation:
    """A `--history` value as a location: a PostgreSQL URL, else a SQLite file path. Another URL
    scheme, or a URL that became a path (`postgresql:/...`), is a one-line error (never echoed whole)."""
    if isinstance(value, PostgresURL):
        return value
    text = str(value)
    scheme = _scheme(text) if isinstance(value, str) else None
    if scheme in POSTGRES_SCHEMES:
        return PostgresURL(text)
    head = text.partition(":")[0].lower()
    if scheme is not None or (head in POSTGRES_SCHEMES and text[len(head):].startswith(":/")):
        shown = redact(text) if scheme is not None else f"{head[:20]}:/{HIDDEN}"
        raise HarnessError(f"history {shown}: give a SQLite file path, or a postgresql://USER@HOST/DB URL where "
                           f"the command takes one")
    return Path(text)


def redact_argv(argv: list[str]) -> list[str]:
    """A command line as run.json keeps it: every PostgreSQL URL (alone or as `--option=URL`) redacted."""
    return [_redact_word(word) for word in argv]


def _redact_word(word: str) -> str:
    option, equals, value = word.partition("=") if word.startswith("--") else ("", "", word)
    return f"{option}{equals}{redact(value)}" if _scheme(value) in POSTGRES_SCHEMES else word
