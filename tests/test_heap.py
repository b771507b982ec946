"""harness.heap: the collector is kept off what imports loaded, once per batch of new modules."""

from __future__ import annotations

import gc
import importlib
import sys

import pytest

from harness import heap


def test_settle_freezes_after_a_batch_of_imports_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(heap, "NEW_MODULES", 1)
    heap.settle()  # whatever this process imported before the test
    assert heap.settle() is False  # nothing new since
    fresh = next(name for name in ("xml.dom.minidom", "wave", "mailbox", "tabnanny") if name not in sys.modules)
    importlib.import_module(fresh)
    frozen = gc.get_freeze_count()
    assert heap.settle() is True and gc.get_freeze_count() >= frozen
    assert heap.settle() is False
