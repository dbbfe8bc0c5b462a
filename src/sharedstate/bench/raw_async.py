"""The hand-written async operations ``sharedstate bench --async`` measures ours against.

One ``AsyncRawOperations`` per process (per event loop), shared by its tasks, as an app
would hold one client: the tasks of a process call it at once. Each acts on the same key
or row as the sync raw operations of its backend (``raw_<scheme>.py``), whose ``setup``
and ``read`` the harness uses before and after a window.

* Redis: one ``redis.asyncio`` client (its connection pool grows to one connection per
  concurrent task): ``INCR``, and the ``WATCH``/``GET``/``MULTI``/``SET``/``EXEC`` loop of
  redis-py's docs, retried when another client wrote the key in between.
* PostgreSQL: psycopg 3 ``AsyncConnection``\\ s in a small pool of our own (``POOL``
  connections per process; every statement needs a connection of its own while it runs):
  ``UPDATE ... RETURNING`` in autocommit, and a ``SELECT ... FOR UPDATE`` + ``UPDATE``
  transaction.
* SQLite (and the other stores with no async client): the sync raw operation run the way
  ours runs, in a thread of the process's own, awaited from the loop
  (``loop.run_in_executor`` on a one-thread executor), so the loop never blocks on the file.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .raw import RawOperations, raw_operations_class

#: PostgreSQL connections per process for the raw async operations
POOL = 8

AsyncOperation = Callable[[], Awaitable[int]]


class AsyncRawOperations:
    """Hand-written async equivalents of ours, for one process's event loop."""

    description = ""

    def __init__(self, url: str, name: str, tasks: int) -> None:
        self.url = url
        self.name = name
        self.tasks = tasks

    async def open(self) -> None:
        """Connect (called once, in the process and loop that will use it)."""

    async def object_call(self) -> int:
        """``self.param += 1; return self.param`` as an atomic read-modify-write."""
        raise NotImplementedError

    async def counter_incr(self) -> int:
        """The backend's native atomic increment."""
        raise NotImplementedError

    async def close(self) -> None:
        """Release the connections."""


class RedisAsyncRaw(AsyncRawOperations):
    description = "redis.asyncio: INCR; WATCH/GET/MULTI/SET/EXEC loop"
    async def open(self) -> None:
        import redis.asyncio

        self.client: Any = redis.asyncio.Redis.from_url(self.url.split("?", 1)[0])
        self.key = f"bench-raw:{self.name}"

    async def counter_incr(self) -> int:
        return int(await self.client.incr(self.key))

    async def object_call(self) -> int:
        import redis

        async with self.client.pipeline() as pipe:
            while True:
                try:
                    await pipe.watch(self.key)
                    value = int(await pipe.get(self.key)) + 1
                    pipe.multi()
                    pipe.set(self.key, value)
                    await pipe.execute()
                    return value
                except redis.WatchError:
                    continue

    async def close(self) -> None:
        await self.client.aclose()


class PostgresAsyncRaw(AsyncRawOperations):
    description = f"psycopg async, {POOL} connections a process: UPDATE ... RETURNING; SELECT ... FOR UPDATE + UPDATE"
    async def open(self) -> None:
        import psycopg

        self.idle: asyncio.Queue[Any] = asyncio.Queue()
        self.connections = [
            await psycopg.AsyncConnection.connect(self.url.split("?", 1)[0], autocommit=True)
            for _ in range(min(self.tasks, POOL))
        ]
        for connection in self.connections:
            self.idle.put_nowait(connection)

    async def counter_incr(self) -> int:
        connection = await self.idle.get()
        try:
            cursor = await connection.execute(
                "UPDATE bench_raw SET value = value + 1 WHERE name = %s RETURNING value", (self.name,)
            )
            (value,) = await cursor.fetchone()
            return int(value)
        finally:
            self.idle.put_nowait(connection)

    async def object_call(self) -> int:
        connection = await self.idle.get()
        try:
            async with connection.transaction():
                cursor = await connection.execute(
                    "SELECT value FROM bench_raw WHERE name = %s FOR UPDATE", (self.name,)
                )
                (value,) = await cursor.fetchone()
                await connection.execute(
                    "UPDATE bench_raw SET value = %s WHERE name = %s", (value + 1, self.name)
                )
            return int(value) + 1
        finally:
            self.idle.put_nowait(connection)

    async def close(self) -> None:
        for connection in self.connections:
            await connection.close()


class ThreadedRaw(AsyncRawOperations):
    """The sync raw operations of the backend, in one thread of this process's own."""

    description = "the sync raw operations in one thread a process, awaited (run_in_executor)"

    async def open(self) -> None:
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bench-raw")
        self.raw: RawOperations = await self._run(raw_operations_class(self.url.split("://", 1)[0]), self.url, self.name)

    async def _run(self, function: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.executor, function, *args)

    async def object_call(self) -> int:
        return int(await self._run(self.raw.object_call))

    async def counter_incr(self) -> int:
        return int(await self._run(self.raw.counter_incr))

    async def close(self) -> None:
        await self._run(self.raw.close)
        self.executor.shutdown()


def async_raw_class(scheme: str) -> type[AsyncRawOperations]:
    if scheme in ("redis", "rediss"):
        return RedisAsyncRaw
    if scheme in ("postgresql", "postgres"):
        return PostgresAsyncRaw
    raw_operations_class(scheme)  # refuses a scheme with no raw operations at all
    return ThreadedRaw
