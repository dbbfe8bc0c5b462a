"""The async twin of :class:`~sharedstate.backends.base.Backend`: the same operations,
awaited, one instance per store and event loop.

An async backend is made from the store's sync backend, which has already parsed the URL
(host, credentials, options, SQL statements, scripts): the twin reuses those settings and
adds only the async I/O. What the engine needs to know about a store (``loses_replies``,
``reads_are_cheap``, ``counter_range``) it reads from the sync backend, so both drivers
make the same decisions for the same URL.

Each request is bounded by what its step's deadline leaves (``time_left()``, set by the
driver as for the sync backends); an error raised once the request may have reached the
store is marked with :func:`~sharedstate.errors.mark_sent`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import Any

from ...backends.base import Backend, PartsWrite, Record


class AsyncBackend(ABC):
    """Versioned records and counters, awaited; see the sync interface for each method."""

    def __init__(self, sync: Backend) -> None:
        self.sync = sync

    @abstractmethod
    async def load(self, key: str, since: int | None = None) -> Record | None: ...

    @abstractmethod
    async def compare_and_set(
        self, key: str, expected: int | None, data: bytes, parts: PartsWrite | None = None
    ) -> tuple[bool, Record | None]: ...

    @abstractmethod
    async def counter_add(self, key: str, delta: int, call_id: str | None = None) -> int: ...

    @abstractmethod
    async def counter_outcome(self, key: str, call_id: str) -> Any: ...

    @abstractmethod
    async def counter_get(self, key: str) -> int: ...

    @abstractmethod
    async def counter_set(self, key: str, value: int) -> None: ...

    @abstractmethod
    async def delete(self, key: str) -> bool: ...

    @abstractmethod
    async def keys(self, prefix: str) -> Iterable[str]: ...

    async def aclose(self) -> None:  # noqa: B027 - optional: nothing to close by default
        """Closes this event loop's connections; the store opens them again if used."""

    def describe(self) -> str:
        return self.sync.describe()


__all__ = ["AsyncBackend"]
