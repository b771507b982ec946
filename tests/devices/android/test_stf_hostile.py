"""The STF client against hostile servers on 127.0.0.1: redirects, answers of any shape and status,
a server that dribbles bytes, a farm that will not take its phone back, malformed stf:// URLs.
Whatever the server does, the client returns checked data or raises a one-line StfError."""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.devices import load_device
from harness.devices.android.sim.stf import StfSimulator
from harness.devices.android.stf import StfClient, StfError, StfLease, StfTarget
from harness.errors import ConfigError, HarnessError

pytestmark = pytest.mark.slow  # runs suites through STF and adb against the simulators


@dataclass
class Reply:
    status: int = 200
    body: bytes = b"{}"
    headers: dict[str, str] = field(default_factory=dict)
    dribble_s: float | None = None  # send the body one byte at a time, this far apart, without end


@dataclass
class Scripted:
    """A loopback HTTP server that answers every request with `reply` and keeps what it was sent."""

    reply: Reply = field(default_factory=Reply)
    seen: list[tuple[str, str, str]] = field(default_factory=list)  # (method, path, Authorization)
    stop: threading.Event = field(default_factory=threading.Event)

    def handler(self) -> type[BaseHTTPRequestHandler]:
        script = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                script.seen.append((self.command, self.path, self.headers.get("Authorization", "")))
                reply = script.reply
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                if reply.dribble_s is None:
                    self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                if reply.dribble_s is None:
                    self.wfile.write(reply.body)
                    return
                while not script.stop.wait(reply.dribble_s):  # until the client gives up
                    self.wfile.write(b" ")
                    self.wfile.flush()

            do_GET = do_POST = do_DELETE = _serve

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


@pytest.fixture
def server() -> Iterator[tuple[Scripted, int]]:
    script = Scripted()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), script.handler())
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield script, httpd.server_address[1]
    script.stop.set()
    httpd.shutdown()
    httpd.server_close()


def test_a_redirect_to_another_origin_never_gets_the_token(server: tuple[Scripted, int]) -> None:
    target, target_port = server
    origin = Scripted()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), origin.handler())
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        for status in (301, 302, 303, 307, 308):
            origin.reply = Reply(status, b"", {"Location": f"http://user:pw@127.0.0.1:{target_port}/api/v1/devices"})
            client = StfClient(f"http://127.0.0.1:{httpd.server_address[1]}", "secret-token", timeout=10)
            with pytest.raises(StfError, match=rf"HTTP {status} redirect to http://127.0.0.1:{target_port} refused") as info:
                client.devices()
            assert "pw" not in str(info.value) and "secret-token" not in str(info.value)
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert [auth for _, _, auth in origin.seen] == ["Bearer secret-token"] * 5
    assert target.seen == []  # the redirect target was never contacted


def test_a_dribbling_server_is_cut_off_at_the_total_deadline(server: tuple[Scripted, int]) -> None:
    script, port = server
    script.reply = Reply(200, dribble_s=0.2)  # a byte every 0.2 s: no socket timeout would ever fire
    client = StfClient(f"http://127.0.0.1:{port}", "t", timeout=1.0)
    with pytest.raises(StfError, match=r"STF GET /devices\?.* no complete answer within 1 s"):
        client.devices()


@pytest.mark.parametrize(("body", "message"), [
    (b"[]", "unexpected answer: the answer: Input should be a valid dictionary"),
    (b"5", "unexpected answer: the answer: Input should be a valid dictionary"),
    (b'{"devices": "xyz"}', "unexpected answer: devices: Input should be a valid list"),
    (b'{"devices": [{"model": "Sim A"}]}', "unexpected answer: devices.0.serial: Field required"),
    (b'{"devices": [{"serial": 5}]}', "unexpected answer: devices.0.serial: Input should be a valid string"),
    (b"<html>", "HTTP 200 with an answer that is not JSON"),
])
def test_wrong_shapes_are_one_line_errors(server: tuple[Scripted, int], monkeypatch: pytest.MonkeyPatch,
                                          body: bytes, message: str) -> None:
    script, port = server
    script.reply = Reply(200, body)
    monkeypatch.setenv("STF_TOKEN", "t")
    with pytest.raises(StfError, match=message) as info:
        StfLease.acquire(f"stf+http://127.0.0.1:{port}?model=Sim%20A")
    assert "\n" not in str(info.value)


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
                    max_leaves=8)
FIELDS = st.sampled_from(["devices", "serial", "model", "present", "ready", "using", "owner", "remoteConnectUrl",
                          "description", "success"])
ANSWERS = st.recursive(JSON, lambda inner: st.dictionaries(FIELDS, inner | st.lists(inner, max_size=3), max_size=4),
                       max_leaves=12)
BODIES = ANSWERS.map(lambda value: json.dumps(value).encode()) | st.binary(max_size=40)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(status=st.integers(100, 999), body=BODIES)
def test_fuzz_any_answer_is_data_or_a_clean_error(server: tuple[Scripted, int], status: int, body: bytes) -> None:
    script, port = server
    script.reply = Reply(status, body, {"Location": "http://127.0.0.1:1/x"} if 300 <= status < 400 else {})
    client = StfClient(f"http://127.0.0.1:{port}", "t", timeout=10)
    for call in (client.devices, lambda: client.remote_connect("S"), lambda: client.reserve("S"),
                 lambda: client.release("S")):
        try:
            call()
        except StfError as exc:  # anything else (AttributeError, KeyError, TypeError...) fails the test
            assert "\n" not in str(exc) and str(exc).startswith("STF ")


def test_a_failed_release_is_loud_and_kept(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    with StfSimulator({"S1": ("127.0.0.1:5555", "Sim")}, token="t") as stf:
        monkeypatch.setenv("STF_TOKEN", "t")
        stf.fail.update({"DELETE remoteConnect": (500, "boom"), "DELETE user/devices": (500, "boom")})
        lease = StfLease.acquire(f"stf+http://127.0.0.1:{stf.port}/S1")
        with caplog.at_level(logging.WARNING, "harness.devices.android"):
            lease.release()
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 2 and all("S1" in w and "HTTP 500: boom" in w and "stays reserved" in w for w in warned)
    assert lease.problems == warned


@pytest.mark.parametrize(("url", "why"), [
    ("stf://host", "no serial and no ?model="),
    ("stf://host/a/b", "not one path segment"),
    ("stf://host/S?model=x", "not both"),
    ("stf://host:99999/S", "bad host or port"),
    ("stf://host:abc/S", "bad host or port"),
    ("stf://user:pw@host/S", "no user or password"),
    ("stf://host?model=", "no serial and no"),
    ("stf://host?modle=x", "the only query is one"),
    ("stf://host/S#x", "no #fragment"),
    ("stf:///S", "no host"),
])
def test_malformed_stf_urls_are_named(url: str, why: str) -> None:
    with pytest.raises(HarnessError, match=re.escape(why)):
        StfTarget.parse(url)


def test_bench_validate_names_file_line_and_field_of_a_bad_stf_url(tmp_path: Path) -> None:
    profile = tmp_path / "devices" / "farm.yaml"
    profile.parent.mkdir()
    profile.write_text(f"kind: adb\nbenchmark_binary: {tmp_path}/bm\nconnection: stf://host:99999/S\n")
    with pytest.raises(ConfigError) as info:
        load_device("farm", tmp_path / "suites")
    assert str(info.value).startswith(f"{profile}:3: connection:") and "bad host or port" in str(info.value)
    assert "\n" not in str(info.value)
    # a good one still loads (no network is touched by validation)
    profile.write_text(f"kind: adb\nbenchmark_binary: {tmp_path}/bm\nconnection: stf://host:7100?model=Pixel 7\n")
    assert load_device("farm", tmp_path / "suites").options.connection.endswith("Pixel 7")


def test_what_closing_a_device_could_not_do_goes_into_run_json_notes(tmp_path: Path) -> None:
    """A lease the STF server would not release (kept in the device's `notes`) is written into
    run.json's notes after the run's final status, once, whatever that status was."""
    from types import SimpleNamespace

    from harness.results import read_run_info, write_run_info
    from harness.runner.devices import RunDevices
    from harness.runner.lifecycle import keep_device_notes

    write_run_info(tmp_path, {"run_id": "r", "status": "interrupted", "notes": ["resumed: 1 cell kept"]})
    phone = SimpleNamespace(close=lambda: None, notes=["STF lease S1 not released (HTTP 500: boom)"])
    devices = RunDevices(tmp_path, load=lambda name, base_dir: phone)  # type: ignore[arg-type,return-value]
    devices.get("farm")
    devices.close(["farm"])
    devices.close(["farm"])  # closed once: said once
    keep_device_notes(tmp_path, devices.notes)
    keep_device_notes(tmp_path, devices.notes)
    info = read_run_info(tmp_path)
    assert info["status"] == "interrupted"
    assert info["notes"] == ["resumed: 1 cell kept", "device farm: STF lease S1 not released (HTTP 500: boom)"]
