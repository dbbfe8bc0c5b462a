"""A lean, fork-safe pool of idle connections, for every backend that connects.

Why not one connection per thread, or the driver's own pool:

* one per thread leaks under gevent, where every request runs in a new greenlet (a
  ``threading.local`` is then per greenlet), and a new greenlet would open a new connection;
* redis-py 8's pool spends about as long in ``get_connection``/``release`` (health checks,
  metrics) as the loopback round trip itself, which halves the rate of a one-trip call.

Here taking and giving back a connection is a ``list.pop``/``list.append`` (atomic under the
GIL, and never a switch point under gevent), so the pool holds as many connections as calls
ran at once at the peak. After ``fork`` the child starts an empty pool and keeps the
parent's connections referenced but untouched, so that nothing (not even a finalizer's
goodbye message) is sent on a socket the parent still uses: two processes writing and
reading one socket interleave their messages and each reads the other's replies.
"""

from __future__ import annotations

import os
import select
import weakref
from collections.abc import Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")

#: how many times this process's line has forked; a pool made in an earlier generation
#: belongs to an ancestor process. Cheaper to compare than os.getpid() (a system call),
#: which would otherwise run twice on every call.
forks = [0]
#: every pool of this process, so that a forked child can set their connections aside
_POOLS: weakref.WeakSet[IdlePool[Any]] = weakref.WeakSet()
#: connections a forked child inherited: never used, and never closed, by the child. Closing
#: one there is what the warnings are about: SQLite's close may checkpoint and remove the
#: write-ahead log under the parent's feet (committed writes lost), PostgreSQL's sends a
#: Terminate that ends the parent's session. Kept referenced here, they outlive their pool,
#: their Store and the threads that held them, none of which survive in the child.
_INHERITED: list[Any] = []


def _set_inherited_aside() -> None:
    forks[0] += 1
    for pool in list(_POOLS):
        _INHERITED.extend(pool._made.values())
        pool._made = {}
        pool._idle = []
        pool._generation = forks[0]


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_set_inherited_aside)


class IdlePool(Generic[T]):
    """Connections made by ``factory`` on demand, reused LIFO, per process."""

    def __init__(
        self, factory: Callable[[], T], close: Callable[[T], None], max_idle: int = 64
    ) -> None:
        self._factory = factory
        self._close = close
        self._max_idle = max_idle
        self._generation = forks[0]
        self._idle: list[T] = []
        #: every connection this pool made in this process and has not closed, by id:
        #: what ``discard`` may close, and what a forked child sets aside
        self._made: dict[int, T] = {}
        _POOLS.add(self)

    def acquire(self) -> T:
        """An idle connection of this process, or a new one (which may raise)."""
        if self._generation != forks[0]:
            self._after_fork()
        try:
            return self._idle.pop()
        except IndexError:
            connection = self._factory()
            self._made[id(connection)] = connection
            return connection

    def release(self, connection: T) -> None:
        """Gives back a connection that is in a clean state (no reply pending): the very
        object ``acquire`` returned (the pool knows its connections by identity)."""
        if id(connection) in self._made and len(self._idle) < self._max_idle:
            self._idle.append(connection)
        else:
            self.discard(connection)

    def discard(self, connection: T) -> None:
        """Closes a connection whose state is unknown (an error happened on it). One this
        process did not make (a parent's, held across fork by the forking thread) is left
        alone."""
        if self._made.pop(id(connection), None) is None:
            return
        try:
            self._close(connection)
        except Exception:  # closing a broken connection may fail too; it is gone either way
            pass

    def drain(self) -> None:
        """Closes every idle connection of this process."""
        if self._generation != forks[0]:
            self._after_fork()
        idle, self._idle = self._idle, []
        for connection in idle:
            self.discard(connection)

    def _after_fork(self) -> None:
        """A pool made before a fork whose at-fork hook did not see it (made while the
        hook ran): start empty here too."""
        _INHERITED.extend(self._made.values())
        self._made = {}
        self._idle = []
        self._generation = forks[0]


def readable_now(fd: int) -> bool:
    """Whether a socket has something to read at once. On an idle pooled connection that
    means the server closed it (or said why before closing): it is dropped unused. ``poll``
    where it exists (``select`` refuses descriptors past 1023); gevent's patching removes
    it and makes ``select`` cooperative, without that limit."""
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        return bool(poller.poll(0))
    return bool(select.select([fd], [], [], 0)[0])
