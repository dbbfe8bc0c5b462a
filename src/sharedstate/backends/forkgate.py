"""A process-wide gate that keeps ``fork()`` from happening while a thread is inside SQLite.

Why: SQLite's library keeps process-wide mutexes (its memory allocator, its page cache, the
list of open files). A thread that is inside a SQLite call holds some of them for an
instant; a ``fork()`` in that instant copies them *locked* into the child, where no thread
will ever unlock them, and the child's first ``sqlite3.connect`` waits forever (measured:
about 1 fork in 100 while another thread runs SQLite calls). CPython's own at-fork handlers
cover the GIL and the import lock, not a C library's mutexes.

How: every SQLite call of this package passes the gate (:meth:`ForkGate.inside`); a fork
(``os.register_at_fork``) first closes the gate and waits until no thread is inside, then
forks, then opens it again (in the child: a new gate, since the child has only the forking
thread). Threads pass the gate together (a reader-writer lock: a counter under a short
lock), so SQLite calls never wait on each other here, only on a fork. A thread that forks
from inside (user code run within a transaction, see :meth:`ForkGate.outside`) does not
wait for itself. The wait is bounded (``FORK_WAIT``): a thread stuck inside SQLite delays a
fork, never blocks it.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

#: the longest a fork waits for threads to leave SQLite (their calls take microseconds)
FORK_WAIT = 5.0


class ForkGate:
    """Calls inside the gate never overlap a ``fork()`` of this process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._left = threading.Condition(self._lock)
        self._inside = 0  # threads inside now
        self._forking = False
        self._depth = threading.local()  # this thread's nesting, to pass once

    @contextmanager
    def inside(self) -> Iterator[None]:
        """Holds the gate open for this thread while the block runs (re-entrant)."""
        depth = getattr(self._depth, "n", 0)
        if depth == 0:
            self._enter()
        self._depth.n = depth + 1
        try:
            yield
        finally:
            self._depth.n = depth
            if depth == 0:
                self._leave()

    @contextmanager
    def outside(self) -> Iterator[None]:
        """Leaves the gate while the block runs (user code, which may fork or wait)."""
        depth = getattr(self._depth, "n", 0)
        if depth:
            self._depth.n = 0
            self._leave()
        try:
            yield
        finally:
            if depth:
                self._enter()
                self._depth.n = depth

    def _enter(self) -> None:
        with self._lock:
            while self._forking:
                self._left.wait()
            self._inside += 1

    def _leave(self) -> None:
        with self._lock:
            self._inside -= 1
            if self._forking and self._inside <= 0:
                self._left.notify_all()

    # -- at fork -------------------------------------------------------------------------
    def before_fork(self) -> None:
        self._lock.acquire()  # held across the fork: no thread enters meanwhile
        self._forking = True
        mine = 1 if getattr(self._depth, "n", 0) else 0
        deadline = time.monotonic() + FORK_WAIT
        while self._inside > mine and time.monotonic() < deadline:
            self._left.wait(deadline - time.monotonic())

    def after_fork_in_parent(self) -> None:
        self._forking = False
        self._left.notify_all()
        self._lock.release()

    def after_fork_in_child(self) -> None:
        depth = getattr(self._depth, "n", 0)
        self.__init__()  # type: ignore[misc]  # the child's only thread is the forking one
        if depth:
            self._inside, self._depth.n = 1, depth


#: the one gate of this process, for every SQLite backend
GATE = ForkGate()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(
        before=GATE.before_fork,
        after_in_parent=GATE.after_fork_in_parent,
        after_in_child=GATE.after_fork_in_child,
    )
