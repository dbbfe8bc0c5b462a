"""Async backends, one per store and event loop, made from the store's sync backend.

Redis and PostgreSQL have native async twins (``redis.asyncio``, psycopg's async
connection); SQLite, memcached and the manager client run their sync backend in a thread
of the store's own (see ``threaded.py`` for why); ``memory://`` runs inline.
"""

from __future__ import annotations

import importlib

from ...backends.base import Backend
from .base import AsyncBackend

#: sync backend class name -> (module, class) of its native async twin
NATIVE: dict[str, tuple[str, str]] = {
    "RedisBackend": ("redis", "AsyncRedisBackend"),
    "PostgresBackend": ("postgres", "AsyncPostgresBackend"),
}


def open_async_backend(sync: Backend) -> AsyncBackend:
    """The async backend for this event loop over ``sync`` (nothing connects yet)."""
    native = NATIVE.get(type(sync).__name__)
    if native is not None:
        module = importlib.import_module(f"{__name__}.{native[0]}")
        return getattr(module, native[1])(sync)
    from .threaded import InlineBackend, ThreadedBackend

    if type(sync).__name__ == "MemoryBackend":
        return InlineBackend(sync)
    return ThreadedBackend(sync)


__all__ = ["AsyncBackend", "open_async_backend"]
