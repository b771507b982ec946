"""Device leases from a DeviceFarmer STF server (its REST API, doc/API.md of DeviceFarmer/stf).

A profile's `connection: stf://HOST[:PORT]/SERIAL` leases that phone, `stf://HOST[:PORT]?model=NAME`
any present, ready, unused phone of that model (`GET /api/v1/devices`). `stf+http://` talks plain
HTTP (a lab-internal STF, or the simulator); `stf://` HTTPS. The token comes from $STF_TOKEN.

A lease: reserve (`POST /api/v1/user/devices {"serial"}`), `POST .../remoteConnect` for an
`adb connect` address, and on release `DELETE .../remoteConnect` then `DELETE /api/v1/user/devices/
SERIAL`, both tried on every path (the lease is released when acquiring fails half-way too).
"""

from __future__ import annotations

import json
import logging
import os
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

from harness.errors import HarnessError

log = logging.getLogger("harness.devices.android")
TOKEN_ENV = "STF_TOKEN"
SCHEMES = {"stf": "https", "stf+http": "http"}
LEASE_MS = 15 * 60 * 1000  # STF frees an idle reservation after this (the lease's `timeout`)


def is_stf(connection: str) -> bool:
    return connection.split("://", 1)[0] in SCHEMES and "://" in connection


@dataclass(frozen=True)
class StfTarget:
    """A parsed stf:// connection: the API's base URL and a serial or a model to match."""

    base_url: str
    serial: str | None
    model: str | None

    @classmethod
    def parse(cls, connection: str) -> "StfTarget":
        url = urllib.parse.urlsplit(connection)
        serial = urllib.parse.unquote(url.path.strip("/")) or None
        model = (urllib.parse.parse_qs(url.query).get("model") or [None])[0]
        if url.scheme not in SCHEMES or not url.netloc or (serial is None) == (model is None) or "/" in (serial or ""):
            raise HarnessError(f"connection {connection!r}: expected stf://HOST[:PORT]/SERIAL or "
                               "stf://HOST[:PORT]?model=NAME (stf+http:// for plain HTTP)")
        return cls(f"{SCHEMES[url.scheme]}://{url.netloc}", serial, model)


class StfError(HarnessError):
    """The STF server refused or failed a call (its description is in the message)."""


class StfClient:
    """The few calls of STF's REST API a lease needs (Bearer token auth)."""

    def __init__(self, base_url: str, token: str, timeout: float = 20.0) -> None:
        self.base_url, self._token, self.timeout = base_url.rstrip("/"), token, timeout

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"{self.base_url}/api/v1{path}", data=data, method=method, headers={
            "Authorization": f"Bearer {self._token}", "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            raise StfError(f"STF {method} {path}: HTTP {exc.code}: {_description(exc)}") from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise StfError(f"STF {method} {path} at {self.base_url}: {getattr(exc, 'reason', exc)}") from None

    def devices(self) -> list[dict[str, Any]]:
        return self.call("GET", "/devices?fields=serial,model,present,ready,using,owner").get("devices", [])

    def reserve(self, serial: str) -> None:
        self.call("POST", "/user/devices", {"serial": serial, "timeout": LEASE_MS})

    def remote_connect(self, serial: str) -> str:
        url = self.call("POST", f"/user/devices/{urllib.parse.quote(serial, safe='')}/remoteConnect").get(
            "remoteConnectUrl")
        if not isinstance(url, str) or not url:
            raise StfError(f"STF remoteConnect of {serial}: no remoteConnectUrl in the answer")
        return url

    def disconnect(self, serial: str) -> None:
        self.call("DELETE", f"/user/devices/{urllib.parse.quote(serial, safe='')}/remoteConnect")

    def release(self, serial: str) -> None:
        self.call("DELETE", f"/user/devices/{urllib.parse.quote(serial, safe='')}")


def _description(exc: urllib.error.HTTPError) -> str:
    try:
        return str(json.loads(exc.read()).get("description") or exc.reason)
    except (ValueError, AttributeError, OSError):
        return str(exc.reason)


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

    @classmethod
    def acquire(cls, connection: str) -> "StfLease":
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
    def _connected(cls, client: StfClient, serial: str) -> "StfLease":
        lease = cls(client, serial, "")
        try:
            lease.address = client.remote_connect(serial)
        except BaseException:
            lease.release()
            raise
        log.info("STF: leased %s at %s", serial, lease.address)
        return lease

    def release(self) -> None:
        """Disconnect and give the phone back; each call is tried even if the other fails."""
        if self.released:
            return
        self.released = True
        for call in (self.client.disconnect, self.client.release):
            try:
                call(self.serial)
            except StfError as exc:
                log.warning("STF: releasing %s: %s", self.serial, exc)


def _candidates(client: StfClient, target: StfTarget) -> list[str]:
    if target.serial is not None:
        return [target.serial]
    return [d["serial"] for d in client.devices()
            if str(d.get("model", "")).lower() == str(target.model).lower()
            and d.get("present") and d.get("ready") and not d.get("using") and not d.get("owner")]


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

    def close(self) -> None:
        try:
            self.inner.close()
        finally:
            self.lease.release()
