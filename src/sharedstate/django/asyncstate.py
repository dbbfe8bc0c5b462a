"""``astate``: the project's store for ``async def`` views, on sharedstate's async API.

    from sharedstate.django import astate

    global_obj = astate.object("global_obj", SomeObj, 0)

    async def home(request):
        return render(request, "counter/index.html", {"number": await global_obj.query()})

The same settings as ``state`` (:func:`sharedstate.django.conf.store_settings`: the same
URL, the default derived from ``DATABASES``, the same checks), the same declarations at
import time, the same class with plain synchronous methods: only the call is awaited, so
an ASGI worker's event loop serves other requests while the store answers. ``state`` and
``astate`` on one name are one object: sync and async views may share it.

Why a second object rather than awaitable methods on ``state``: a sync view must not get an
awaitable, and an async view must never block its event loop on a sync store call, so each
kind of view gets a store made for it. The async store is per process and per event loop
(:class:`~sharedstate.AsyncStore`), so ``astate`` is safe under gunicorn ``--preload``,
uvicorn ``--workers`` and Django's ``async_to_sync`` alike.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from ..aio import AsyncStore
from ..declared import (
    AsyncStoreHolder,
    DeclaredAsyncCounter,
    DeclaredAsyncLock,
    check_declared_name,
    resolve_target,
)
from .state import WATCHED_SETTINGS, DjangoState, SettingsStore


class AsyncSettingsStore(AsyncStoreHolder, SettingsStore):
    """The async store the settings name, made at first use (making it opens nothing)."""

    def close(self) -> None:
        """Nothing to do synchronously: each event loop's connections go with it (or
        ``await astate.aclose()`` in the loop that used them)."""


class AsyncDjangoState(DjangoState):
    """Objects, counters, locks and transactions on the project's store, awaited.

    ``await obj.method(...)``, ``await obj.attribute``, ``await counter.incr()``,
    ``async with lock as lease:``, ``async with astate.transaction(obj) as o:``.
    """

    def __init__(self) -> None:
        self._holder = AsyncSettingsStore()
        self._holder_lock = threading.Lock()
        self._declared = {}

    def counter(self, name: str) -> DeclaredAsyncCounter:
        """The shared integer counter ``name``; its operations are awaited."""
        check_declared_name(name)
        return DeclaredAsyncCounter(self._current, name)

    def lock(self, name: str, ttl: float = 10.0, timeout: float | None = None) -> DeclaredAsyncLock:  # type: ignore[override]
        """A leased, fenced lock ``name``: ``async with astate.lock("report") as lease:``."""
        return DeclaredAsyncLock(self._current, name, ttl, timeout)

    @asynccontextmanager
    async def transaction(  # type: ignore[override]  # the async twin of DjangoState's
        self, target: str | Any, ttl: float | None = None
    ) -> AsyncIterator[Any]:
        """Several calls on one object as one atomic step (the calls inside are plain)."""
        holder = self._holder
        target = resolve_target(holder, target, self._declared)
        async with holder.store.transaction(target, ttl=ttl) as instance:  # type: ignore[attr-defined]
            yield instance

    @property
    def store(self) -> AsyncStore:  # type: ignore[override]
        """The project's :class:`~sharedstate.AsyncStore` (made now if it is not yet)."""
        return self._holder.store  # type: ignore[return-value]

    def reload(self) -> None:
        """Forgets the store and the settings read; connections go with their event loops."""
        with self._holder_lock:
            self._holder = AsyncSettingsStore()

    async def aclose(self) -> None:
        """Closes this event loop's connections (they reopen on next use)."""
        await self._holder.aclose()  # type: ignore[attr-defined]

    def __repr__(self) -> str:
        return "<sharedstate.django.astate>"


astate = AsyncDjangoState()


def _setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting in WATCHED_SETTINGS:
        astate.reload()


def _watch_settings() -> None:
    from django.core.signals import setting_changed

    setting_changed.connect(_setting_changed, dispatch_uid="sharedstate.django.async-settings")


_watch_settings()

__all__ = ["AsyncDjangoState", "astate"]
