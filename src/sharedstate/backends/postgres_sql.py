"""PostgreSQL's statements and its connection class with a client-side deadline.

Kept apart from ``postgres.py`` so that the backend reads as what it does; everything here
is what it says to the server, and how long it waits for an answer.
"""

from __future__ import annotations

import os
import socket
import struct
import time
from typing import Any

import psycopg
from psycopg import errors as _errors
from psycopg import waiting
from psycopg.conninfo import conninfo_attempts, make_conninfo

from .base import KEEP_REMOVED, Parts, PartsWrite, Record

#: how long the call log keeps an add's id: longer than any call waits for its outcome
CALLS_KEPT_SECONDS = 120.0
#: each process trims the call log once every this many logged adds...
TRIM_EVERY = 256
#: ...by at most this many rows: a bounded cost (a few ms), spread over those adds, and
#: several times the rate at which the adds grow the log
TRIM_AT_MOST = 2000
#: tombstones of removed parts are purged on writes at a version divisible by this
PURGE_EVERY = 64


class BoundedConnection(psycopg.Connection[Any]):
    """A psycopg connection whose every wait on the server ends by ``deadline``.

    psycopg waits for a statement's reply without limit, and ``statement_timeout`` is
    the server's own: a paused or partitioned server never sends it, and TCP keeps
    retrying for minutes. psycopg's ``wait`` takes a timeout; each wait here gets what
    is left until ``deadline`` (set by the backend per call, ``monotonic()``), then
    raises ``_WaitTimeout``, after which the backend closes the connection.
    """

    deadline: float | None = None

    def wait(self, gen: Any, interval: float = 0.1, timeout: float | None = None) -> Any:
        if timeout is None and self.deadline is not None:
            timeout = max(0.001, self.deadline - time.monotonic())
        return super().wait(gen, interval=interval, timeout=timeout)

    @classmethod
    def connect_within(cls, conninfo: str, seconds: float) -> BoundedConnection:
        """An autocommit connection, made within ``seconds`` (psycopg's ``connect`` rounds
        libpq's ``connect_timeout`` up to whole seconds, at least 2: too long for a call
        whose deadline is near). Each host of the URL is tried in turn, as psycopg does."""
        deadline = time.monotonic() + seconds
        error: psycopg.Error = _errors.ConnectionTimeout("connection timeout expired")
        for attempt in conninfo_attempts(cls._get_connection_params(conninfo)):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                gen = cls._connect_gen(make_conninfo("", **attempt))
                connection = waiting.wait_conn(gen, interval=0.1, timeout=left)
            except _errors._WaitTimeout:
                error = _errors.ConnectionTimeout("connection timeout expired")
            except psycopg.Error as exc:
                error = exc
            else:
                connection.autocommit = True
                _abort_on_close(connection.pgconn.socket)
                return connection
        raise error


#: what a bounded wait raises when its time is up (psycopg's own, internal name)
WaitTimeout = _errors._WaitTimeout


def _abort_on_close(fd: int) -> None:
    """``SO_LINGER`` 0: closing resets the connection and drops what it had not delivered,
    so a statement given up on is not retransmitted to the server after the network heals."""
    try:
        sock = socket.socket(fileno=os.dup(fd))
    except OSError:
        return
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:  # a Unix socket: nothing in flight to drop
        pass
    finally:
        sock.close()


def liveness(timeout: float) -> dict[str, str]:
    """libpq options that make a dead peer an error within about ``timeout`` seconds, also
    on an idle pooled connection: TCP keepalives, and ``tcp_user_timeout`` (unacknowledged
    data: a partition). A paused server's kernel still acknowledges; that case is the
    deadline's (:class:`BoundedConnection`). The URL may set each one itself."""
    idle = max(1, round(timeout / 2))
    return {
        "keepalives": "1",
        "keepalives_idle": str(idle),
        "keepalives_interval": "1",
        "keepalives_count": "3",
        "tcp_user_timeout": str(max(1000, round(timeout * 1000))),
    }


#: a record's compare-and-set (the head): the CTE ``written`` returns the new version...
_INSERT = (
    "WITH written AS (INSERT INTO {records} (key, version, data) VALUES (%(k)s, 1, %(d)b)"
    " ON CONFLICT (key) DO NOTHING RETURNING version)"
)
_UPDATE = (
    "WITH written AS (UPDATE {records} SET version = version + 1, data = %(d)b"
    " WHERE key = %(k)s AND version = %(v)s RETURNING version)"
)
#: ...and the statement returns (new version, NULL) on success, else the current row (or none)
_CAS_RESULT = (
    " SELECT version, NULL::bytea FROM written"
    " UNION ALL SELECT version, data FROM {records}"
    " WHERE key = %(k)s AND NOT EXISTS (SELECT FROM written)"
)
#: The parts of a write (``PartsWrite``), in the head's statement, so in its transaction,
#: each CTE acting only if the head was written (the head's row lock orders the writers of
#: a record, and the version a writer expects was committed before its statement began,
#: so its snapshot holds every part): %(pn)b/%(pd)b the parts' names and data (NULL:
#: removed, leaving a tombstone), stamped with the head's new version...
_GIVEN = ", given AS (SELECT * FROM unnest(%(pn)b::text[], %(pd)b::bytea[]) AS g (part, data))"
_PUT = (
    ", put AS (INSERT INTO {parts} (key, part, version, data)"
    " SELECT %(k)s, g.part, w.version, g.data FROM written w, given g"
    " ON CONFLICT (key, part) DO UPDATE SET version = EXCLUDED.version, data = EXCLUDED.data)"
)
#: ...after a reset, which deletes every part not written again (a new record is written
#: as one: nothing of an earlier one may stay)...
_CLEARED = (
    ", cleared AS (DELETE FROM {parts} p WHERE p.key = %(k)s AND EXISTS (SELECT FROM written)"
    " AND NOT EXISTS (SELECT FROM given g WHERE g.part = p.part))"
)
#: ...or with the purge of the tombstones stamped %(purge)s or older, on every
#: PURGE_EVERY-th version. One statement per case, no flags: a prepared statement's
#: generic plan must not keep the branches it does not take. No CTE touches a row
#: another one does (a row deleted is never one written), as PostgreSQL requires.
_PURGED = (
    ", purged AS (DELETE FROM {parts} p WHERE p.key = %(k)s AND p.data IS NULL"
    " AND p.version <= %(purge)s AND EXISTS (SELECT FROM written)"
    " AND NOT EXISTS (SELECT FROM given g WHERE g.part = p.part))"
)

STATEMENTS: dict[str, str] = {
    "schema_records": (
        "CREATE TABLE IF NOT EXISTS {records} ("
        " key text PRIMARY KEY, version bigint NOT NULL, data bytea NOT NULL)"
    ),
    "schema_counters": (
        "CREATE TABLE IF NOT EXISTS {counters} (key text PRIMARY KEY, value bigint NOT NULL)"
    ),
    # the call log: one row per counter add given a call id (value: what it produced), or
    # a fence (value NULL); rows are trimmed after CALLS_KEPT_SECONDS (BRIN: appended in
    # time order, so the index is tiny and cheap to keep up)
    "schema_calls": (
        "CREATE TABLE IF NOT EXISTS {calls} (id text PRIMARY KEY, value bigint,"
        " at timestamptz NOT NULL DEFAULT clock_timestamp())"
    ),
    "schema_calls_at": "CREATE INDEX IF NOT EXISTS {calls_at} ON {calls} USING brin (at)",
    # the parts of large objects, one row each (data NULL: a tombstone), found by version
    # after a reader's (the index) and, for the purge, among the tombstones only
    "schema_parts": (
        "CREATE TABLE IF NOT EXISTS {parts} (key text NOT NULL, part text NOT NULL,"
        " version bigint NOT NULL, data bytea, PRIMARY KEY (key, part))"
    ),
    "schema_parts_since": "CREATE INDEX IF NOT EXISTS {parts_since} ON {parts} (key, version)",
    "schema_parts_removed": (
        "CREATE INDEX IF NOT EXISTS {parts_removed} ON {parts} (key, version) WHERE data IS NULL"
    ),
    "load": ("SELECT version, data FROM {records} WHERE key = %s"),
    # success: (new version, NULL); failure: the current (version, data), or no row.
    # %b sends the data in binary: no bytea escaping on either side (5-10% of a call)
    "insert": _INSERT + _CAS_RESULT,
    "update": _UPDATE + _CAS_RESULT,
    "parts_insert": _INSERT + _GIVEN + _CLEARED + _PUT + _CAS_RESULT,
    "parts_reset": _UPDATE + _GIVEN + _CLEARED + _PUT + _CAS_RESULT,
    "parts_update": _UPDATE + _GIVEN + _PUT + _CAS_RESULT,
    "parts_purge": _UPDATE + _GIVEN + _PURGED + _PUT + _CAS_RESULT,
    # the head (part NULL) and the parts after %(s)s, in one statement: one snapshot
    "load_parts": (
        "SELECT NULL::text, version, data FROM {records} WHERE key = %(k)s"
        " UNION ALL SELECT part, version, data FROM {parts}"
        " WHERE key = %(k)s AND version > %(s)s AND (data IS NOT NULL OR %(s)s > 0)"
    ),
    "delete_record": ("DELETE FROM {records} WHERE key = %s"),
    "delete_counter": ("DELETE FROM {counters} WHERE key = %s"),
    "delete_parts": ("DELETE FROM {parts} WHERE key = %s"),
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
    # an add and its log entry in one statement, so one transaction: if the id is already
    # logged (fenced), the insert's unique violation undoes the add too
    "counter_add_logged": (
        "WITH added AS (UPDATE {counters} SET value = value + %(d)s WHERE key = %(k)s"
        " RETURNING value)"
        " INSERT INTO {calls} (id, value) SELECT %(i)s, value FROM added RETURNING value"
    ),
    "counter_upsert_logged": (
        "WITH added AS (INSERT INTO {counters} (key, value) VALUES (%(k)s, %(d)s)"
        " ON CONFLICT (key) DO UPDATE SET value = {counters}.value + EXCLUDED.value"
        " RETURNING value)"
        " INSERT INTO {calls} (id, value) SELECT %(i)s, value FROM added RETURNING value"
    ),
    # a row if the fence went in (the id was not logged); waits for an add of the same id
    # still in progress, as any insert of a unique key does
    "call_fence": (
        "INSERT INTO {calls} (id, value) VALUES (%s, NULL) ON CONFLICT (id) DO NOTHING RETURNING id"
    ),
    "call_get": "SELECT value FROM {calls} WHERE id = %s",
    "calls_trim": (
        "DELETE FROM {calls} WHERE ctid = ANY(ARRAY(SELECT ctid FROM {calls}"
        " WHERE at < clock_timestamp() - make_interval(secs => %s) LIMIT %s))"
    ),
}


def parts_write(key: str, expected: int | None, data: bytes, parts: PartsWrite) -> tuple[str, dict[str, Any]]:
    """The statement and parameters of a compare-and-set with parts (see ``_GIVEN``)."""
    version = (expected or 0) + 1
    reset = parts.reset or expected is None
    changed = {p: d for p, d in parts.changed.items() if d is not None} if reset else parts.changed
    params: dict[str, Any] = {"k": key, "d": data, "pn": list(changed), "pd": list(changed.values())}
    if expected is None:
        return "parts_insert", params
    params["v"] = expected
    if reset:
        return "parts_reset", params
    if version % PURGE_EVERY:
        return "parts_update", params
    params["purge"] = version - KEEP_REMOVED
    return "parts_purge", params


def parts_record(rows: list[Any], since: int) -> Record | None:
    """The record and its parts from the rows of ``load_parts`` (read in binary)."""
    head = None
    changed: dict[str, bytes] = {}
    removed: list[str] = []
    for part, version, data in rows:
        if part is None:
            head = Record(version, data)
        elif data is not None:
            changed[part] = data
        else:
            removed.append(part)
    return None if head is None else Record(head.version, head.data, Parts(since, changed, tuple(removed)))
