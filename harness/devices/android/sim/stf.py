"""An STF API simulator: a loopback HTTP server speaking the part of DeviceFarmer STF's REST API
that device leases use (doc/API.md; status codes and descriptions as lib/units/api/controllers/
user.js answers them), serving ADB simulators' addresses as `remoteConnectUrl`.

    with StfSimulator({"sim-a": (sim.serial, "Sim A")}, token="t") as stf:
        connection = f"stf+http://127.0.0.1:{stf.port}/sim-a"

It keeps every call (`calls`) and who holds what (`owned`, `connected`), so tests can check a
lease is released on every path; `fail` makes one endpoint answer an error.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any


@dataclass
class _Phone:
    serial: str
    address: str  # the ADB simulator's host:port
    model: str
    present: bool = True
    ready: bool = True
    owner: str | None = None  # a user other than the token's holder ("someone-else"), or "me"
    connected: bool = False


@dataclass
class StfSimulator:
    phones: dict[str, tuple[str, str]]  # serial -> (adb address, model)
    token: str = "stf-simulator-token"
    fail: dict[str, tuple[int, str]] = field(default_factory=dict)  # "POST remoteConnect" -> (status, description)
    calls: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.state = {s: _Phone(s, address, model) for s, (address, model) in self.phones.items()}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.server_address[1]

    @property
    def owned(self) -> set[str]:
        return {p.serial for p in self.state.values() if p.owner == "me"}

    @property
    def connected(self) -> set[str]:
        return {p.serial for p in self.state.values() if p.connected}

    def start(self) -> StfSimulator:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        threading.Thread(target=self._server.serve_forever, name="stf-simulator", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> StfSimulator:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    # -- the API ----------------------------------------------------------------------------
    def answer(self, method: str, path: str, auth: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.calls.append(f"{method} {path}")
            if auth != f"Bearer {self.token}":
                return 401, {"success": False, "description": "Requires authentication"}
            return self._route(method, path.split("?", 1)[0], body)

    def _route(self, method: str, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if method == "GET" and path == "/api/v1/devices":
            return 200, {"success": True, "devices": [self._listed(p) for p in self.state.values()]}
        if method == "POST" and path == "/api/v1/user/devices":
            return self._reserve(str(body.get("serial", "")))
        match = re.fullmatch(r"/api/v1/user/devices/([^/]+)(/remoteConnect)?", path)
        if match is None:
            return 404, {"success": False, "description": "Not Found"}
        serial, remote = match.group(1), bool(match.group(2))
        key = f"{method} {'remoteConnect' if remote else 'user/devices'}"
        if key in self.fail:
            status, description = self.fail[key]
            return status, {"success": False, "description": description}
        if method == "POST" and remote:
            return self._remote_connect(serial)
        if method == "DELETE":
            return self._disconnect(serial) if remote else self._release(serial)
        return 404, {"success": False, "description": "Not Found"}

    def _listed(self, phone: _Phone) -> dict[str, Any]:
        owner = {"email": f"{phone.owner}@stf.example"} if phone.owner else None
        return {"serial": phone.serial, "model": phone.model, "present": phone.present, "ready": phone.ready,
                "using": phone.owner == "me", "owner": owner}

    def _reserve(self, serial: str) -> tuple[int, dict[str, Any]]:
        if "POST user/devices" in self.fail:
            status, description = self.fail["POST user/devices"]
            return status, {"success": False, "description": description}
        phone = self.state.get(serial)
        if phone is None:
            return 404, {"success": False, "description": "Device not found"}
        if phone.owner is not None or not (phone.present and phone.ready):
            return 403, {"success": False, "description": "Device is being used or not available"}
        phone.owner = "me"
        return 200, {"success": True, "description": "Device successfully added"}

    def _owned(self, serial: str) -> _Phone | tuple[int, dict[str, Any]]:
        phone = self.state.get(serial)
        if phone is None:
            return 404, {"success": False, "description": "Device not found"}
        if phone.owner != "me":
            return 403, {"success": False, "description": "Device is not owned by you or is not available"}
        return phone

    def _remote_connect(self, serial: str) -> tuple[int, dict[str, Any]]:
        phone = self._owned(serial)
        if not isinstance(phone, _Phone):
            return phone
        phone.connected = True
        return 200, {"success": True, "description": "Remote connection is enabled", "remoteConnectUrl": phone.address}

    def _disconnect(self, serial: str) -> tuple[int, dict[str, Any]]:
        phone = self._owned(serial)
        if not isinstance(phone, _Phone):
            return phone
        phone.connected = False
        return 200, {"success": True, "description": "Device remote disconnected successfully"}

    def _release(self, serial: str) -> tuple[int, dict[str, Any]]:
        phone = self.state.get(serial)
        if phone is None:
            return 404, {"success": False, "description": "Device not found"}
        if phone.owner != "me":
            return 403, {"success": False, "description": "You cannot release this device. Not owned by you"}
        phone.owner, phone.connected = None, False
        return 200, {"success": True, "description": "Device successfully removed"}


def _handler(sim: StfSimulator) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            try:
                body = json.loads(self.rfile.read(length) or b"{}") if length else {}
            except ValueError:
                body = {}
            status, answer = sim.answer(self.command, self.path, self.headers.get("Authorization", ""),
                                        body if isinstance(body, dict) else {})
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_DELETE = _serve

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
            pass

    return Handler
