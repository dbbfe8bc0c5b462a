"""``state``: the project's store, configured from its settings, made on first use.

    from sharedstate.django import state

    global_obj = state.object("global_obj", SomeObj, 0)   # was: global_obj = SomeObj(0)

Why it is built this way:

* **Safe at import time.** ``views.py`` is imported while Django loads the URLconf, maybe
  in gunicorn's master before it forks (``--preload``), maybe by a script that has not
  configured settings yet. So ``state.object(...)`` returns a stand-in that reads nothing
  and opens nothing; the settings are read, and the store made, at the first call.
* **One store per project, per process.** Django has one settings object per process, so
  ``state`` is a module global holding one :class:`~sharedstate.Store`. Its connections
  open lazily in each process and again after ``fork``: a store used in the master is
  still safe in every worker.
* **Follows ``override_settings``.** When a ``SHAREDSTATE_*`` setting or ``DATABASES``
  changes (Django's ``setting_changed`` signal: tests), the store is dropped and the next
  call makes it anew from the new settings, so a test never writes into another's store.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from ..bounded import trim
from ..declared import (
    DeclaredCounter,
    DeclaredLock,
    DeclaredObject,
    StoreHolder,
    check_declared_name,
    resolve_target,
)
from ..shapes import shape_of
from ..store import Store
from .conf import StoreSettings, store_settings

T = TypeVar("T")

#: settings whose change makes a new store (``DATABASES``: the default store derives from it)
WATCHED_SETTINGS = frozenset(
    {
        "SHAREDSTATE_URL",
        "SHAREDSTATE_PREFIX",
        "SHAREDSTATE_CODEC",
        "SHAREDSTATE_SECRET_KEY",
        "SHAREDSTATE_TIMEOUT",
        "DATABASES",
        "BASE_DIR",
    }
)


class SettingsStore(StoreHolder):
    """The store the settings name, read once, at first use."""

    def __init__(self) -> None:
        super().__init__()
        self._settings: StoreSettings | None = None

    @property
    def settings(self) -> StoreSettings:
        if self._settings is None:
            self._settings = store_settings()
        return self._settings

    @property
    def url(self) -> str:
        return self.settings.url

    def connect_options(self) -> dict[str, Any]:
        return self.settings.connect_options()


class DjangoState:
    """Objects, counters, locks and transactions on the project's store.

    Every method returns at once; nothing reads the settings or connects before the first
    call on what it returned.
    """

    def __init__(self) -> None:
        self._holder = SettingsStore()
        self._holder_lock = threading.Lock()
        self._declared: dict[str, DeclaredObject[Any]] = {}

    def _current(self) -> SettingsStore:
        return self._holder

    # -- declarations --------------------------------------------------------------------
    def object(self, name: str, cls: type[T], *args: Any, **kwargs: Any) -> T:
        """The shared object ``name`` of class ``cls``; ``cls(*args, **kwargs)`` makes its
        first state, only when none is stored."""
        if not isinstance(cls, type):
            raise TypeError(f"state.object({name!r}, ...) needs a class, got {cls!r}")
        check_declared_name(name)
        shape_of(cls)  # a class whose state cannot be kept is refused here, at declaration
        declared: DeclaredObject[Any] = DeclaredObject(self._current, name, cls, args, kwargs)
        self._declared.pop(name, None)
        self._declared[name] = declared
        trim(self._declared)
        return declared  # type: ignore[return-value]

    def counter(self, name: str) -> DeclaredCounter:
        """The shared integer counter ``name`` (0 until first changed)."""
        check_declared_name(name)
        return DeclaredCounter(self._current, name)

    def lock(self, name: str, ttl: float = 10.0, timeout: float | None = None) -> DeclaredLock:
        """A leased, fenced lock ``name`` (see :meth:`sharedstate.Store.lock`)."""
        return DeclaredLock(self._current, name, ttl, timeout)

    @contextmanager
    def transaction(self, target: str | Any, ttl: float | None = None) -> Iterator[Any]:
        """Several calls on one object as one atomic step (see
        :meth:`sharedstate.Store.transaction`); takes the object or its name."""
        holder = self._holder
        target = resolve_target(holder, target, self._declared)
        with holder.store.transaction(target, ttl=ttl) as instance:
            yield instance

    # -- the store -----------------------------------------------------------------------
    @property
    def store(self) -> Store:
        """The project's :class:`~sharedstate.Store` (made now if it is not yet)."""
        return self._holder.store

    @property
    def settings(self) -> StoreSettings:
        """What the settings ask for (read now if they were not yet)."""
        return self._holder.settings

    @property
    def declared(self) -> dict[str, str]:
        """Names declared with :meth:`object` in this process -> their class's name."""
        return {
            name: object.__getattribute__(obj, "_cls").__qualname__ for name, obj in self._declared.items()
        }

    def reload(self) -> None:
        """Forgets the store and the settings read: the next call reads them again."""
        with self._holder_lock:
            old, self._holder = self._holder, SettingsStore()
        old.close()

    def close(self) -> None:
        """Closes this process's connections (they reopen on next use)."""
        self._holder.close()

    def __repr__(self) -> str:
        return "<sharedstate.django.state>"


state = DjangoState()


def _setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting in WATCHED_SETTINGS:
        state.reload()


def _watch_settings() -> None:
    """Connects the ``setting_changed`` receiver (a signal connection reads no setting)."""
    from django.core.signals import setting_changed

    setting_changed.connect(_setting_changed, dispatch_uid="sharedstate.django.settings")


_watch_settings()

__all__ = ["DjangoState", "state"]
