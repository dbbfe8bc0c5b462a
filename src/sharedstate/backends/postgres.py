"""``postgresql://user[:password]@host:5432/db``: records and counters in PostgreSQL tables.

Layout: ``{table}_records (key, version, data)``, ``{table}_counters (key, value)``, the
counters' call log ``{table}_calls (id, value, at)`` and the parts of large objects
``{table}_parts (key, part, version, data)``, with ``?table=`` (default ``sharedstate``) so
that apps can share a database; the store's ``?prefix=`` separates names inside one table.
Credentials, TLS (``sslmode``, ``sslrootcert``...) and other libpq options travel in the
URL as usual.

Why it is exact and fast:

* **Compare-and-set is one statement**: an ``UPDATE ... WHERE version = %s RETURNING`` in a
  CTE, whose other branch returns the current row when the update matched nothing. A row
  lock makes the version check and the write one step (a concurrent writer waits, then
  PostgreSQL re-checks the condition on the newest row version), and autocommit makes the
  statement its own transaction: one round trip per object call when the cache is current,
  one more on a conflict. (When the conflict came from a transaction that committed while
  the statement ran, the returned row is from the statement's older snapshot; that is
  detected, version equal to the expected one, and read again.)
* **Parts** (``Parts``): one row per part, stamped with the version that wrote it (data
  NULL: a tombstone), indexed by (key, version), and the tombstones alone by a partial
  index for their purge. A write of parts is the compare-and-set's one statement with
  data-modifying CTEs that act only if the head was written (the parts; a reset's
  deletions, or every 64th version the purge of old tombstones); a load since version
  ``v`` is one statement too, the head's row UNION ALL the part rows after ``v`` (one
  snapshot), costing the parts changed, not all.
* **Counters are ``UPDATE ... RETURNING``**, falling back to an upsert the first time. An
  add given a call id (the engine always gives one) also logs ``id -> value`` in the table
  ``{table}_calls``, in the same statement: after a lost reply, ``counter_outcome`` inserts
  the id as a *fence* (no value) or finds the value. The primary key decides between the two
  whichever comes first: a fenced add's own insert of its id fails, which undoes its add
  too, even if the statement was still on its way. Entries are kept
  ``CALLS_KEPT_SECONDS`` (120 s, server clock), trimmed by the clients a little at a time;
  an add asked about after that long is fenced but its outcome is ``UNKNOWN``.
* **Connections**: our own per-process pool (``pool.py``, as for the other servers), at most
  ``?pool_max=`` (16) in use at once (``?pool_min=`` is accepted and unused: nothing is
  opened ahead). A connection is made in the calling thread, so a call
  learns why it cannot connect and a server that comes back is used at once (no background
  reconnection back-off). An idle connection the server closed is dropped before use; a
  child after ``fork`` opens its own and never touches its parent's.
* **gevent**: psycopg 3 waits with ``select`` when gevent has patched it, so a query
  suspends only its own greenlet.

Time limits, client side: every wait on the server ends by the call's deadline
(``?timeout=``, default 10 s; :func:`~sharedstate.backends.base.time_left`), also when the
server is paused or the network partitioned, where the server's ``statement_timeout`` (set a
little under ``?timeout=``) never comes: psycopg's waits are bounded
(``postgres_sql.BoundedConnection``) and a connection that timed out is closed. TCP
keepalives and ``tcp_user_timeout`` find dead peers on idle connections, and sockets close
with ``SO_LINGER`` 0, so that a statement given up on is not delivered later.

Errors: an unreachable server or refused password is reported as
:class:`~sharedstate.errors.BackendUnavailableError` naming host:port, within
``?connect_timeout=`` (default 2 s, or ``?timeout=`` if smaller; never past the call's
deadline); a statement past its time as
:class:`~sharedstate.errors.StoreTimeoutError`. An error that may follow the statement's
arrival (the connection broke or timed out) is marked ``request_sent``; an error the server
answered (the statement failed, so it changed nothing) or one before sending is not.
"""

from __future__ import annotations

import hashlib
import os
import random
import re
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, ClassVar, TypeVar
from urllib.parse import urlsplit

import psycopg
from psycopg.pq import TransactionStatus

from ..errors import (
    BackendUnavailableError,
    InvalidNameError,
    InvalidURLError,
    SharedStateError,
    StoreTimeoutError,
    mark_sent,
    request_sent,
)
from .base import UNKNOWN, Backend, PartsWrite, Record, redact_url, scrub, time_left
from .calls import InDoubt, default_age
from .pool import IdlePool, readable_now
from .postgres_sql import (
    CALLS_KEPT_SECONDS,
    STATEMENTS,
    TRIM_AT_MOST,
    TRIM_EVERY,
    BoundedConnection,
    WaitTimeout,
    liveness,
    parts_record,
    parts_write,
)

T = TypeVar("T")

#: libpq options that may be given in the URL's query string, passed on as they are
LIBPQ_PARAMETERS = frozenset(
    {
        "sslmode",
        "sslrootcert",
        "sslcert",
        "sslkey",
        "sslpassword",
        "sslcrl",
        "application_name",
        "target_session_attrs",
        "options",
        "keepalives",
        "keepalives_idle",
        "keepalives_interval",
        "keepalives_count",
        "tcp_user_timeout",
        "channel_binding",
        "gssencmode",
        "passfile",
    }
)

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,40}\Z")


class PostgresBackend(Backend):
    """Records and counters in two tables; compare-and-set as one conditional UPDATE."""

    schemes = ("postgresql", "postgres")
    keeps_parts = True
    parameters: ClassVar[frozenset[str]] = frozenset(
        {"connect_timeout", "table", "pool_min", "pool_max"} | LIBPQ_PARAMETERS
    )

    def __init__(self, url: str, options: dict[str, str], timeout: float = 10.0) -> None:
        super().__init__(url, options, timeout)
        table = options.get("table", "sharedstate")
        if not _IDENTIFIER.match(table):
            raise InvalidURLError(
                f"?table= must be a plain SQL name (letters, digits, _), not {table!r}"
            )
        try:
            self.connect_timeout = float(options.get("connect_timeout", min(2.0, self.timeout)))
            self.pool_min = int(options.get("pool_min", "1"))
            self.pool_max = int(options.get("pool_max", "16"))
        except ValueError as exc:
            raise InvalidURLError(f"bad number in {self.describe()}: {exc}") from None
        parts = urlsplit(url)
        self._where = f"{parts.hostname or 'localhost'}:{parts.port or 5432}"
        libpq = {k: v for k, v in options.items() if k in LIBPQ_PARAMETERS}
        # libpq's connect_timeout is whole seconds, at least 2 (it rounds smaller values up)
        libpq["connect_timeout"] = str(max(2, round(self.connect_timeout)))
        for name, value in liveness(self.timeout).items():
            libpq.setdefault(name, value)
        query = "&".join(f"{k}={v}" for k, v in libpq.items())
        self._conninfo = f"postgresql://{parts.netloc}{parts.path}?{query}"
        # plain strings (the table name is checked above): psycopg caches their parsing
        names = {
            "records": f'"{table}_records"',
            "counters": f'"{table}_counters"',
            "calls": f'"{table}_calls"',
            "calls_at": f'"{table}_calls_at"',
            "parts": f'"{table}_parts"',
            "parts_since": f'"{table}_parts_since"',
            "parts_removed": f'"{table}_parts_removed"',
        }
        self._sql = {name: statement.format(**names) for name, statement in STATEMENTS.items()}
        # the same number in every process: Python's hash() of a str is salted per process,
        # which let separately started processes create the tables at the same time
        self._schema_lock_id = int.from_bytes(
            hashlib.sha256(b"sharedstate schema " + table.encode()).digest()[:8], "big", signed=True
        )
        self._pool: IdlePool[tuple[BoundedConnection, psycopg.Cursor[Any]]] = IdlePool(
            self._connect, _close, max(self.pool_max, self.pool_min)
        )
        #: at most ?pool_max= statements at once per process (connections in use)
        self._slots = threading.BoundedSemaphore(max(self.pool_max, 1))
        self._schema_ready_in = 0
        self._lock = threading.Lock()
        self._in_doubt = InDoubt(default_age(self.timeout))
        self._logged = random.randrange(TRIM_EVERY)  # processes take turns trimming

    # -- connections ---------------------------------------------------------------------
    def _connect(self) -> tuple[BoundedConnection, psycopg.Cursor[Any]]:
        """A new connection (and its one cursor), made in the caller's thread within
        ``?connect_timeout=``, so that a call learns why it cannot connect (refused, wrong
        password) and a server that comes back is used at once: no background pool with
        its reconnection back-off. The first one of each process creates the tables."""
        left = time_left(self.timeout)
        deadline = time.monotonic() + left
        try:
            connection = BoundedConnection.connect_within(
                self._conninfo, min(self.connect_timeout, left)
            )
        except psycopg.Error as exc:
            raise self._translate(exc, sent=False) from exc
        try:
            connection.deadline = deadline
            if self._schema_ready_in != os.getpid():
                with self._lock:
                    if self._schema_ready_in != os.getpid():
                        self._create_schema(connection)
                        self._schema_ready_in = os.getpid()
            # a little under ?timeout=: a slow statement on a live server is cancelled
            # there (an error that says it did not happen) before the client gives up
            connection.execute(f"SET statement_timeout = {int(self.timeout * 900)}")
            connection.deadline = None
        except psycopg.Error as exc:
            connection.close()
            raise self._translate(exc, sent=False) from exc
        return connection, connection.cursor()

    def _create_schema(self, connection: psycopg.Connection) -> None:
        # CREATE TABLE IF NOT EXISTS races with itself in PostgreSQL (a unique violation
        # on pg_type); an advisory lock makes concurrent first connections take turns.
        with connection.transaction():
            connection.execute("SELECT pg_advisory_xact_lock(%s)", (self._schema_lock_id,))
            connection.execute(self._sql["schema_records"])
            connection.execute(self._sql["schema_counters"])
            connection.execute(self._sql["schema_calls"])
            connection.execute(self._sql["schema_calls_at"])
            for statement in ("schema_parts", "schema_parts_since", "schema_parts_removed"):
                connection.execute(self._sql[statement])

    def _acquire(self) -> tuple[BoundedConnection, psycopg.Cursor[Any]]:
        """An idle connection the server has not closed, or a new one. An idle connection
        with something to read was closed by the server (restarted, or its backend
        terminated: PostgreSQL says so before closing); nothing was sent on it yet, so it
        is dropped instead of failing the call."""
        pool = self._pool
        pair = pool.acquire()
        while pair[0].closed or readable_now(pair[0].pgconn.socket):
            pool.discard(pair)
            pair = pool.acquire()
        return pair

    def _run(self, work: Callable[[psycopg.Cursor[Any]], T]) -> T:
        """Runs ``work`` on a pooled connection's cursor, within ``?timeout=`` in all (the
        wait for a free slot, connecting, then every wait on the server: see
        :class:`BoundedConnection`). One cursor per connection, made once: a new cursor
        per statement costs about as much as dumping the parameters."""
        left = time_left(self.timeout)  # what the call's deadline leaves
        deadline = time.monotonic() + left
        if not self._slots.acquire(timeout=left):
            raise self._translate(TimeoutError("all connections busy"), sent=False)
        try:
            pair = self._acquire()  # given back as it came: the pool knows it by identity
            connection, cursor = pair
            try:
                connection.deadline = deadline
                result = work(cursor)
            except psycopg.Error as exc:
                # a server's error (the statement failed, so it changed nothing) leaves
                # the connection usable; a broken or timed-out one may have run it
                sent = connection.broken or isinstance(exc, WaitTimeout)
                if sent or connection.info.transaction_status != TransactionStatus.IDLE:
                    self._pool.discard(pair)
                else:
                    connection.deadline = None
                    self._pool.release(pair)
                raise self._translate(exc, sent=sent) from exc
            except SharedStateError:  # refused by our own check: the connection is fine
                if connection.info.transaction_status == TransactionStatus.IDLE:
                    connection.deadline = None
                    self._pool.release(pair)
                else:
                    self._pool.discard(pair)
                raise
            except BaseException:
                self._pool.discard(pair)  # interrupted: its state is unknown
                raise
            connection.deadline = None
            self._pool.release(pair)
            return result
        finally:
            self._slots.release()

    def _translate(self, exc: Exception, sent: bool) -> SharedStateError:
        """The one mapping of psycopg's errors to ours; ``sent``: the statement may have
        reached the server (marked with :func:`~sharedstate.errors.mark_sent`)."""
        message = scrub(str(exc).strip().replace(self.url, redact_url(self.url)), self.url)
        error: SharedStateError
        if isinstance(exc, psycopg.DataError) and "NUL (0x00)" in message:  # found before sending
            error = InvalidNameError(
                f"PostgreSQL at {self._where} cannot hold a name containing a NUL byte "
                f"('\\x00'): its text keys cannot contain one; use a name without it ({message})"
            )
        elif isinstance(exc, psycopg.errors.QueryCanceled):
            error = StoreTimeoutError(
                f"PostgreSQL at {self._where} ran a statement past {self.timeout:g} s (?timeout=): {message}"
            )
        elif isinstance(exc, WaitTimeout):
            error = StoreTimeoutError(
                f"PostgreSQL at {self._where} did not answer in time (by the call's deadline, "
                f"at most ?timeout={self.timeout:g} s; the connection was closed)"
            )
        elif isinstance(exc, TimeoutError):
            error = StoreTimeoutError(
                f"no connection to PostgreSQL at {self.describe()} within {self.timeout:g} s "
                f"(all {self.pool_max} pooled connections busy; ?pool_max=)"
            )
        elif "password" in message or "authentication" in message:
            error = BackendUnavailableError(
                f"PostgreSQL at {self._where} refused the credentials of {self.describe()}: {message}"
            )
        elif "timeout expired" in message:
            error = BackendUnavailableError(
                f"cannot reach PostgreSQL at {self._where} within {self.connect_timeout:g} s: {message}"
            )
        elif isinstance(exc, psycopg.OperationalError):
            error = BackendUnavailableError(f"cannot use PostgreSQL at {self._where}: {message}")
        else:
            error = BackendUnavailableError(f"PostgreSQL at {self._where} failed: {message}")
        return mark_sent(error) if sent else error

    # -- records -------------------------------------------------------------------------
    def load(self, key: str, since: int | None = None) -> Record | None:
        if since is not None:
            params = {"k": key, "s": since}
            sql = self._sql["load_parts"]
            return parts_record(self._run(lambda c: c.execute(sql, params, binary=True).fetchall()), since)
        row = self._run(lambda c: c.execute(self._sql["load"], (key,)).fetchone())
        return Record(row[0], bytes(row[1])) if row else None

    def compare_and_set(
        self, key: str, expected: int | None, data: bytes, parts: PartsWrite | None = None
    ) -> tuple[bool, Record | None]:
        if parts is not None:
            name, params = parts_write(key, expected, data, parts)
            row = self._run(lambda c: c.execute(self._sql[name], params).fetchone())
        elif expected is None:
            params = {"k": key, "d": data}
            row = self._run(lambda c: c.execute(self._sql["insert"], params).fetchone())
        else:
            params = {"k": key, "d": data, "v": expected}
            row = self._run(lambda c: c.execute(self._sql["update"], params).fetchone())
        if row is not None and row[1] is None:
            return True, Record(row[0], data)
        if row is None or row[0] == expected:
            # the other branch saw the statement's snapshot, older than the writer that
            # made the condition fail: read the row as it is now
            return False, self.load(key)
        return False, Record(row[0], bytes(row[1]))

    def delete(self, key: str) -> bool:
        def remove(cursor: psycopg.Cursor[Any]) -> bool:
            with cursor.connection.transaction():
                first = cursor.execute(self._sql["delete_record"], (key,)).rowcount
                second = cursor.execute(self._sql["delete_counter"], (key,)).rowcount
                cursor.execute(self._sql["delete_parts"], (key,))
            return first + second > 0

        return self._run(remove)

    def keys(self, prefix: str) -> Iterable[str]:
        rows = self._run(
            lambda c: c.execute(
                self._sql["keys"], (len(prefix), prefix, len(prefix), prefix)
            ).fetchall()
        )
        return [row[0] for row in rows]

    # -- counters ------------------------------------------------------------------------
    def counter_add(self, key: str, delta: int, call_id: str | None = None) -> int:
        self.check_counter(key, delta, "amount")

        def add(cursor: psycopg.Cursor[Any]) -> int:
            try:
                row = cursor.execute(self._sql["counter_add"], (delta, key)).fetchone()
                if row is None:  # first use of this counter
                    row = cursor.execute(self._sql["counter_upsert"], (key, delta)).fetchone()
            except psycopg.errors.NumericValueOutOfRange as exc:  # bigint: the statement failed
                raise self.counter_overflow(key, f"adding {delta} would take it out of range") from exc
            assert row is not None  # the upsert returns its row
            return int(row[0])

        if call_id is None:
            return self._run(add)
        params = {"k": key, "d": delta, "i": call_id}

        def add_logged(cursor: psycopg.Cursor[Any]) -> int:
            try:
                row = cursor.execute(self._sql["counter_add_logged"], params).fetchone()
                if row is None:  # first use of this counter
                    row = cursor.execute(self._sql["counter_upsert_logged"], params).fetchone()
            except psycopg.errors.UniqueViolation:  # the id is logged: sent again, or fenced
                row = cursor.execute(self._sql["call_get"], (call_id,)).fetchone()
                if row is None or row[0] is None:
                    raise
            except psycopg.errors.NumericValueOutOfRange as exc:  # bigint: the statement failed
                raise self.counter_overflow(key, f"adding {delta} would take it out of range") from exc
            assert row is not None  # the upsert returns its row
            return int(row[0])

        sent_at = time.monotonic()
        try:
            value = self._run(add_logged)
        except SharedStateError as exc:
            if request_sent(exc):
                self._in_doubt.lost(call_id, sent_at)
            raise
        self._logged += 1
        if self._logged % TRIM_EVERY == 0:
            self._trim()
        return value

    def _trim(self) -> None:
        """Drops old entries of the call log; its own step, so that its failure never
        hides an add that took effect (the next trim does the work)."""
        try:
            self._run(
                lambda c: c.execute(self._sql["calls_trim"], (CALLS_KEPT_SECONDS, TRIM_AT_MOST))
            )
        except SharedStateError:
            pass

    def counter_outcome(self, key: str, call_id: str) -> Any:
        """Fences the id (a row with no value: the add's own insert of it would then fail,
        undoing the add, even if its statement is still on its way), or finds its value."""

        def ask(cursor: psycopg.Cursor[Any]) -> tuple[bool, int | None]:
            if cursor.execute(self._sql["call_fence"], (call_id,)).fetchone() is not None:
                return True, None
            row = cursor.execute(self._sql["call_get"], (call_id,)).fetchone()
            return False, None if row is None else row[0]

        fenced_now, value = self._run(ask)
        if value is not None:
            return int(value)
        if fenced_now and self._in_doubt.age(call_id) >= CALLS_KEPT_SECONDS:
            return UNKNOWN  # logged so long ago that its entry may have been trimmed
        return None

    def counter_get(self, key: str) -> int:
        row = self._run(lambda c: c.execute(self._sql["counter_get"], (key,)).fetchone())
        return int(row[0]) if row else 0

    def counter_set(self, key: str, value: int) -> None:
        self.check_counter(key, value)
        self._run(lambda c: c.execute(self._sql["counter_set"], (key, value)))

    def close(self) -> None:
        self._pool.drain()


def _close(pair: tuple[BoundedConnection, psycopg.Cursor[Any]]) -> None:
    pair[0].close()
