"""``postgresql://user[:password]@host:5432/db``: records and counters in PostgreSQL tables.

Layout: two tables, ``{table}_records (key, version, data)`` and ``{table}_counters (key,
value)``, with ``?table=`` (default ``sharedstate``) so that apps can share a database;
the store's ``?prefix=`` separates names inside one table. Credentials, TLS (``sslmode``,
``sslrootcert``...) and other libpq options travel in the URL as usual.

Why it is exact and fast:

* **Compare-and-set is one statement**: an ``UPDATE ... WHERE version = %s RETURNING`` in a
  CTE, whose other branch returns the current row when the update matched nothing. A row
  lock makes the version check and the write one step (a concurrent writer waits, then
  PostgreSQL re-checks the condition on the newest row version), and autocommit makes the
  statement its own transaction: one round trip per object call when the cache is current,
  one more on a conflict. (When the conflict came from a transaction that committed while
  the statement ran, the returned row is from the statement's older snapshot; that is
  detected, version equal to the expected one, and read again.)
* **Counters are ``UPDATE ... RETURNING``**, falling back to an upsert the first time.
* **psycopg_pool**, one pool per process (made again after ``fork``; psycopg closes a
  connection only in the process that opened it, so a child never says goodbye on its
  parent's socket). Statements are prepared by psycopg after a few uses.
* **gevent**: psycopg 3 waits with ``select`` when gevent has patched it, so a query
  suspends only its own greenlet.

Errors: an unreachable server or refused password is reported as
:class:`~sharedstate.errors.BackendUnavailableError` naming host:port, within
``?connect_timeout=`` (default 2 s); a statement that runs past ``?timeout=`` (default 10 s,
``statement_timeout`` on the server) as :class:`~sharedstate.errors.StoreTimeoutError`.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
import weakref
from collections.abc import Callable, Iterable
from typing import Any, ClassVar, TypeVar
from urllib.parse import urlsplit

import psycopg
import psycopg_pool

from ..errors import BackendUnavailableError, InvalidNameError, InvalidURLError, StoreTimeoutError
from .base import Backend, Record, redact_url, scrub

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
        "channel_binding",
        "gssencmode",
        "passfile",
    }
)

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,40}\Z")


class PostgresBackend(Backend):
    """Records and counters in two tables; compare-and-set as one conditional UPDATE."""

    schemes = ("postgresql", "postgres")
    parameters: ClassVar[frozenset[str]] = frozenset(
        {"timeout", "connect_timeout", "table", "pool_min", "pool_max"} | LIBPQ_PARAMETERS
    )

    def __init__(self, url: str, options: dict[str, str]) -> None:
        super().__init__(url, options)
        table = options.get("table", "sharedstate")
        if not _IDENTIFIER.match(table):
            raise InvalidURLError(
                f"?table= must be a plain SQL name (letters, digits, _), not {table!r}"
            )
        try:
            self.timeout = float(options.get("timeout", "10"))
            self.connect_timeout = float(options.get("connect_timeout", min(2.0, self.timeout)))
            self.pool_min = int(options.get("pool_min", "1"))
            self.pool_max = int(options.get("pool_max", "16"))
        except ValueError as exc:
            raise InvalidURLError(f"bad number in {self.describe()}: {exc}") from None
        parts = urlsplit(url)
        self._where = f"{parts.hostname or 'localhost'}:{parts.port or 5432}"
        libpq = "&".join(f"{k}={v}" for k, v in options.items() if k in LIBPQ_PARAMETERS)
        # libpq's connect_timeout is whole seconds, at least 2 (it rounds smaller values up)
        libpq += ("&" if libpq else "") + f"connect_timeout={max(2, round(self.connect_timeout))}"
        self._conninfo = f"postgresql://{parts.netloc}{parts.path}?{libpq}"
        # plain strings (the table name is checked above): psycopg caches their parsing
        names = {"records": f'"{table}_records"', "counters": f'"{table}_counters"'}
        self._sql = {name: statement.format(**names) for name, statement in _STATEMENTS.items()}
        # the same number in every process: Python's hash() of a str is salted per process,
        # which let separately started processes create the tables at the same time
        self._schema_lock_id = int.from_bytes(
            hashlib.sha256(b"sharedstate schema " + table.encode()).digest()[:8], "big", signed=True
        )
        self._pool: psycopg_pool.ConnectionPool | None = None
        self._pool_pid = 0
        self._inherited: list[Any] = []
        self._lock = threading.Lock()
        self._cursors: weakref.WeakKeyDictionary[psycopg.Connection[Any], psycopg.Cursor[Any]] = (
            weakref.WeakKeyDictionary()
        )

    # -- connections ---------------------------------------------------------------------
    def _configure(self, connection: psycopg.Connection) -> None:
        connection.execute(f"SET statement_timeout = {int(self.timeout * 1000)}")

    def _open_pool(self) -> psycopg_pool.ConnectionPool:
        with self._lock:
            if self._pool is not None and self._pool_pid == os.getpid():
                return self._pool
            if self._pool is not None:  # made by the parent before fork: never touch it
                self._inherited.append(self._pool)
            self._check_reachable()
            pool = psycopg_pool.ConnectionPool(
                self._conninfo,
                min_size=self.pool_min,
                max_size=max(self.pool_max, self.pool_min),
                kwargs={"autocommit": True},
                configure=self._configure,
                timeout=self.timeout,
                open=False,
                name="sharedstate",
            )
            pool.open(wait=False)
            self._pool, self._pool_pid = pool, os.getpid()
            return pool

    def _check_reachable(self) -> None:
        """Connects once, directly, before the pool exists: the pool connects in background
        threads and would report only "no connection after N s", not why (refused,
        wrong password). This connection also creates the tables."""
        try:
            with psycopg.connect(self._conninfo, autocommit=True) as connection:
                self._create_schema(connection)
        except psycopg.Error as exc:
            raise self._translate(exc) from exc

    def _create_schema(self, connection: psycopg.Connection) -> None:
        # CREATE TABLE IF NOT EXISTS races with itself in PostgreSQL (a unique violation
        # on pg_type); an advisory lock makes concurrent first connections take turns.
        with connection.transaction():
            connection.execute("SELECT pg_advisory_xact_lock(%s)", (self._schema_lock_id,))
            connection.execute(self._sql["schema_records"])
            connection.execute(self._sql["schema_counters"])

    def _run(self, work: Callable[[psycopg.Cursor[Any]], T]) -> T:
        """Runs ``work`` on a pooled connection's cursor. One cursor per connection, made
        once: a new cursor per statement costs about as much as dumping the parameters."""
        pool = self._pool
        if pool is None or self._pool_pid != os.getpid():
            pool = self._open_pool()
        try:
            connection = pool.getconn()
        except psycopg_pool.PoolTimeout as exc:
            raise StoreTimeoutError(
                f"no connection to PostgreSQL at {self.describe()} within {self.timeout:g} s "
                f"(server down, or all {self.pool_max} pooled connections busy; ?pool_max=): {exc}"
            ) from exc
        try:
            cursor = self._cursors.get(connection)
            if cursor is None:
                cursor = self._cursors[connection] = connection.cursor()
            return work(cursor)
        except psycopg.Error as exc:
            raise self._translate(exc) from exc
        finally:
            pool.putconn(connection)  # the pool drops a connection that broke

    def _translate(self, exc: Exception) -> Exception:
        message = scrub(str(exc).strip().replace(self.url, redact_url(self.url)), self.url)
        if isinstance(exc, psycopg.DataError) and "NUL (0x00)" in message:  # found before sending
            return InvalidNameError(
                f"PostgreSQL at {self._where} cannot hold a name containing a NUL byte "
                f"('\\x00'): its text keys cannot contain one; use a name without it ({message})"
            )
        if isinstance(exc, psycopg.errors.QueryCanceled):
            return StoreTimeoutError(
                f"PostgreSQL at {self._where} ran a statement past {self.timeout:g} s (?timeout=): {message}"
            )
        if "password" in message or "authentication" in message:
            return BackendUnavailableError(
                f"PostgreSQL at {self._where} refused the credentials of {self.describe()}: {message}"
            )
        if "timeout expired" in message:
            return BackendUnavailableError(
                f"cannot reach PostgreSQL at {self._where} within {self.connect_timeout:g} s: {message}"
            )
        if isinstance(exc, psycopg.OperationalError):
            return BackendUnavailableError(f"cannot use PostgreSQL at {self._where}: {message}")
        return BackendUnavailableError(f"PostgreSQL at {self._where} failed: {message}")

    # -- records -------------------------------------------------------------------------
    def load(self, key: str) -> Record | None:
        row = self._run(lambda c: c.execute(self._sql["load"], (key,)).fetchone())
        return Record(row[0], bytes(row[1])) if row else None

    def compare_and_set(
        self, key: str, expected: int | None, data: bytes
    ) -> tuple[bool, Record | None]:
        if expected is None:
            params: dict[str, Any] = {"k": key, "d": data}
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
            return int(row[0])

        return self._run(add)

    def counter_get(self, key: str) -> int:
        row = self._run(lambda c: c.execute(self._sql["counter_get"], (key,)).fetchone())
        return int(row[0]) if row else 0

    def counter_set(self, key: str, value: int) -> None:
        self.check_counter(key, value)
        self._run(lambda c: c.execute(self._sql["counter_set"], (key, value)))

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None and self._pool_pid == os.getpid():
            pool.close()


_STATEMENTS: dict[str, str] = {
    "schema_records": (
        "CREATE TABLE IF NOT EXISTS {records} ("
        " key text PRIMARY KEY, version bigint NOT NULL, data bytea NOT NULL)"
    ),
    "schema_counters": (
        "CREATE TABLE IF NOT EXISTS {counters} (key text PRIMARY KEY, value bigint NOT NULL)"
    ),
    "load": ("SELECT version, data FROM {records} WHERE key = %s"),
    # success: (new version, NULL); failure: the current (version, data), or no row.
    # %b sends the data in binary: no bytea escaping on either side (5-10% of a call)
    "insert": (
        "WITH written AS (INSERT INTO {records} (key, version, data) VALUES (%(k)s, 1, %(d)b)"
        " ON CONFLICT (key) DO NOTHING RETURNING version)"
        " SELECT version, NULL::bytea FROM written"
        " UNION ALL SELECT version, data FROM {records}"
        " WHERE key = %(k)s AND NOT EXISTS (SELECT FROM written)"
    ),
    "update": (
        "WITH written AS (UPDATE {records} SET version = version + 1, data = %(d)b"
        " WHERE key = %(k)s AND version = %(v)s RETURNING version)"
        " SELECT version, NULL::bytea FROM written"
        " UNION ALL SELECT version, data FROM {records}"
        " WHERE key = %(k)s AND NOT EXISTS (SELECT FROM written)"
    ),
    "delete_record": ("DELETE FROM {records} WHERE key = %s"),
    "delete_counter": ("DELETE FROM {counters} WHERE key = %s"),
    "keys": (
        "SELECT key FROM {records} WHERE left(key, %s) = %s"
        " UNION SELECT key FROM {counters} WHERE left(key, %s) = %s ORDER BY 1"
    ),
    "counter_add": ("UPDATE {counters} SET value = value + %s WHERE key = %s RETURNING value"),
    "counter_upsert": (
        "INSERT INTO {counters} (key, value) VALUES (%s, %s)"
        " ON CONFLICT (key) DO UPDATE SET value = {counters}.value + EXCLUDED.value RETURNING value"
    ),
    "counter_get": ("SELECT value FROM {counters} WHERE key = %s"),
    "counter_set": (
        "INSERT INTO {counters} (key, value) VALUES (%s, %s)"
        " ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value"
    ),
}
