"""``redis://`` and ``rediss://`` (TLS): records and counters in a Redis server.

Layout, under ``?namespace=`` (default ``sharedstate:``) and the store's own ``?prefix=``:

* a record is a hash ``{v: version, d: data}``; a counter is a plain string, so ``INCRBY``
  works on it natively.
* a record's parts (``Parts``) sit beside it, under its key and ``\\0parts:`` (``keys()``
  skips those): a hash part -> data, a sorted set part -> version of the live parts, and
  one of the tombstones. A write of parts is one Lua script (``PARTS_WRITE``: the head's
  compare-and-set, as ``COMPARE_AND_SET`` makes it, then the parts and the purge
  of old tombstones), a load since version ``v`` another (``LOAD_PARTS``: the head, and a
  range of the versions after ``v``): each atomic, each costing what changed, not the
  number of parts.

Why it is fast and exact:

* **One round trip per object call** when this process's cached copy is current: the
  compare-and-set is one Lua script (``EVALSHA``; after ``NOSCRIPT``, as when the server
  restarted, it is loaded again and re-sent). Redis runs a script atomically, so the version
  check and the write cannot interleave with another client's; when the version does not
  match, the same script returns the current record, so the retry costs one more round
  trip, never a WATCH/MULTI dance.
* **redis-py's connections, a leaner pool** (``pool.py``): commands go straight to a
  ``redis.Connection`` (``send_command``/``read_response``), since redis-py 8's
  ``Redis.execute_command`` and pool add about 20 us per command, as much as the loopback
  round trip; an object call would then cost twice a raw ``INCR``. Before a pooled
  connection is reused, a zero-timeout poll checks that the server has not closed it
  (restarted); a closed one is dropped and the command sent on a new one, so a command is
  never sent on a dead socket and its outcome never needlessly made unknown.
* **Counters are INCRBY**: one native atomic command; with a call id (the engine always
  gives one), one Lua script that also logs ``id -> value`` in a small two-generation hash
  beside the counter (``COUNTER_ADD``), so that ``counter_outcome`` can tell, after a lost
  reply, whether the add ran, and fence it if not (``COUNTER_OUTCOME``).
* **No blind retries**: redis-py retries a command after a connection error by default,
  which could apply an ``INCRBY`` twice. Here retries are off; a command whose connection
  broke or timed out once it was being sent raises an error marked ``request_sent`` (its
  effect is unknown until the engine asks the store); an error before sending (refused,
  connect timeout) is not marked. Sockets close with ``SO_LINGER`` 0, so a command given
  up on is dropped by the kernel instead of being retransmitted to the server later. The
  pool itself checks each connection before use and reconnects one the server closed, so a
  restarted server is used again without restarting the app.
* **Fork safety**: the pool is per process (``pool.py``); a forked child opens its own
  connections and never touches the parent's.

Persistence, which the guarantees need: every answered call is durable only as far as the
server keeps its writes. With ``appendonly yes`` and ``appendfsync always`` none is lost to
a restart or crash; with ``appendfsync everysec`` (Redis's default for AOF) up to about a
second of writes on a crash of the host (a restart of the process loses none). Without AOF
(RDB snapshots only, Redis's default, or no persistence at all) a restart rolls the server
back to its last snapshot or to nothing: objects, counters and lock tokens go back in time,
and numbers already handed out are handed out again. So at the first connection of a
process, the backend reads ``INFO persistence`` and warns (``RedisPersistenceWarning``,
once per process) when AOF is off. Replicas do not replace AOF: a failover may lose the
writes the replica had not received (``WAIT`` is not used).
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Iterable
from typing import Any, ClassVar
from urllib.parse import unquote

import redis
from redis.backoff import NoBackoff
from redis.connection import parse_url
from redis.retry import Retry

from ..errors import (
    BackendUnavailableError,
    CorruptStoreError,
    CounterOverflowError,
    InvalidURLError,
    SharedStateError,
    StoreTimeoutError,
    mark_sent,
    request_sent,
)
from . import redis_calls
from .base import UNKNOWN, Backend, PartsWrite, Record, time_left
from .calls import InDoubt, default_age
from .pool import IdlePool, readable_now
from .redis_calls import (
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
    parse_parts,
    parts_keys,
    parts_write,
)

DEFAULT_CONNECT_TIMEOUT = 2.0


class RedisBackend(Backend):
    """Records as hashes, counters as strings, CAS as one Lua script."""

    schemes = ("redis", "rediss")
    keeps_parts = True
    parameters: ClassVar[frozenset[str]] = frozenset(
        {
            "connect_timeout",
            "namespace",
            "max_connections",
            "ssl_cert_reqs",
            "ssl_ca_certs",
            "ssl_certfile",
            "ssl_keyfile",
            "ssl_check_hostname",
        }
    )

    def __init__(self, url: str, options: dict[str, str], timeout: float = 10.0) -> None:
        super().__init__(url, options, timeout)
        self.namespace = options.get("namespace", "sharedstate:")
        self.command_timeout = self.timeout
        self.connect_timeout = _seconds(
            options, "connect_timeout", min(DEFAULT_CONNECT_TIMEOUT, self.command_timeout)
        )
        try:
            max_idle = int(options.get("max_connections", "64"))
        except ValueError:
            raise InvalidURLError("?max_connections= must be a whole number") from None
        # redis-py's own URL parser reads host, port, db, user, password and TLS options,
        # but it ignores a database that is not a number (db 0 instead) and hands ssl_*
        # options of a redis:// URL to a plain connection, which fails with a TypeError.
        driver_url = url.split("?", 1)[0]
        tls = "&".join(f"{k}={v}" for k, v in options.items() if k.startswith("ssl_"))
        _check_database_and_tls(driver_url, tls, self.describe())
        try:
            settings: dict[str, Any] = parse_url(driver_url + ("?" + tls if tls else ""))
        except ValueError as exc:
            raise InvalidURLError(f"bad Redis URL {self.describe()}: {exc}") from None
        self._connection_class = settings.pop("connection_class", redis.Connection)
        self._settings = settings
        self._host = f"{settings.get('host', 'localhost')}:{settings.get('port', 6379)}"
        self._pool: IdlePool[redis.Connection] = IdlePool(self._connect, _disconnect, max_idle)
        self._in_doubt = InDoubt(default_age(self.command_timeout))

    def _connect(self) -> redis.Connection:
        return self._connection_class(
            **self._settings,
            socket_connect_timeout=self.connect_timeout,
            socket_timeout=self.command_timeout,
            retry=Retry(NoBackoff(), 0),
            retry_on_timeout=False,
        )

    def _command(self, *args: Any, packed: bytes | None = None) -> Any:
        """Sends one command (``args``, or already ``packed``) and returns its reply, on a
        pooled connection; one round trip. An error raised once sending began is marked
        ``request_sent`` (the command may have run); one raised before is not."""
        pool = self._pool
        connection = pool.acquire()
        try:
            self._ready(connection)
        except BaseException as exc:
            pool.discard(connection)
            if isinstance(exc, redis.RedisError):
                raise self._translate(exc, sent=False) from exc
            raise
        try:
            if packed is None:
                connection.send_command(*args, check_health=False)
            else:
                connection.send_packed_command([packed], check_health=False)
            left = time_left(self.command_timeout)  # what the call's deadline leaves
            if left < self.command_timeout * 0.95:
                reply = connection.read_response(timeout=left)
            else:  # a fresh call: the socket's own timeout overruns the deadline by < 5%
                reply = connection.read_response()  # (a timeout argument costs 2 syscalls)
        except redis.ResponseError as exc:  # the connection is fine: only the command failed
            pool.release(connection)
            if isinstance(exc, redis.exceptions.NoScriptError):
                raise
            raise self._translate(exc, sent=False) from exc
        except BaseException as exc:
            pool.discard(connection)
            if isinstance(exc, redis.RedisError):
                raise self._translate(exc, sent=True) from exc
            raise
        pool.release(connection)
        return reply

    def _ready(self, connection: redis.Connection) -> None:
        """Makes a pooled connection fit to send on. An idle one with something to read is
        dropped and made again: the server closed it (it restarted), or it is out of step;
        nothing was sent on it yet, so failing the call would be needless. (Our own check,
        not redis-py's ``can_read``: that one is eight Python calls on every command's
        path, and in redis-py 8 raises for a closed connection.)"""
        sock = connection._sock
        if sock is not None and readable_now(sock.fileno()):
            connection.disconnect()
        if connection._sock is None:
            # connecting and the handshake (AUTH, SELECT...) end by the call's deadline too
            left = time_left(self.command_timeout)
            connection.socket_connect_timeout = min(self.connect_timeout, left)
            connection.socket_timeout = left
            try:
                connection.connect()
                _abort_on_close(connection._sock)
                if not redis_calls.persistence_checked:
                    redis_calls.check_persistence(connection, self._host)
            finally:
                connection.socket_timeout = self.command_timeout
            if connection._sock is not None:
                connection._sock.settimeout(self.command_timeout)

    def _translate(self, exc: redis.RedisError, sent: bool) -> Exception:
        """The one mapping of redis-py's errors to ours; ``sent``: the command may have
        reached the server (marked with :func:`~sharedstate.errors.mark_sent`)."""
        where = f"{self.describe()} ({self._host})"
        message = str(exc)
        error: SharedStateError
        if isinstance(exc, redis.AuthenticationError) or any(
            word in message
            for word in ("WRONGPASS", "NOAUTH", "invalid password", "invalid username")
        ):
            error = BackendUnavailableError(
                f"Redis at {where} refused the credentials (wrong user or password): {message}"
            )
        elif isinstance(exc, redis.TimeoutError):
            error = StoreTimeoutError(
                f"Redis at {where} did not answer in time (connect: {self.connect_timeout:g} s, "
                f"command: {self.command_timeout:g} s; see ?timeout=): {message}"
            )
        elif isinstance(exc, redis.ConnectionError):
            error = BackendUnavailableError(f"cannot reach Redis at {where}: {message}")
        elif "would overflow" in message:  # INCRBY past 64 bits: refused, nothing changed
            error = CounterOverflowError(f"Redis at {where}: {message}")
        elif "not an integer or out of range" in message:  # INCRBY on a damaged counter
            error = CorruptStoreError(
                f"a counter in Redis at {where} holds something other than a 64-bit integer: "
                f"{message}"
            )
        elif "WRONGTYPE" in message:
            error = CorruptStoreError(
                f"a key in Redis at {where} holds another type than sharedstate wrote: {message}"
            )
        else:
            error = BackendUnavailableError(f"Redis at {where} failed: {message}")
        return mark_sent(error) if sent else error

    def _key(self, key: str) -> str:
        return self.namespace + key

    # -- records -------------------------------------------------------------------------
    def load(self, key: str, since: int | None = None) -> Record | None:
        if since is not None:
            keys = parts_keys(self._key(key).encode())
            return self._with_parts(key, self._script(LOAD_PARTS, keys, b"%d" % since), since)
        version, data = self._command("HMGET", self._key(key), "v", "d")
        return None if version is None else self._record(key, version, data)

    def _with_parts(self, key: str, reply: Any, since: int) -> Record | None:
        """The record of a ``LOAD_PARTS`` reply, with its parts."""
        if not reply:
            return None
        version, data, parts = parse_parts(reply, since)
        return Record(self._record(key, version, data).version, data, parts)

    def _record(self, key: str, version: bytes, data: bytes | None) -> Record:
        """A stored record; its version was written by our script, so anything but a whole
        number means another client changed the hash."""
        try:
            return Record(int(version), data or b"")
        except ValueError:
            raise self._damaged(key, f"its version {version[:40]!r} is not a whole number") from None

    def _damaged(self, key: str, what: str, kind: str = "record") -> CorruptStoreError:
        return CorruptStoreError(
            f"the {kind} {key!r} in Redis at {self.describe()} (key {self._key(key)!r}) is "
            f"damaged: {what}; something other than sharedstate wrote it; remove that key to "
            "start again"
        )

    def compare_and_set(
        self, key: str, expected: int | None, data: bytes, parts: PartsWrite | None = None
    ) -> tuple[bool, Record | None]:
        if parts is not None:
            keys, args = parts_write(self._key(key).encode(), expected, data, parts)
            return self._written(key, self._script(PARTS_WRITE, keys, *args), data)
        packed = pack_compare_and_set(
            self._key(key).encode(), b"" if expected is None else b"%d" % expected, data
        )
        try:
            reply = self._command(packed=packed)
        except redis.exceptions.NoScriptError:  # a new or restarted server: load it once
            self._command("SCRIPT", "LOAD", COMPARE_AND_SET)
            reply = self._command(packed=packed)
        return self._written(key, reply, data)

    def _written(self, key: str, reply: Any, data: bytes) -> tuple[bool, Record | None]:
        """What a ``COMPARE_AND_SET`` or ``PARTS_WRITE`` reply says about the write of
        ``data`` (both drivers read it here)."""
        if type(reply) is int:
            return True, Record(reply, data)
        if not reply:
            return False, None
        return False, self._record(key, reply[0], reply[1] if len(reply) > 1 else None)

    def delete(self, key: str) -> bool:
        counter, *log = self._call_log(key)
        return bool(self._command("DEL", counter, *log, *parts_keys(counter)[1:]))

    def keys(self, prefix: str) -> Iterable[str]:
        pattern = _glob_escape(self._key(prefix)) + "*"
        skip = len(self.namespace)
        found: set[str] = set()
        cursor: Any = 0
        while True:
            cursor, batch = self._command("SCAN", cursor, "MATCH", pattern, "COUNT", 1000)
            found.update(k.decode("utf-8")[skip:] for k in batch if CALL_LOG not in k and PARTS not in k)
            if int(cursor) == 0:
                return sorted(found)

    # -- counters ------------------------------------------------------------------------
    def _call_log(self, key: str) -> tuple[bytes, bytes, bytes]:
        """The counter's key and its call log's two hashes (``keys()`` skips those)."""
        counter = self._key(key).encode()
        return counter, counter + CALL_LOG + b"0", counter + CALL_LOG + b"1"

    def _script(self, source: str, keys: tuple[bytes, ...], *args: bytes) -> Any:
        packed = pack_script(SHAS[source], keys, args)
        try:
            return self._command(packed=packed)
        except redis.exceptions.NoScriptError:  # a new or restarted server: load it once
            self._command("SCRIPT", "LOAD", source)
            return self._command(packed=packed)

    def counter_add(self, key: str, delta: int, call_id: str | None = None) -> int:
        self.check_counter(key, delta, "amount")
        sent_at = time.monotonic()
        try:
            if call_id is None:
                return int(self._command("INCRBY", self._key(key), delta))
            return int(
                self._script(
                    COUNTER_ADD,
                    self._call_log(key),
                    b"%d" % delta,
                    b"#" + call_id.encode(),
                    b"%d" % CALLS_KEPT,
                )
            )
        except CounterOverflowError as exc:
            raise self.counter_overflow(key, f"adding {delta} would take it out of range") from exc
        except CorruptStoreError as exc:
            raise self._damaged(key, str(exc.__cause__ or exc), "counter") from exc
        except SharedStateError as exc:
            if call_id is not None and request_sent(exc):
                self._in_doubt.lost(call_id, sent_at)
            raise

    def counter_outcome(self, key: str, call_id: str) -> Any:
        age = round(self._in_doubt.age(call_id) * 1000)
        reply = self._script(
            COUNTER_OUTCOME,
            self._call_log(key),
            b"#" + call_id.encode(),
            b"%d" % age,
            b"%d" % CALLS_KEPT,
        )
        return int(reply[1]) if reply[0] == 1 else None if reply[0] == 0 else UNKNOWN

    def counter_get(self, key: str) -> int:
        value = self._command("GET", self._key(key))
        if value is None:
            return 0
        try:
            return int(value)
        except ValueError:
            raise self._damaged(key, f"it holds {value[:40]!r}, not a whole number", "counter") from None

    def counter_set(self, key: str, value: int) -> None:
        self.check_counter(key, value)
        self._command("SET", self._key(key), value)

    def close(self) -> None:
        self._pool.drain()


def _disconnect(connection: redis.Connection) -> None:
    connection.disconnect()


def _check_database_and_tls(url: str, tls: str, shown: str) -> None:
    """Refuses what redis-py would silently get wrong: a database that is not a number, and
    TLS options on a URL without TLS."""
    scheme, _, rest = url.partition("://")
    database = unquote(rest.partition("/")[2]).strip("/")
    if database and not database.isdigit():
        raise InvalidURLError(
            f"bad Redis URL {shown}: the database after the host must be a number "
            f"(redis://host:6379/0), not {database!r}"
        )
    if tls and scheme.lower() != "rediss":
        names = ", ".join(sorted(part.split("=", 1)[0] for part in tls.split("&")))
        raise InvalidURLError(
            f"bad Redis URL {shown}: {names} configure TLS, which a redis:// URL does not "
            "use; use rediss:// to connect with TLS"
        )


_LINGER_ZERO = struct.pack("ii", 1, 0)


def _abort_on_close(sock: socket.socket | None) -> None:
    """``SO_LINGER`` 0: closing the socket resets the connection and drops whatever it had
    not delivered yet, so a command given up on (timed out, connection dropped) cannot
    reach the server later, when the network heals; a graceful close would keep
    retransmitting it for minutes."""
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_ZERO)
        except OSError:  # not a TCP socket (a Unix socket): nothing in flight to drop
            pass


def _seconds(options: dict[str, str], name: str, default: float) -> float:
    try:
        value = float(options.get(name, default))
    except ValueError:
        raise InvalidURLError(
            f"?{name}= must be a number of seconds, not {options[name]!r}"
        ) from None
    if value <= 0:
        raise InvalidURLError(f"?{name}= must be positive")
    return value


def _glob_escape(text: str) -> str:
    """``text`` as a literal in a Redis MATCH pattern."""
    return "".join("\\" + ch if ch in "*?[]\\" else ch for ch in text)
