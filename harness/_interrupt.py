"""SIGINT and SIGTERM during a run: stop promptly, keep what finished, never swallow the request.

The handler raises `RunInterrupted` where the main thread is, and also sets a flag. An exception
raised inside a destructor (TensorFlow's `__del__`, say) is swallowed by Python, so the runner also
calls `check()` between cells and stages: a swallowed interrupt still stops the run at the next one.
Work that a stop cuts short (a measurement whose process was killed, a conversion whose library
turned the interrupt into its own error) fails *because of* the stop: `cut()` turns such an error
back into the interrupt, so a cut cell is never recorded as failed. Within `deferred()` (a short
write that must not be torn, run.json's final status) a signal is only noted.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

_requested = threading.Event()
_signal: list[int] = []
_deferring: list[bool] = []  # non-empty inside deferred(): the handler only notes the request


class RunInterrupted(KeyboardInterrupt):
    """The run was asked to stop (Ctrl-C or SIGTERM); `exit_code` is 128 + the signal number."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def _handle(signum: int, frame: FrameType | None) -> None:
    _requested.set()
    _signal[:] = [signum]
    if not _deferring:
        raise RunInterrupted(signum)


def check() -> None:
    """Raise RunInterrupted if a stop was requested (also after an interrupt that was swallowed)."""
    if _requested.is_set():
        raise RunInterrupted(_signal[0] if _signal else signal.SIGINT)


def requested() -> bool:
    return _requested.is_set()


def cut(exc: BaseException) -> None:
    """Raise RunInterrupted (from `exc`) when a stop was requested: an error then is the stop cutting
    the work short (its measurement process killed, say), not a failure of the cell."""
    if _requested.is_set():
        raise RunInterrupted(_signal[0] if _signal else signal.SIGINT) from exc


@contextmanager
def deferred() -> Iterator[None]:
    """Within the block a signal is noted (check() raises it afterwards), never raised mid-write."""
    _deferring.append(True)
    try:
        yield
    finally:
        _deferring.pop()


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """Within the block, SIGINT and SIGTERM raise RunInterrupted (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, _handle) for s in (signal.SIGINT, signal.SIGTERM)}
    _requested.clear()
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
