"""Name → implementation registries for schemes, tasks, datasets, models and device kinds.

Each implementation registers itself where it is defined, so adding one is adding one file.
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil
import threading
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class UnknownName(KeyError):
    """Raised for a name that is not registered; the message lists close matches."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class Registry(Generic[T]):
    """A named collection of implementations of one kind ("scheme", "task", ...)."""

    def __init__(self, kind: str, package: str | None = None, base: type[T] | None = None) -> None:
        self.kind = kind
        self._base = base  # what every implementation subclasses (its defaults are the optional members)
        self._package = package  # imported lazily so each module can self-register
        self._items: dict[str, T] = {}
        self._summaries: dict[str, str] = {}
        self._loaded = package is None
        self._lock = threading.Lock()

    def register(self, name: str, summary: str = "") -> Callable[[type[T]], type[T]]:
        """Class decorator: register an instance of the class under `name` with a one-line summary."""

        def add(obj: type[T]) -> type[T]:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            if self._base is not None and not issubclass(obj, self._base):
                raise TypeError(f"{self.kind} {name!r}: {obj.__qualname__} does not subclass "
                                f"{self._base.__module__}.{self._base.__qualname__}")
            self._items[name] = obj()
            self._summaries[name] = summary or (getattr(obj, "__doc__", "") or "").strip().split("\n")[0]
            return obj

        return add

    def _load(self) -> None:
        with self._lock:  # threads (device workers) may ask at once; import every module first
            if self._loaded or self._package is None:
                return
            pkg = importlib.import_module(self._package)
            for info in pkgutil.iter_modules(pkg.__path__):
                if not info.name.startswith("_"):
                    importlib.import_module(f"{self._package}.{info.name}")
            self._loaded = True

    def get(self, name: str) -> T:
        """Return the implementation named `name`, or raise UnknownName with suggestions."""
        self._load()
        try:
            return self._items[name]
        except KeyError:
            raise UnknownName(self.unknown_message(name)) from None

    def unknown_message(self, name: str) -> str:
        self._load()
        close = difflib.get_close_matches(name, self._items, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        return f"unknown {self.kind} {name!r}{hint} (known: {', '.join(self.names())})"

    def registered(self) -> dict[str, T]:
        """The implementations registered so far, without importing the package's modules: for a
        module that derives entries from others while the registry is still loading it."""
        return dict(self._items)

    def names(self) -> list[str]:
        self._load()
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._items

    def summaries(self) -> Iterator[tuple[str, str]]:
        """(name, one-line summary) pairs, sorted by name."""
        self._load()
        for name in self.names():
            yield name, self._summaries[name]
