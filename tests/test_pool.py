"""The idle-connection pool on its own: reuse, bounds, and fork (a child never uses or
closes a connection its parent still uses)."""

from __future__ import annotations

import os

from sharedstate.backends.pool import IdlePool


class Conn:
    made = 0

    def __init__(self) -> None:
        Conn.made += 1
        self.number = Conn.made
        self.closed = False


def _pool(max_idle: int = 64) -> tuple[IdlePool[Conn], list[Conn]]:
    closed: list[Conn] = []

    def close(conn: Conn) -> None:
        conn.closed = True
        closed.append(conn)

    return IdlePool(Conn, close, max_idle), closed


def test_released_connections_are_reused_last_in_first_out():
    pool, _ = _pool()
    a, b = pool.acquire(), pool.acquire()
    pool.release(a)
    pool.release(b)
    assert pool.acquire() is b
    assert pool.acquire() is a
    assert pool.acquire() not in (a, b)  # none idle: a new one


def test_idle_connections_beyond_the_bound_are_closed():
    pool, closed = _pool(max_idle=1)
    a, b = pool.acquire(), pool.acquire()
    pool.release(a)
    pool.release(b)
    assert closed == [b]


def test_discarded_and_drained_connections_are_closed():
    pool, closed = _pool()
    a, b = pool.acquire(), pool.acquire()
    pool.discard(a)
    pool.release(b)
    pool.drain()
    assert closed == [a, b]
    assert pool.acquire() not in (a, b)


def test_a_forked_child_opens_its_own_and_never_closes_the_parents():
    pool, closed = _pool()
    held, idle = pool.acquire(), pool.acquire()
    pool.release(idle)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report, then leave without running any cleanup
        try:
            fresh = pool.acquire()
            pool.release(fresh)
            pool.drain()  # closes the child's own, never the parent's
            ok = fresh is not idle and fresh is not held and not held.closed and not idle.closed
            os.write(write, b"ok" if ok else b"bad")
        finally:
            os._exit(0)
    os.close(write)
    answer = os.read(read, 8)
    os.waitpid(pid, 0)
    assert answer == b"ok"
    assert pool.acquire() is idle  # the parent's pool is untouched
    assert closed == []


class Finalized:
    """A connection that says so (on a pipe) when it is freed: what sqlite3 and psycopg
    connections do when freed is close themselves, which in a forked child harms the
    parent (SQLite may remove the write-ahead log; PostgreSQL ends the parent's session)."""

    pipe = -1

    def __del__(self) -> None:
        if Finalized.pipe >= 0:
            os.write(Finalized.pipe, b"x")


def test_a_forked_child_never_frees_what_it_inherited_even_when_the_pool_goes():
    import gc

    pool: IdlePool[Finalized] | None = IdlePool(Finalized, lambda conn: None)
    assert pool is not None
    held, idle = pool.acquire(), pool.acquire()
    pool.release(idle)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            Finalized.pipe = write
            del held, idle
            pool = None  # the child's Store (and its pool) is garbage-collected
            gc.collect()
            os.write(write, b"done")
        finally:
            os._exit(0)
    os.close(write)
    answer = b""
    while chunk := os.read(read, 64):
        answer += chunk
    os.waitpid(pid, 0)
    assert answer == b"done", "the child freed (so closed) a connection of its parent's"
