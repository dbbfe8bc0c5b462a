"""Async backends that run the sync backend: in threads of the store's own (SQLite,
memcached, the manager client), or inline where nothing ever waits (``memory://``).

Why threads, and not a native async client:

* **SQLite** has no async API: every async SQLite driver (aiosqlite and the like) runs the
  C library in a thread too, adding a queue and a second future per statement. Ours runs
  the sync backend itself (its WAL set-up, conditional ``UPDATE``, short busy wait and
  connection pool) in threads of the store's own per event loop: one hop per request,
  and the same code as the sync store, so the two never disagree about the file.
  Measured (``benchmarks/sqlite_async_drivers.py``, a raw ``UPDATE ... RETURNING`` awaited
  in a loop, this project's 2-core machine): aiosqlite 13,000/s, one executor thread
  24,000/s, and 49,000/s inline, which blocks the loop for every statement (and for as
  long as another process holds the write lock), so it is not an option.
* **memcached**: the maintained async clients (aiomcache, emcache) do not speak what the
  sync backend relies on (``gets``/``cas`` with its timeouts and call-id records, SASL
  credentials) and each would be a second mapping of errors to keep true. The sync
  backend (pymemcache) in a thread keeps one.
* **the manager client** is ``multiprocessing.managers``, blocking by design.

A few threads per store and loop (``THREADS``, started only as requests overlap):
combining already leaves at most one request in flight per name and loop, so the threads
are there for *different* names, whose requests must not wait behind each other: a call
on one name stuck behind a locked database until its deadline would otherwise make the
next name's call start after its own deadline had passed. A request that waited for a
thread past its deadline is not sent at all (:class:`StoreTimeoutError`, did not happen).
The loop thread only hands a request over and awaits its future; it never blocks.

A request in the thread cannot be interrupted, so it is never abandoned either: the
driver awaits its answer, which the sync backend bounds by the call's deadline
(``time_left``, passed into the thread). So an embedded store, which keeps no call ids,
never has a write in doubt. Only when the awaiting task is cancelled (its caller went
away, or the loop is closing) does nobody read the answer: the request still ends in the
thread, the store stays consistent (a write is atomic), the engine's cache learns the new
version at its next conflict, and the cancelled caller learns nothing, as with any
cancelled call.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from ...backends.base import _DEADLINE, Backend, PartsWrite, Record, deadline_scope
from ...errors import StoreTimeoutError
from .base import AsyncBackend

T = TypeVar("T")


#: threads per store and event loop (see the module docstring)
THREADS = 4


def _in_scope(deadline: float | None, work: Callable[..., T], *args: Any) -> T:
    """Runs a request in the thread under its call's deadline; one whose deadline passed
    while it waited for the thread is not sent."""
    if deadline is None:
        return work(*args)
    if time.monotonic() >= deadline:
        raise StoreTimeoutError(
            "the request waited for the store's I/O thread past its call's deadline (see "
            "?timeout=); it was not sent"
        )
    with deadline_scope(deadline):
        return work(*args)


class ThreadedBackend(AsyncBackend):
    """The sync backend, run in the threads of this store and event loop."""

    def __init__(self, sync: Backend) -> None:
        super().__init__(sync)
        self._executor = ThreadPoolExecutor(THREADS, thread_name_prefix="sharedstate-io")

    async def _run(self, work: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._executor, _in_scope, _DEADLINE.get(), work, *args)
        # shielded: a cancelled caller stops waiting, the request still ends in the thread
        return await asyncio.shield(future)

    async def load(self, key: str, since: int | None = None) -> Record | None:
        return await self._run(self.sync.load, key, since)

    async def compare_and_set(
        self, key: str, expected: int | None, data: bytes, parts: PartsWrite | None = None
    ) -> tuple[bool, Record | None]:
        return await self._run(self.sync.compare_and_set, key, expected, data, parts)

    async def counter_add(self, key: str, delta: int, call_id: str | None = None) -> int:
        return await self._run(self.sync.counter_add, key, delta, call_id)

    async def counter_outcome(self, key: str, call_id: str) -> Any:
        return await self._run(self.sync.counter_outcome, key, call_id)

    async def counter_get(self, key: str) -> int:
        return await self._run(self.sync.counter_get, key)

    async def counter_set(self, key: str, value: int) -> None:
        await self._run(self.sync.counter_set, key, value)

    async def delete(self, key: str) -> bool:
        return await self._run(self.sync.delete, key)

    async def keys(self, prefix: str) -> Iterable[str]:
        return await self._run(lambda: list(self.sync.keys(prefix)))

    async def aclose(self) -> None:
        """Lets the thread finish what it runs, then ends it. The sync backend's
        connections stay: other event loops of this store may still use them."""
        await asyncio.to_thread(self._executor.shutdown, wait=True)


class InlineBackend(AsyncBackend):
    """``memory://``: a dict behind a lock held for microseconds; a thread hop would cost
    far more than the request, and nothing in it ever waits."""

    async def load(self, key: str, since: int | None = None) -> Record | None:
        return self.sync.load(key, since)

    async def compare_and_set(
        self, key: str, expected: int | None, data: bytes, parts: PartsWrite | None = None
    ) -> tuple[bool, Record | None]:
        return self.sync.compare_and_set(key, expected, data, parts)

    async def counter_add(self, key: str, delta: int, call_id: str | None = None) -> int:
        return self.sync.counter_add(key, delta, call_id)

    async def counter_outcome(self, key: str, call_id: str) -> Any:
        return self.sync.counter_outcome(key, call_id)

    async def counter_get(self, key: str) -> int:
        return self.sync.counter_get(key)

    async def counter_set(self, key: str, value: int) -> None:
        self.sync.counter_set(key, value)

    async def delete(self, key: str) -> bool:
        return self.sync.delete(key)

    async def keys(self, prefix: str) -> Iterable[str]:
        return list(self.sync.keys(prefix))


__all__ = ["InlineBackend", "ThreadedBackend"]
