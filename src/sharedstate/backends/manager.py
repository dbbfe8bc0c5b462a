"""``manager://host:port?authkey=SECRET``: a ``multiprocessing.managers`` server of our own.

``sharedstate serve manager://127.0.0.1:50000?authkey=SECRET`` runs the server; clients use
the same URL. The server is a ``BaseManager`` exposing one :class:`Registry` of versioned
records and counters.

Why not plain Manager proxies of the user's object: the manager server runs each client
connection in its own thread, so two clients' method calls on one proxied object interleave
(measured while building this backend: 2,146 unique values out of 16,000 calls once the
method yields). Here the
server only keeps records, and every registry operation runs under one lock, so each
(a compare-and-set, a counter add) is atomic; the user's method runs in the client, inside
the store's optimistic loop, like on every other backend. One lock rather than one per
name: each operation is a few dict steps, far shorter than the round trip, and the GIL
would serialize them anyway.

Large objects stay one record here (``keeps_parts`` is False): the registry could keep parts
under its lock, but a record already travels as one pickle on one connection, and the
object layer then writes and reads it whole.

Security: the server refuses to start, and the client to connect, without an authkey.
Connections are authenticated by the manager's own HMAC challenge with that key (both
ways); after that, requests and replies (records' bytes inside) travel as pickles on that
authenticated connection, which is the manager's design: anyone holding the authkey can
make the server unpickle what they send, so treat the authkey as a password and bind the
server to a private address. The channel is not encrypted.

Durability: none. State lives in the server's memory, as long as the server process.
Each server start draws a new *epoch*; a client that reconnects to a server with another
epoch than before raises :class:`~sharedstate.errors.StateLostError` once (the state it
used is gone), and the store raises it too for any record it had cached that is now
missing (``may_evict``), rather than running the factory again as if nothing had happened.

gevent: the client speaks the manager protocol (``multiprocessing.connection`` framing,
``answer_challenge``/``deliver_challenge``, the server's ``create``/``accept_connection``
requests) over a ``socket`` object, which gevent makes cooperative; the stock
``multiprocessing`` connection reads its file descriptor with ``os.read``, which gevent
does not patch, and would freeze every greenlet.
"""

from __future__ import annotations

import io
import socket
import struct
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterable
from multiprocessing import AuthenticationError
from multiprocessing.connection import Connection, answer_challenge, deliver_challenge
from multiprocessing.managers import BaseManager
from typing import Any, ClassVar
from urllib.parse import urlsplit

from ..errors import (
    BackendUnavailableError,
    InvalidURLError,
    SharedStateError,
    StateLostError,
    StoreTimeoutError,
    mark_sent,
    request_sent,
)
from .base import (
    COUNTER_MAX,
    COUNTER_MIN,
    UNKNOWN,
    Backend,
    PartsWrite,
    Record,
    redact_url,
    time_left,
)
from .calls import InDoubt, default_age
from .pool import IdlePool

EXPOSED = (
    "epoch",
    "load",
    "compare_and_set",
    "delete",
    "keys",
    "counter_add",
    "counter_outcome",
    "counter_get",
    "counter_set",
)


#: call ids of counter adds the server remembers (about 100 bytes each)
CALLS_KEPT = 100_000


class Registry:
    """The server's state: records and counters, every operation under one lock."""

    def __init__(self) -> None:
        self._records: dict[str, tuple[int, bytes]] = {}
        self._counters: dict[str, int] = {}
        self._lock = threading.Lock()
        self._epoch = uuid.uuid4().hex
        #: call id -> (the value its add produced, or None: fenced; when, monotonic)
        self._calls: OrderedDict[str, tuple[int | None, float]] = OrderedDict()
        #: when the newest entry trimmed from ``_calls`` was made
        self._horizon = float("-inf")

    def epoch(self) -> str:
        return self._epoch

    def load(self, key: str) -> tuple[int, bytes] | None:
        return self._records.get(key)

    def compare_and_set(
        self, key: str, expected: int | None, data: bytes
    ) -> tuple[bool, int, bytes | None] | tuple[bool, None, None]:
        """(True, new version, None), or (False, current version, current data)."""
        with self._lock:
            current = self._records.get(key)
            if (current[0] if current else None) != expected:
                return (False, *current) if current else (False, None, None)
            version = (expected or 0) + 1
            self._records[key] = (version, data)
            return True, version, None

    def delete(self, key: str) -> bool:
        with self._lock:
            found = self._records.pop(key, None) is not None
            return self._counters.pop(key, None) is not None or found

    def keys(self, prefix: str) -> list[str]:
        with self._lock:
            return sorted(k for k in [*self._records, *self._counters] if k.startswith(prefix))

    def counter_add(self, key: str, delta: int, call_id: str | None = None) -> int | None:
        """The new value; None, changing nothing, when it would leave the counter range
        (a plain reply rather than an exception, which the manager would send as text)."""
        with self._lock:
            if call_id is not None and call_id in self._calls:
                done = self._calls[call_id][0]
                if done is None:
                    raise RuntimeError(f"the add {call_id} was fenced: it never takes effect")
                return done  # sent again: it took effect once, and only once
            value = self._counters.get(key, 0) + delta
            if not COUNTER_MIN <= value <= COUNTER_MAX:
                return None
            self._counters[key] = value
            if call_id is not None:
                self._record(call_id, value)
            return value

    def counter_outcome(self, key: str, call_id: str, age: float) -> tuple[str, int | None]:
        """("applied", value), ("fenced", None): it never ran and now never will, or
        ("unknown", None): its entry may have been trimmed (sent ``age`` s ago or more)."""
        with self._lock:
            if call_id in self._calls:
                done = self._calls[call_id][0]
                return ("fenced", None) if done is None else ("applied", done)
            self._record(call_id, None)
            if self._horizon >= time.monotonic() - age:
                return "unknown", None
            return "fenced", None

    def _record(self, call_id: str, value: int | None) -> None:
        self._calls[call_id] = (value, time.monotonic())
        while len(self._calls) > CALLS_KEPT:
            self._horizon = self._calls.popitem(last=False)[1][1]

    def counter_get(self, key: str) -> int:
        return self._counters.get(key, 0)

    def counter_set(self, key: str, value: int) -> None:
        with self._lock:
            self._counters[key] = value


class RegistryManager(BaseManager):
    """The manager whose server holds one :class:`Registry`."""


def parse_manager_url(url: str) -> tuple[str, int, bytes]:
    """(host, port, authkey) of a ``manager://`` URL; refuses a URL without an authkey."""
    parts = urlsplit(url)
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        host = port = None
    if not host or not port:
        raise InvalidURLError(
            f"{redact_url(url)} needs a host and a port: manager://HOST:PORT?authkey=..."
        )
    # (a split in two is a (name, value) pair)
    authkey = dict(
        pair.split("=", 1) if "=" in pair else (pair, "") for pair in parts.query.split("&") if pair  # type: ignore[misc]
    ).get("authkey", "")
    if not authkey:
        raise InvalidURLError(
            f"{redact_url(url)} has no authkey: a manager server runs what its clients send, "
            "so it is never run or used without one; add ?authkey=<a long random secret>"
        )
    return host, port, authkey.encode("utf-8")


# -- the client --------------------------------------------------------------------------
class _SocketConnection(Connection):
    """``multiprocessing.connection.Connection`` framing over a socket object (which gevent
    can make cooperative), instead of ``os.read``/``os.write`` on its descriptor."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        super().__init__(sock.fileno())

    def _send(self, buf: bytes, write: Any = None) -> None:
        self._sock.sendall(buf)

    def _recv(self, size: int, read: Any = None) -> io.BytesIO:
        buf = io.BytesIO()
        remaining = size
        while remaining > 0:
            chunk = self._sock.recv(min(remaining, 1 << 20))
            if not chunk:
                raise EOFError("the manager server closed the connection")
            buf.write(chunk)
            remaining -= len(chunk)
        return buf

    def _close(self, _close: Any = None) -> None:
        self._sock.close()


class _ServerError(Exception):
    """Internal: the server answered a request with an error."""


class ManagerBackend(Backend):
    """A client of ``sharedstate serve``: each operation is one request on a pooled,
    authenticated connection."""

    schemes = ("manager",)
    parameters: ClassVar[frozenset[str]] = frozenset({"connect_timeout", "authkey"})
    may_evict = True  # the server's state is gone when it restarts

    def __init__(self, url: str, options: dict[str, str], timeout: float = 10.0) -> None:
        super().__init__(url, options, timeout)
        self.host, self.port, self._authkey = parse_manager_url(url)
        try:
            self.connect_timeout = float(options.get("connect_timeout", min(2.0, self.timeout)))
        except ValueError as exc:
            raise InvalidURLError(f"bad number in {self.describe()}: {exc}") from None
        self._where = f"{self.host}:{self.port}"
        self._ident: str | None = None
        self._epoch: str | None = None
        self._pool: IdlePool[_SocketConnection] = IdlePool(self._connect, _SocketConnection.close)
        self._in_doubt = InDoubt(default_age(self.timeout))

    def _open(self) -> _SocketConnection:
        # connecting and authenticating end by the call's deadline too
        limit = min(self.connect_timeout, time_left(self.timeout))
        try:
            sock = socket.create_connection((self.host, self.port), timeout=limit)
        except OSError as exc:
            raise self._translate(exc, sent=False) from exc
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # closing resets the connection and drops what it had not delivered: a request
        # given up on never reaches the server later
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        connection = _SocketConnection(sock)
        try:
            answer_challenge(connection, self._authkey)
            deliver_challenge(connection, self._authkey)
        except (AuthenticationError, OSError, EOFError) as exc:
            connection.close()
            raise self._translate(exc, sent=False) from exc
        sock.settimeout(self.timeout)
        return connection

    def _translate(self, exc: BaseException, sent: bool) -> SharedStateError:
        """The one mapping of connection and server errors to ours; ``sent``: the request
        may have reached the server (marked with :func:`~sharedstate.errors.mark_sent`)."""
        where = f"the manager server at {self._where}"
        error: SharedStateError
        if isinstance(exc, AuthenticationError):
            error = BackendUnavailableError(f"{where} refused the authkey of {self.describe()}")
        elif isinstance(exc, _ServerError):
            error = BackendUnavailableError(f"{where} failed: {exc}")
        elif isinstance(exc, TimeoutError) and sent:
            error = StoreTimeoutError(f"{where} did not answer within {self.timeout:g} s")
        elif isinstance(exc, TimeoutError):
            error = BackendUnavailableError(
                f"cannot reach {where} within {self.connect_timeout:g} s (?connect_timeout=)"
            )
        elif sent:
            error = BackendUnavailableError(f"lost the connection to {where}: {exc}")
        elif isinstance(exc, EOFError):
            error = BackendUnavailableError(f"{where} closed the connection: {exc}")
        else:
            detail = getattr(exc, "strerror", None) or exc
            error = BackendUnavailableError(
                f"cannot reach {where}: {detail} (is `sharedstate serve` running?)"
            )
        return mark_sent(error) if sent else error

    def _request(self, connection: _SocketConnection, request: tuple[Any, ...]) -> Any:
        connection.send(request)
        kind, result = connection.recv()
        if kind != "#RETURN":
            raise _ServerError(result)
        return result

    def _attach(self) -> str:
        """The server's id of its registry (a request on a connection of its own, as the
        manager protocol wants for ``create``)."""
        connection = self._open()
        try:
            return self._request(connection, (None, "create", ("registry",), {}))[0]
        finally:
            connection.close()

    def _connect(self) -> _SocketConnection:
        """A new connection, serving requests on the registry; checks the server's epoch."""
        connection = self._open()
        try:
            self._request(connection, (None, "accept_connection", ("sharedstate",), {}))
            try:
                epoch = (
                    self._request(connection, (self._ident, "epoch", (), {}))
                    if self._ident
                    else None
                )
            except _ServerError:  # an id from a previous server
                epoch = None
            if epoch is None:
                self._ident = self._attach()
                epoch = self._request(connection, (self._ident, "epoch", (), {}))
        except (_ServerError, OSError, EOFError) as exc:
            connection.close()
            raise self._translate(exc, sent=False) from exc
        except BaseException:
            connection.close()
            raise
        known, self._epoch = self._epoch, epoch
        if known is not None and known != epoch:
            self._pool.release(connection)
            raise StateLostError(
                f"the manager server at {self._where} was restarted and its state, which "
                "lives in its memory only, is gone; names used before start again from "
                "nothing (the next call re-creates them)"
            )
        return connection

    def _call(self, method: str, *args: Any) -> Any:
        pool = self._pool
        connection = pool.acquire()
        while connection.poll(0):  # idle yet readable: closed by a server that went away
            pool.discard(connection)
            connection = pool.acquire()
        try:
            left = time_left(self.timeout)  # what the call's deadline leaves
            connection._sock.settimeout(left)
            connection.send((self._ident, method, args, {}))
            kind, result = connection.recv()
        except (OSError, EOFError) as exc:
            pool.discard(connection)
            raise self._translate(exc, sent=True) from exc
        except BaseException:
            pool.discard(connection)
            raise
        pool.release(connection)
        if kind != "#RETURN":  # the server answered with an error: nothing took effect
            raise self._translate(_ServerError(result), sent=False)
        return result

    # -- records -------------------------------------------------------------------------
    def load(self, key: str, since: int | None = None) -> Record | None:
        found = self._call("load", key)
        return Record(*found) if found is not None else None

    def compare_and_set(
        self, key: str, expected: int | None, data: bytes, parts: PartsWrite | None = None
    ) -> tuple[bool, Record | None]:
        ok, version, current = self._call("compare_and_set", key, expected, data)
        if ok:
            return True, Record(version, data)
        return False, Record(version, current) if version is not None else None

    def delete(self, key: str) -> bool:
        return self._call("delete", key)

    def keys(self, prefix: str) -> Iterable[str]:
        return self._call("keys", prefix)

    # -- counters ------------------------------------------------------------------------
    def counter_add(self, key: str, delta: int, call_id: str | None = None) -> int:
        self.check_counter(key, delta, "amount")
        if call_id is None:
            value = self._call("counter_add", key, delta)
        else:
            sent_at = time.monotonic()
            try:
                value = self._call("counter_add", key, delta, call_id)
            except SharedStateError as exc:
                if request_sent(exc):
                    self._in_doubt.lost(call_id, sent_at)
                raise
        if value is None:
            raise self.counter_overflow(key, f"adding {delta} would take it out of range")
        return value

    def counter_outcome(self, key: str, call_id: str) -> Any:
        status, value = self._call("counter_outcome", key, call_id, self._in_doubt.age(call_id))
        return value if status == "applied" else None if status == "fenced" else UNKNOWN

    def counter_get(self, key: str) -> int:
        return self._call("counter_get", key)

    def counter_set(self, key: str, value: int) -> None:
        self.check_counter(key, value)
        self._call("counter_set", key, value)

    def close(self) -> None:
        self._pool.drain()
