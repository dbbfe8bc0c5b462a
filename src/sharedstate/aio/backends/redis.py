"""``redis://`` / ``rediss://`` for async code: ``redis.asyncio`` connections, one small
pool per store and event loop.

The twin of ``backends/redis.py``, and deliberately thin: the same keys, the same Lua
scripts (compare-and-set, with parts or without, the load of parts, and the counter call
log of ``redis_calls.py``), the same packed ``EVALSHA`` requests, the same per-process
record of adds in doubt, and the same one mapping of redis-py's errors to ours (the sync
backend's ``_translate``: ``redis.asyncio`` raises the same exception classes). Only the
socket I/O is awaited.

Why a pool of our own over ``redis.asyncio.Connection`` rather than ``redis.asyncio.Redis``:
as in the sync backend, the client's pool and command machinery (health checks, retries,
a timeout task per send) cost about as much as the loopback round trip, and its retries
could apply an add twice. Here a request is one send and one read on an idle connection
of this loop, bounded by what the call's deadline leaves (one ``within``, ``timeouts.py``), and
never retried blindly: an error once sending began is marked ``request_sent`` and the
engine asks the store what became of the request.

A connection that breaks, times out or is cancelled half-way is closed, never reused (its
reply may still come). An idle connection the server closed (a restart) is noticed before
use (its stream is at EOF) and made again, so nothing is sent on a dead socket.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import Any

import redis
import redis.asyncio

from ...backends import redis_calls
from ...backends.base import UNKNOWN, PartsWrite, Record, time_left
from ...backends.redis import (
    RedisBackend,
    _abort_on_close,
    _glob_escape,
)
from ...backends.redis_calls import (
    CALL_LOG,
    CALLS_KEPT,
    COMPARE_AND_SET,
    COUNTER_ADD,
    COUNTER_OUTCOME,
    LOAD_PARTS,
    PARTS,
    PARTS_WRITE,
    SHAS,
    pack_compare_and_set,
    pack_script,
    parts_keys,
    parts_write,
)
from ...errors import CorruptStoreError, CounterOverflowError, SharedStateError
from .base import AsyncBackend
from .timeouts import within

#: the sync backend's connection classes -> their asyncio twins
_CLASSES: dict[type, type] = {
    redis.Connection: redis.asyncio.Connection,
    redis.SSLConnection: redis.asyncio.SSLConnection,
    redis.UnixDomainSocketConnection: redis.asyncio.UnixDomainSocketConnection,
}


class AsyncRedisBackend(AsyncBackend):
    """Records and counters in Redis, awaited on this event loop's connections."""

    sync: RedisBackend

    def __init__(self, sync: RedisBackend) -> None:  # type: ignore[override]
        super().__init__(sync)
        self._class = _CLASSES.get(sync._connection_class, redis.asyncio.Connection)
        self._idle: list[redis.asyncio.Connection] = []
        self._max_idle = sync._pool._max_idle

    # -- connections ---------------------------------------------------------------------
    def _new(self) -> redis.asyncio.Connection:
        return self._class(
            **self.sync._settings,
            socket_connect_timeout=self.sync.connect_timeout,
            socket_timeout=None,  # each request is bounded as a whole, below
            retry=redis.asyncio.retry.Retry(redis.backoff.NoBackoff(), 0),
        )

    async def _ready(self) -> redis.asyncio.Connection:
        """An open connection: an idle one, or a new one (idle ones the server closed
        meanwhile, in a restart, are closed here)."""
        while self._idle:
            connection = self._idle.pop()
            if _open(connection):
                return connection
            await _close(connection)
        connection = self._new()
        if not redis_calls.persistence_checked:  # once per process, as the sync backend does
            await asyncio.to_thread(self.sync._command, "PING")
        await connection.connect()
        writer = getattr(connection, "_writer", None)
        if writer is not None:
            _abort_on_close(writer.get_extra_info("socket"))
        return connection

    async def _request(self, *args: Any, packed: bytes | None = None) -> Any:
        """One command and its reply, bounded by the call's deadline; errors translated
        (marked ``request_sent`` once sending began)."""
        sent = False
        connection: redis.asyncio.Connection | None = None
        try:
            with within(time_left(self.sync.command_timeout)):
                idle = self._idle  # (the usual case without awaiting ``_ready``: a coroutine less)
                connection = idle.pop() if idle and _open(idle[-1]) else await self._ready()
                sent = True
                if packed is None:
                    await connection.send_command(*args, check_health=False)
                else:
                    await connection.send_packed_command(packed, check_health=False)
                reply = await connection.read_response()
        except redis.ResponseError as exc:  # the connection is fine: only the command failed
            self._release(connection)
            if isinstance(exc, redis.exceptions.NoScriptError):
                raise
            raise self.sync._translate(exc, sent=False) from exc
        except SharedStateError:  # from the sync backend's first connection (see _ready)
            await _close(connection)
            raise
        except (redis.RedisError, TimeoutError, OSError) as exc:
            await _close(connection)
            if not isinstance(exc, redis.RedisError):
                exc = redis.TimeoutError(f"no reply within the call's deadline ({exc!r})")
            raise self.sync._translate(exc, sent=sent) from exc
        except BaseException:  # cancelled half-way: the reply may still come on it
            await _close(connection)
            raise
        self._release(connection)
        return reply

    def _release(self, connection: redis.asyncio.Connection | None) -> None:
        if connection is not None and len(self._idle) < self._max_idle:
            self._idle.append(connection)

    async def _script(self, source: str, keys: tuple[bytes, ...], *args: bytes) -> Any:
        packed = pack_script(SHAS[source], keys, args)
        try:
            return await self._request(packed=packed)
        except redis.exceptions.NoScriptError:  # a new or restarted server: load it once
            await self._request("SCRIPT", "LOAD", source)
            return await self._request(packed=packed)

    # -- records -------------------------------------------------------------------------
    async def load(self, key: str, since: int | None = None) -> Record | None:
        if since is not None:
            reply = await self._script(LOAD_PARTS, parts_keys(self.sync._key(key).encode()), b"%d" % since)
            return self.sync._with_parts(key, reply, since)
        version, data = await self._request("HMGET", self.sync._key(key), "v", "d")
        return None if version is None else self.sync._record(key, version, data)

    async def compare_and_set(
        self, key: str, expected: int | None, data: bytes, parts: PartsWrite | None = None
    ) -> tuple[bool, Record | None]:
        if parts is not None:
            keys, args = parts_write(self.sync._key(key).encode(), expected, data, parts)
            return self.sync._written(key, await self._script(PARTS_WRITE, keys, *args), data)
        packed = pack_compare_and_set(self.sync._key(key).encode(), b"" if expected is None else b"%d" % expected, data)
        try:
            reply = await self._request(packed=packed)
        except redis.exceptions.NoScriptError:
            await self._request("SCRIPT", "LOAD", COMPARE_AND_SET)
            reply = await self._request(packed=packed)
        return self.sync._written(key, reply, data)

    async def delete(self, key: str) -> bool:
        counter, *log = self.sync._call_log(key)
        return bool(await self._request("DEL", counter, *log, *parts_keys(counter)[1:]))

    async def keys(self, prefix: str) -> Iterable[str]:
        pattern = _glob_escape(self.sync._key(prefix)) + "*"
        skip = len(self.sync.namespace)
        found: set[str] = set()
        cursor: Any = 0
        while True:
            cursor, batch = await self._request("SCAN", cursor, "MATCH", pattern, "COUNT", 1000)
            found.update(k.decode("utf-8")[skip:] for k in batch if CALL_LOG not in k and PARTS not in k)
            if int(cursor) == 0:
                return sorted(found)

    # -- counters ------------------------------------------------------------------------
    async def counter_add(self, key: str, delta: int, call_id: str | None = None) -> int:
        sync = self.sync
        sync.check_counter(key, delta, "amount")
        sent_at = time.monotonic()
        try:
            if call_id is None:
                return int(await self._request("INCRBY", sync._key(key), delta))
            log = sync._call_log(key)
            reply = await self._script(
                COUNTER_ADD, log, b"%d" % delta, b"#" + call_id.encode(), b"%d" % CALLS_KEPT
            )
            return int(reply)
        except CounterOverflowError as exc:
            raise sync.counter_overflow(key, f"adding {delta} would take it out of range") from exc
        except CorruptStoreError as exc:
            raise sync._damaged(key, str(exc.__cause__ or exc), "counter") from exc
        except SharedStateError as exc:
            if call_id is not None and getattr(exc, "request_sent", False):
                sync._in_doubt.lost(call_id, sent_at)
            raise

    async def counter_outcome(self, key: str, call_id: str) -> Any:
        age = round(self.sync._in_doubt.age(call_id) * 1000)
        reply = await self._script(
            COUNTER_OUTCOME, self.sync._call_log(key), b"#" + call_id.encode(), b"%d" % age, b"%d" % CALLS_KEPT
        )
        return int(reply[1]) if reply[0] == 1 else None if reply[0] == 0 else UNKNOWN

    async def counter_get(self, key: str) -> int:
        value = await self._request("GET", self.sync._key(key))
        if value is None:
            return 0
        try:
            return int(value)
        except ValueError:
            raise self.sync._damaged(key, f"it holds {value[:40]!r}, not a whole number", "counter") from None

    async def counter_set(self, key: str, value: int) -> None:
        self.sync.check_counter(key, value)
        await self._request("SET", self.sync._key(key), value)

    async def aclose(self) -> None:
        idle, self._idle = self._idle, []
        for connection in idle:
            await _close(connection)


def _open(connection: redis.asyncio.Connection) -> bool:
    """Whether an idle connection is still open (the server may have closed it)."""
    reader = getattr(connection, "_reader", None)
    return bool(connection.is_connected and reader is not None and not reader.at_eof() and reader.exception() is None)


async def _close(connection: redis.asyncio.Connection | None) -> None:
    if connection is None:
        return
    try:
        await connection.disconnect(nowait=True)
    except Exception:  # closing a broken connection may fail too; it is gone either way
        pass


__all__ = ["AsyncRedisBackend"]
