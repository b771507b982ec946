"""Device leases from a DeviceFarmer STF server (its REST API, doc/API.md of DeviceFarmer/stf).

A profile's `connection: stf://HOST[:PORT]/SERIAL` leases that phone, `stf://HOST[:PORT]?model=NAME`
any present, ready, unused phone of that model (`GET /api/v1/devices`). `stf+http://` talks plain
HTTP (a lab-internal STF, or the simulator); `stf://` HTTPS. The token comes from $STF_TOKEN.

A lease: reserve (`POST /api/v1/user/devices {"serial"}`), `POST .../remoteConnect` for an
`adb connect` address, and on release `DELETE .../remoteConnect` then `DELETE /api/v1/user/devices/
SERIAL`, both tried on every path (the lease is released when acquiring fails half-way too).

The client is hostile-server proof: it never follows a redirect (the token goes to the STF origin
only), bounds every request by one total deadline (a server that dribbles bytes is cut off), caps
the answer's size, and checks every answer's shape (pydantic) before using it: whatever the
server sends, a call either returns checked data or raises StfError with a one-line reason.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import re
import socket
import threading
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from harness.errors import HarnessError

log = logging.getLogger("harness.devices.android")
TOKEN_ENV = "STF_TOKEN"
SCHEMES = {"stf": "https", "stf+http": "http"}
LEASE_MS = 15 * 60 * 1000  # STF frees an idle reservation after this (the lease's `timeout`)
MAX_ANSWER_BYTES = 8 << 20  # a device list of a large farm is well under this
_USAGE = "expected stf://HOST[:PORT]/SERIAL or stf://HOST[:PORT]?model=NAME (stf+http:// for plain HTTP)"
_ADDRESS = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})")


def is_stf(connection: str) -> bool:
    return connection.split("://", 1)[0] in SCHEMES and "://" in connection


def _one_line(text: str, limit: int = 200) -> str:
    """A server's text as one bounded line (it is shown, never interpreted)."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[:limit] + "…"


@dataclass(frozen=True)
class StfTarget:
    """A parsed stf:// connection: the API's base URL and a serial or a model to match."""

    base_url: str
    serial: str | None
    model: str | None

    @classmethod
    def parse(cls, connection: str) -> StfTarget:
        """Check every part of the URL; HarnessError names what is wrong (`bench validate` uses it too)."""
        problem = _url_problem(connection)
        if problem:
            raise HarnessError(f"connection {connection!r}: {problem}; {_USAGE}")
        url = urllib.parse.urlsplit(connection)
        serial = urllib.parse.unquote(url.path.strip("/")) or None
        model = urllib.parse.parse_qs(url.query).get("model", [None])[0]
        return cls(f"{SCHEMES[url.scheme]}://{url.netloc}", serial, model)


def _url_problem(connection: str) -> str | None:
    """What is wrong with an stf:// URL (None: nothing)."""
    try:
        url = urllib.parse.urlsplit(connection)
        port = url.port
    except ValueError as exc:
        return f"bad host or port ({exc})"
    if url.scheme not in SCHEMES:
        return f"unknown scheme {url.scheme!r}"
    if not url.hostname or any(c.isspace() or not c.isprintable() for c in url.netloc):
        return "no host" if not url.hostname else "white space in the host"
    if "@" in url.netloc:
        return "no user or password in the URL (the token comes from $STF_TOKEN)"
    if port == 0:
        return "port 0"
    return _target_problem(url)


def _target_problem(url: urllib.parse.SplitResult) -> str | None:
    serial = urllib.parse.unquote(url.path.strip("/"))
    query = urllib.parse.parse_qs(url.query, keep_blank_values=True)
    if url.fragment or set(query) - {"model"} or len(query.get("model", [])) > 1:
        return "the only query is one ?model=NAME, and no #fragment"
    model = (query.get("model") or [""])[0]
    if bool(serial) == bool(model.strip()):
        return "give either a serial or a non-empty ?model=, not both" if serial else "no serial and no ?model="
    if "/" in serial or any(not c.isprintable() for c in serial):
        return f"serial {serial!r} is not one path segment of printable characters"
    return None


class StfError(HarnessError):
    """The STF server refused or failed a call, or answered nonsense (the reason is in the message)."""


class _Answer(BaseModel):
    model_config = ConfigDict(extra="ignore")


class StfDevice(_Answer):
    """One phone of `GET /api/v1/devices` (the fields asked for)."""

    serial: str = Field(min_length=1)
    model: str | None = None
    present: bool = False
    ready: bool = False
    using: bool = False
    owner: Any = None  # STF: an object describing the holder, or null


class _DeviceList(_Answer):
    devices: list[StfDevice]


class _RemoteConnect(_Answer):
    remoteConnectUrl: str = Field(min_length=1)


Shape = TypeVar("Shape", bound=_Answer)


def _checked(shape: type[Shape], answer: Any, what: str) -> Shape:
    try:
        return shape.model_validate(answer)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"]) or "the answer"
        raise StfError(f"{what}: unexpected answer: {where}: {error['msg']}") from None


@dataclass
class _Exchange:
    """One HTTP request on its own connection, bounded as a whole by `timeout` seconds: a timer
    shuts the socket down at the deadline, so no byte-by-byte answer can stretch it."""

    connection: http.client.HTTPConnection
    timeout: float
    expired: threading.Event = field(default_factory=threading.Event)
    sock: socket.socket | None = None  # kept: http.client drops its own reference while the answer is read

    def _expire(self) -> None:
        self.expired.set()
        sock = self.sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def send(self, method: str, target: str, body: bytes | None, headers: dict[str, str]) -> tuple[int, bytes, str]:
        """(status, body, Location header); raises OSError/HTTPException, TimeoutError at the deadline."""
        timer = threading.Timer(self.timeout, self._expire)
        timer.daemon = True
        timer.start()
        try:
            self.connection.connect()
            self.sock = self.connection.sock
            if self.expired.is_set():
                raise TimeoutError
            self.connection.request(method, target, body=body, headers=headers)
            response = self.connection.getresponse()
            data = response.read(MAX_ANSWER_BYTES + 1)
            if self.expired.is_set():
                raise TimeoutError
            return response.status, data, response.getheader("Location") or ""
        except (OSError, http.client.HTTPException):
            if self.expired.is_set():
                raise TimeoutError from None
            raise
        finally:
            timer.cancel()
            self.connection.close()


class StfClient:
    """The few calls of STF's REST API a lease needs (Bearer token auth)."""

    def __init__(self, base_url: str, token: str, timeout: float = 20.0) -> None:
        self.base_url, self._token, self.timeout = base_url.rstrip("/"), token, timeout
        self._url = urllib.parse.urlsplit(self.base_url)

    def _connection(self) -> http.client.HTTPConnection:
        host, port = self._url.hostname or "", self._url.port
        if self._url.scheme == "https":
            return http.client.HTTPSConnection(host, port, timeout=self.timeout)
        return http.client.HTTPConnection(host, port, timeout=self.timeout)

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """The decoded JSON answer of a 2xx (`{}` for an empty one); StfError for anything else."""
        what = f"STF {method} {path}"
        headers = {"Authorization": f"Bearer {self._token}", "Accept": "application/json"}
        data = json.dumps(body).encode() if body is not None else None
        if data is not None:
            headers["Content-Type"] = "application/json"
        try:
            status, answer, location = _Exchange(self._connection(), self.timeout).send(
                method, f"{self._url.path}/api/v1{path}", data, headers)
        except TimeoutError:
            raise StfError(f"{what} at {self.base_url}: no complete answer within {self.timeout:g} s") from None
        except http.client.HTTPException as exc:
            raise StfError(f"{what} at {self.base_url}: not a valid HTTP answer "
                           f"({type(exc).__name__}: {_one_line(str(exc), 80)})") from None
        except OSError as exc:
            raise StfError(f"{what} at {self.base_url}: {_one_line(str(exc) or type(exc).__name__)}") from None
        return _decoded(what, status, answer, location, self.base_url)

    def devices(self) -> list[StfDevice]:
        what = "STF GET /devices"
        answer = self.call("GET", "/devices?fields=serial,model,present,ready,using,owner")
        return _checked(_DeviceList, answer, what).devices

    def reserve(self, serial: str) -> None:
        self.call("POST", "/user/devices", {"serial": serial, "timeout": LEASE_MS})

    def remote_connect(self, serial: str) -> str:
        what = f"STF remoteConnect of {serial}"
        answer = self.call("POST", f"/user/devices/{urllib.parse.quote(serial, safe='')}/remoteConnect")
        url = _checked(_RemoteConnect, answer, what).remoteConnectUrl
        match = _ADDRESS.fullmatch(url)
        if match is None or not 0 < int(match.group(1)) < 65536:
            raise StfError(f"{what}: remoteConnectUrl {_one_line(url, 80)!r} is not an adb HOST:PORT address")
        return url

    def disconnect(self, serial: str) -> None:
        self.call("DELETE", f"/user/devices/{urllib.parse.quote(serial, safe='')}/remoteConnect")

    def release(self, serial: str) -> None:
        self.call("DELETE", f"/user/devices/{urllib.parse.quote(serial, safe='')}")


def _decoded(what: str, status: int, answer: bytes, location: str, base_url: str) -> Any:
    if len(answer) > MAX_ANSWER_BYTES:
        raise StfError(f"{what}: the answer exceeds {MAX_ANSWER_BYTES >> 20} MB")
    if 300 <= status < 400:
        raise StfError(f"{what}: HTTP {status} redirect to {_origin(location)} refused "
                       f"(the token is only sent to {base_url}; put the STF's own address in the connection)")
    try:
        decoded = json.loads(answer) if answer.strip() else {}
    except ValueError:
        decoded = None
        if 200 <= status < 300:
            raise StfError(f"{what}: HTTP {status} with an answer that is not JSON") from None
    if not 200 <= status < 300:
        raise StfError(f"{what}: HTTP {status}: {_description(decoded)}")
    return decoded


def _origin(location: str) -> str:
    """Where a redirect points, without any user, password, path or query (never shown)."""
    try:
        url = urllib.parse.urlsplit(location)
        host = url.hostname
        port = f":{url.port}" if url.port else ""
    except ValueError:
        return "an invalid address"
    return f"{url.scheme}://{host}{port}" if url.scheme and host else "a relative address"


def _description(answer: Any) -> str:
    description = answer.get("description") if isinstance(answer, dict) else None
    return _one_line(description) if isinstance(description, str) and description.strip() else "no description"


def token() -> str:
    value = os.environ.get(TOKEN_ENV, "").strip()
    if not value:
        raise HarnessError(f"an stf:// device needs an STF access token in ${TOKEN_ENV} "
                           "(STF: Settings → Keys → Access tokens)")
    return value


class StfLease:
    """One leased phone: `address` is where `adb connect` reaches it; release() gives it back."""

    def __init__(self, client: StfClient, serial: str, address: str) -> None:
        self.client, self.serial, self.address = client, serial, address
        self.released = False
        self.problems: list[str] = []  # why releasing failed, for the run's notes

    @classmethod
    def acquire(cls, connection: str) -> StfLease:
        target = StfTarget.parse(connection)
        client = StfClient(target.base_url, token())
        errors: list[str] = []
        for serial in _candidates(client, target):
            try:
                client.reserve(serial)
            except StfError as exc:
                errors.append(str(exc))
                continue
            return cls._connected(client, serial)
        wanted = f"serial {target.serial}" if target.serial else f"model {target.model!r}"
        raise HarnessError(f"STF at {target.base_url}: no device with {wanted} could be reserved"
                           + (f" ({'; '.join(errors)})" if errors else " (none present, ready and unused)"))

    @classmethod
    def _connected(cls, client: StfClient, serial: str) -> StfLease:
        lease = cls(client, serial, "")
        try:
            lease.address = client.remote_connect(serial)
        except BaseException:
            lease.release()
            raise
        log.info("STF: leased %s at %s", serial, lease.address)
        return lease

    def release(self) -> None:
        """Disconnect and give the phone back; each call is tried even if the other fails. A failure
        is warned about loudly and kept in `problems` (the phone stays reserved on the farm)."""
        if self.released:
            return
        self.released = True
        for call in (self.client.disconnect, self.client.release):
            try:
                call(self.serial)
            except StfError as exc:
                problem = (f"STF lease of {self.serial} not released: {exc} — the phone stays reserved until "
                           f"STF's idle timeout ({LEASE_MS // 60000} min); release it in STF's web UI")
                self.problems.append(problem)
                log.warning("%s", problem)


def _candidates(client: StfClient, target: StfTarget) -> list[str]:
    if target.serial is not None:
        return [target.serial]
    wanted = str(target.model).lower()
    return [d.serial for d in client.devices()
            if (d.model or "").lower() == wanted and d.present and d.ready and not d.using and not d.owner]


class LeasedTransport:
    """A transport over a leased phone: closing it closes the connection, then releases the lease."""

    def __init__(self, inner: Any, lease: StfLease) -> None:
        self.inner, self.lease = inner, lease

    def shell(self, cmd: str, timeout: float) -> Any:
        return self.inner.shell(cmd, timeout)

    def push(self, local: Any, remote: str, timeout: float) -> None:
        self.inner.push(local, remote, timeout)

    def pull(self, remote: str, local: Any, timeout: float) -> None:
        self.inner.pull(remote, local, timeout)

    def abort(self) -> None:
        self.inner.abort()

    def close(self) -> None:
        try:
            self.inner.close()
        finally:
            self.lease.release()
