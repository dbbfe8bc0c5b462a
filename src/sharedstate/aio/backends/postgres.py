"""``postgresql://`` for async code: psycopg 3's ``AsyncConnection``, one small pool per
store and event loop.

The twin of ``backends/postgres.py``: the same statements (``postgres_sql.STATEMENTS``, as
the sync backend formatted them for its ``?table=``; the parts' too), the same call log for counters (an
add and its id in one statement; ``counter_outcome`` fences or finds), the same record of
adds in doubt, and the same one mapping of psycopg's errors to ours (the sync backend's
``_translate``). Only the waits are awaited.

Connections: made in the calling task within ``?connect_timeout=`` (so a call learns why
it cannot connect, and a server that comes back is used at once), at most ``?pool_max=``
in use at once per loop, kept idle for reuse. Why not ``psycopg_pool.AsyncConnectionPool``:
its background tasks connect with a back-off and report only "no connection within N s",
and it would be one pool per loop anyway; a list of idle connections is all that is needed.
The tables are created once per process by the sync backend (its advisory lock makes
concurrent first connections of many processes take turns).

Time limits: every request (waiting for a free connection, connecting, the statement) is
bounded by what the call's deadline leaves; a connection whose statement timed out or was
cancelled half-way is closed (``SO_LINGER`` 0: nothing of it is delivered later, and no
server-side cancel is waited for), and the error is marked ``request_sent``. The server's own
``statement_timeout`` (a little under ``?timeout=``) cancels a slow statement there first,
which says for certain that it did not happen.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

import psycopg
from psycopg import waiting
from psycopg.pq import TransactionStatus

from ...backends.base import UNKNOWN, PartsWrite, Record, time_left
from ...backends.postgres import PostgresBackend
from ...backends.postgres_sql import (
    CALLS_KEPT_SECONDS,
    TRIM_AT_MOST,
    TRIM_EVERY,
    WaitTimeout,
    _abort_on_close,
    parts_record,
    parts_write,
)
from ...errors import SharedStateError
from .base import AsyncBackend
from .timeouts import within

T = TypeVar("T")
Pair = tuple["BoundedAsyncConnection", psycopg.AsyncCursor[Any]]


class BoundedAsyncConnection(psycopg.AsyncConnection[Any]):
    """An async psycopg connection whose every wait on the server ends by ``deadline``
    (the twin of the sync ``BoundedConnection``), and which is closed, not cancelled on
    the server, when its task is cancelled mid-statement.

    psycopg's own ``wait`` answers a cancelled task by asking the server to cancel the
    query and waiting up to 5 s for that, then 5 s for the reply: a stuck server would
    hold a cancelled caller (and any ``asyncio.timeout`` around it) for 10 s. Here the
    socket is closed at once (``SO_LINGER`` 0); the statement, if it reached the server,
    took effect or not, which is what a cancelled call's outcome is anyway."""

    deadline: float | None = None

    async def wait(self, gen: Any, interval: float = 0.1, timeout: float | None = None) -> Any:
        if timeout is None and self.deadline is not None:
            timeout = max(0.001, self.deadline - time.monotonic())
        try:
            return await waiting.wait_async(gen, self.pgconn.socket, interval=interval, timeout=timeout)
        except asyncio.CancelledError:
            self.pgconn.finish()
            raise


class AsyncPostgresBackend(AsyncBackend):
    """Records and counters in PostgreSQL, awaited on this event loop's connections."""

    sync: PostgresBackend

    def __init__(self, sync: PostgresBackend) -> None:  # type: ignore[override]
        super().__init__(sync)
        self._sql = sync._sql
        self._idle: list[Pair] = []
        self._slots = asyncio.Semaphore(max(sync.pool_max, 1))

    # -- connections ---------------------------------------------------------------------
    async def _connect(self) -> Pair:
        """A new connection, within ``?connect_timeout=`` and what the call's deadline
        leaves (the caller bounds this); the tables are made once per process first."""
        sync = self.sync
        if sync._schema_ready_in != os.getpid():  # once per process, by the sync backend
            await asyncio.to_thread(sync._run, lambda cursor: None)
        try:
            with within(min(sync.connect_timeout, time_left(sync.timeout))):
                connection = await BoundedAsyncConnection.connect(sync._conninfo, autocommit=True)
        except TimeoutError:
            error = psycopg.errors.ConnectionTimeout("connection timeout expired")
            raise sync._translate(error, sent=False) from None
        except psycopg.Error as exc:
            raise sync._translate(exc, sent=False) from exc
        _abort_on_close(connection.pgconn.socket)
        try:
            connection.deadline = time.monotonic() + time_left(sync.timeout)
            await connection.execute(f"SET statement_timeout = {int(sync.timeout * 900)}")
            connection.deadline = None
        except psycopg.Error as exc:
            await connection.close()
            raise sync._translate(exc, sent=False) from exc
        except BaseException:
            await connection.close()
            raise
        return connection, connection.cursor()

    def _idle_pair(self) -> Pair | None:
        """An idle connection the server has not closed (a closed one is dropped: nothing
        was sent on it yet)."""
        while self._idle:
            pair = self._idle.pop()
            if not pair[0].closed and not pair[0].broken:
                return pair
        return None

    async def _run(self, work: Callable[[psycopg.AsyncCursor[Any]], Awaitable[T]]) -> T:
        """Runs ``work`` on a pooled connection's cursor, bounded by the call's deadline:
        waiting for a free connection and connecting under one timeout, every wait on the
        server by the connection's own (:class:`BoundedAsyncConnection`)."""
        sync = self.sync
        left = time_left(sync.timeout)
        deadline = time.monotonic() + left
        if self._slots.locked():  # (a free slot and an idle connection need no timer)
            try:
                with within(left):
                    await self._slots.acquire()
            except TimeoutError:
                raise sync._translate(TimeoutError("all connections busy"), sent=False) from None
        else:
            await self._slots.acquire()  # returns at once
        try:
            pair = self._idle_pair()
            if pair is None:
                try:
                    with within(max(deadline - time.monotonic(), 0.001)):
                        pair = await self._connect()
                except SharedStateError:  # translated already (a StoreTimeoutError among them)
                    raise
                except TimeoutError:
                    error = psycopg.errors.ConnectionTimeout("connection timeout expired")
                    raise sync._translate(error, sent=False) from None
            connection = pair[0]
            connection.deadline = deadline  # type: ignore[attr-defined]
            try:
                result = await work(pair[1])
            except psycopg.Error as exc:
                # a server's error (the statement failed, so it changed nothing) leaves the
                # connection usable; a broken or timed-out one may have run it
                sent = connection.broken or isinstance(exc, WaitTimeout)
                await self._settle(pair, keep=not sent)
                raise sync._translate(exc, sent=sent) from exc
            except SharedStateError:  # refused by our own check: the connection is fine
                await self._settle(pair, keep=True)
                raise
            except BaseException:  # cancelled half-way: the statement's state is unknown
                await self._settle(pair, keep=False)
                raise
            await self._settle(pair, keep=True)
            return result
        finally:
            self._slots.release()

    async def _settle(self, pair: Pair, keep: bool) -> None:
        connection = pair[0]
        connection.deadline = None  # type: ignore[attr-defined]
        if keep and not connection.closed and connection.info.transaction_status == TransactionStatus.IDLE:
            if len(self._idle) < self.sync.pool_max:
                self._idle.append(pair)
                return
        try:
            await connection.close()
        except Exception:  # closing a broken connection may fail too; it is gone either way
            pass

    async def _exec(self, statement: str, params: Any) -> None:
        async def work(cursor: psycopg.AsyncCursor[Any]) -> None:
            await cursor.execute(self._sql[statement], params)

        await self._run(work)

    async def _one(self, statement: str, params: Any) -> Any:
        async def work(cursor: psycopg.AsyncCursor[Any]) -> Any:
            await cursor.execute(self._sql[statement], params)
            return await cursor.fetchone()

        return await self._run(work)

    # -- records -------------------------------------------------------------------------
    async def load(self, key: str, since: int | None = None) -> Record | None:
        if since is not None:
            params = {"k": key, "s": since}

            async def rows(cursor: psycopg.AsyncCursor[Any]) -> list[Any]:
                await cursor.execute(self._sql["load_parts"], params, binary=True)
                return await cursor.fetchall()

            return parts_record(await self._run(rows), since)
        row = await self._one("load", (key,))
        return Record(row[0], bytes(row[1])) if row else None

    async def compare_and_set(
        self, key: str, expected: int | None, data: bytes, parts: PartsWrite | None = None
    ) -> tuple[bool, Record | None]:
        if parts is not None:
            row = await self._one(*parts_write(key, expected, data, parts))
        elif expected is None:
            row = await self._one("insert", {"k": key, "d": data})
        else:
            row = await self._one("update", {"k": key, "d": data, "v": expected})
        if row is not None and row[1] is None:
            return True, Record(row[0], data)
        if row is None or row[0] == expected:
            # the other branch saw the statement's snapshot, older than the writer that
            # made the condition fail: read the row as it is now
            return False, await self.load(key)
        return False, Record(row[0], bytes(row[1]))

    async def delete(self, key: str) -> bool:
        async def remove(cursor: psycopg.AsyncCursor[Any]) -> bool:
            async with cursor.connection.transaction():
                first = (await cursor.execute(self._sql["delete_record"], (key,))).rowcount
                second = (await cursor.execute(self._sql["delete_counter"], (key,))).rowcount
                await cursor.execute(self._sql["delete_parts"], (key,))
            return first + second > 0

        return await self._run(remove)

    async def keys(self, prefix: str) -> Iterable[str]:
        async def rows(cursor: psycopg.AsyncCursor[Any]) -> list[Any]:
            await cursor.execute(self._sql["keys"], (len(prefix), prefix, len(prefix), prefix))
            return await cursor.fetchall()

        return [row[0] for row in await self._run(rows)]

    # -- counters ------------------------------------------------------------------------
    async def counter_add(self, key: str, delta: int, call_id: str | None = None) -> int:
        sync = self.sync
        sync.check_counter(key, delta, "amount")
        params = {"k": key, "d": delta, "i": call_id}
        first, upsert = ("counter_add_logged", "counter_upsert_logged") if call_id else ("counter_add", "counter_upsert")
        plain = {"counter_add": (delta, key), "counter_upsert": (key, delta)}

        async def add(cursor: psycopg.AsyncCursor[Any]) -> int:
            try:
                await cursor.execute(self._sql[first], params if call_id else plain[first])
                row = await cursor.fetchone()
                if row is None:  # first use of this counter
                    await cursor.execute(self._sql[upsert], params if call_id else plain[upsert])
                    row = await cursor.fetchone()
            except psycopg.errors.UniqueViolation:  # the id is logged: sent again, or fenced
                await cursor.execute(self._sql["call_get"], (call_id,))
                row = await cursor.fetchone()
                if row is None or row[0] is None:
                    raise
            except psycopg.errors.NumericValueOutOfRange as exc:  # bigint: the statement failed
                raise sync.counter_overflow(key, f"adding {delta} would take it out of range") from exc
            return int(row[0])  # type: ignore[index]  # the upsert returns its row

        sent_at = time.monotonic()
        try:
            value = await self._run(add)
        except SharedStateError as exc:
            if call_id is not None and getattr(exc, "request_sent", False):
                sync._in_doubt.lost(call_id, sent_at)
            raise
        if call_id is not None:
            sync._logged += 1
            if sync._logged % TRIM_EVERY == 0:
                try:  # its own step: its failure never hides an add that took effect
                    await self._exec("calls_trim", (CALLS_KEPT_SECONDS, TRIM_AT_MOST))
                except SharedStateError:
                    pass
        return value

    async def counter_outcome(self, key: str, call_id: str) -> Any:
        async def ask(cursor: psycopg.AsyncCursor[Any]) -> tuple[bool, Any]:
            await cursor.execute(self._sql["call_fence"], (call_id,))
            if await cursor.fetchone() is not None:
                return True, None
            await cursor.execute(self._sql["call_get"], (call_id,))
            row = await cursor.fetchone()
            return False, None if row is None else row[0]

        fenced_now, value = await self._run(ask)
        if value is not None:
            return int(value)
        if fenced_now and self.sync._in_doubt.age(call_id) >= CALLS_KEPT_SECONDS:
            return UNKNOWN  # logged so long ago that its entry may have been trimmed
        return None

    async def counter_get(self, key: str) -> int:
        row = await self._one("counter_get", (key,))
        return int(row[0]) if row else 0

    async def counter_set(self, key: str, value: int) -> None:
        self.sync.check_counter(key, value)
        await self._exec("counter_set", (key, value))

    async def aclose(self) -> None:
        idle, self._idle = self._idle, []
        for connection, _ in idle:
            try:
                await connection.close()
            except Exception:
                pass


__all__ = ["AsyncPostgresBackend"]
