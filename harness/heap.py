"""Keeping Python's cyclic garbage collector off what the heavy imports leave behind.

TensorFlow, Keras, TFMOT and torch load millions of objects that live as long as the process. CPython's
full (generation 2) collection walks every one of them each time it runs, and while models are built and
converted it runs often: a cold `bench run` of tests/data/tiny.yaml spent 2.4 of its 8.0 s there (2-core
AMD EPYC). `settle` moves what is alive after a batch of new modules to the permanent generation
(`gc.freeze`), which collections skip: the same run then took 6.2 s, 0.9 s of it collecting. Frozen objects
are still freed by reference counting; only cyclic garbage among them stays, and freezing happens only
after imports, a few times a process.
"""

from __future__ import annotations

import gc
import sys
import threading

NEW_MODULES = 300  # a batch of imports worth settling (TensorFlow alone brings about 4,000 modules)

_settled = 0  # how many modules were loaded at the last settle
_lock = threading.Lock()


def settle() -> bool:
    """After at least NEW_MODULES new imports since the last time: collect, then freeze what survives.
    Cheap otherwise (a length check); call it where a process is between units of work. True: it froze."""
    global _settled
    if len(sys.modules) - _settled < NEW_MODULES:
        return False
    with _lock:
        if len(sys.modules) - _settled < NEW_MODULES:
            return False
        gc.collect()
        gc.freeze()
        _settled = len(sys.modules)
    return True
