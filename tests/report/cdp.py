"""Headless Chromium driven over its DevTools protocol (`--remote-debugging-pipe`: NUL-separated JSON
on fds 3 and 4, no websocket library needed), for tests that must wait for a page condition rather
than for a time budget."""

from __future__ import annotations

import base64
import json
import os
import queue
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

PIPE_IN, PIPE_OUT = 3, 4  # Chromium reads commands from fd 3 and writes replies and events to fd 4


class DevToolsError(RuntimeError):
    pass


class Browser:
    """One headless Chromium process and one page (target) attached in flat-session mode."""

    def __init__(self, chromium: str, flags: list[str], profile: Path, stderr: Path) -> None:
        to_chrome, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome = os.pipe()
        high = [os.dup(fd) for fd in (to_chrome, from_chrome)]  # out of the way of fds 3 and 4 themselves
        for fd in (to_chrome, from_chrome):
            os.close(fd)
        self._log = open(stderr, "wb")  # noqa: SIM115 - closed in close()

        def child_fds() -> None:
            os.dup2(high[0], PIPE_IN)
            os.dup2(high[1], PIPE_OUT)

        self.process = subprocess.Popen(  # noqa: S603 - a fixed browser binary and flags
            [chromium, *flags, f"--user-data-dir={profile}", "--remote-debugging-pipe", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self._log,
            pass_fds=(PIPE_IN, PIPE_OUT), preexec_fn=child_fds)  # noqa: PLW1509 - single-threaded test set-up
        for fd in high:
            os.close(fd)
        self._next_id = 0
        self._replies: dict[int, queue.Queue[dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self.events: list[dict[str, Any]] = []
        threading.Thread(target=self._read, daemon=True).start()
        self.session = ""

    def _read(self) -> None:
        buffer = b""
        with open(self._from_chrome, "rb", buffering=0) as stream:
            while chunk := stream.read(65536):
                buffer += chunk
                *messages, buffer = buffer.split(b"\0")
                for raw in messages:
                    self._dispatch(json.loads(raw))

    def _dispatch(self, message: dict[str, Any]) -> None:
        with self._lock:
            reply = self._replies.get(message.get("id", -1))
            if reply is None:
                self.events.append(message)
        if reply is not None:
            reply.put(message)

    def send(self, method: str, params: dict[str, Any] | None = None, *, timeout: float = 300,
             session: bool = True) -> dict[str, Any]:
        """A command's result (raises DevToolsError on a protocol error or when the browser died)."""
        with self._lock:
            self._next_id += 1
            ident = self._next_id
            self._replies[ident] = queue.Queue()
        message: dict[str, Any] = {"id": ident, "method": method, "params": params or {}}
        if session and self.session:
            message["sessionId"] = self.session
        os.write(self._to_chrome, json.dumps(message).encode() + b"\0")
        try:
            reply = self._replies[ident].get(timeout=timeout)
        except queue.Empty:
            raise DevToolsError(f"{method}: no reply in {timeout} s (browser exit code {self.process.poll()})") from None
        if "error" in reply:
            raise DevToolsError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    def open(self, url: str, width: int = 1400, height: int = 1000) -> None:
        """A new page at `url`, attached; console, exceptions and network requests are recorded as events."""
        target = self.send("Target.createTarget", {"url": "about:blank"}, session=False)["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True},
                                 session=False)["sessionId"]
        for domain in ("Runtime", "Log", "Network", "Page"):
            self.send(f"{domain}.enable")
        self.send("Emulation.setDeviceMetricsOverride", {"width": width, "height": height, "deviceScaleFactor": 1,
                                                          "mobile": False})
        self.navigated_at = time.monotonic()  # for a caller timing the page itself, not the set-up above
        self.send("Page.navigate", {"url": url})

    def evaluate(self, expression: str) -> Any:
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in result:
            raise DevToolsError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 600, poll: float = 0.2) -> Any:
        """Poll `expression` until it is truthy (its value) — a DOM condition; `timeout` is only a
        generous upper bound against a page that never gets there."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise DevToolsError(f"{expression} still false after {timeout} s")
            time.sleep(poll)

    def dom(self) -> str:
        return str(self.evaluate("document.documentElement.outerHTML"))

    def screenshot(self, path: Path, width: int, height: int) -> None:
        self.send("Emulation.setDeviceMetricsOverride", {"width": width, "height": height, "deviceScaleFactor": 1,
                                                          "mobile": False})
        data = self.send("Page.captureScreenshot", {"format": "png"})["data"]
        path.write_bytes(base64.b64decode(data))

    def console_messages(self) -> list[str]:
        """What the page logged (console API, uncaught exceptions, browser log entries about it)."""
        with self._lock:
            events = list(self.events)
        out = []
        for event in events:
            params = event.get("params", {})
            if event.get("method") == "Runtime.consoleAPICalled":
                out.append(f"console.{params.get('type')}: {[a.get('value') for a in params.get('args', [])]}")
            elif event.get("method") == "Runtime.exceptionThrown":
                out.append(f"exception: {params.get('exceptionDetails', {}).get('text')}")
            elif event.get("method") == "Log.entryAdded":
                out.append(f"log.{params.get('entry', {}).get('level')}: {params.get('entry', {}).get('text')}")
        return out

    def requests(self) -> list[str]:
        """URLs the page asked for (Network.requestWillBeSent), data: and about: URLs aside."""
        with self._lock:
            events = list(self.events)
        urls = [e["params"]["request"]["url"] for e in events if e.get("method") == "Network.requestWillBeSent"]
        return [u for u in urls if not u.startswith(("data:", "about:"))]

    def close(self) -> None:
        try:
            self.send("Browser.close", session=False, timeout=30)
        except DevToolsError:
            pass
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._to_chrome)
        self._log.close()

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
