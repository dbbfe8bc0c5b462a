"""A process-wide gate that keeps ``fork()`` from happening while a thread is inside SQLite.

Why: SQLite's library keeps process-wide mutexes (its memory allocator, its page cache, the
list of open files). A thread that is inside a SQLite call holds some of them for an
instant; a ``fork()`` in that instant copies them *locked* into the child, where no thread
will ever unlock them, and the child's first ``sqlite3.connect`` waits forever (measured:
about 1 fork in 100 while another thread runs SQLite calls). CPython's own at-fork handlers
cover the GIL and the import lock, not a C library's mutexes.

How: every SQLite call of this package runs inside the gate (``with GATE:``); a fork
(``os.register_at_fork``) first closes the gate and waits until no thread is inside, then
forks, then opens it again (in the child: a new gate, since the child has only the forking
thread). Threads pass the gate together, without a lock: entering appends to a list and
leaving pops from it (each atomic under the GIL), so SQLite calls never wait on each other
here, only on a fork, and the gate costs well under a microsecond a call. User code (a
method run inside a transaction) and our busy-wait pauses run outside it
(``with GATE.outside:``), so they never delay a fork, and a fork made from them does not
wait for its own thread. The wait is bounded (``FORK_WAIT``): a thread stuck inside SQLite
delays a fork, never blocks it. The gate is not re-entrant: our code enters it once.
"""

from __future__ import annotations

import os
import threading
import time
from types import TracebackType

#: the longest a fork waits for threads to leave SQLite (their calls take microseconds)
FORK_WAIT = 5.0


class ForkGate:
    """``with GATE:`` blocks never overlap a ``fork()`` of this process."""

    def __init__(self) -> None:
        self.inside: list[None] = []  # one entry per thread inside
        self.forking = False
        self._opened = threading.Event()  # set while no fork is under way
        self._opened.set()
        self.outside = _Outside(self)

    def __enter__(self) -> None:
        self.inside.append(None)  # first announce, then look: see before_fork
        if self.forking:
            self.inside.pop()
            self._opened.wait(FORK_WAIT)
            self.inside.append(None)

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            self.inside.pop()
        except IndexError:  # entered before a fork, in its parent (the child's gate is new)
            pass

    # -- at fork -------------------------------------------------------------------------
    def before_fork(self) -> None:
        """Closes the gate, then waits for the threads inside to leave. A thread that
        announced itself before the gate closed is waited for; one after it sees the gate
        closed (``forking`` is set before the count is read) and steps back."""
        self._opened.clear()
        self.forking = True
        deadline = time.monotonic() + FORK_WAIT
        while self.inside and time.monotonic() < deadline:
            time.sleep(0.0001)

    def after_fork_in_parent(self) -> None:
        self.forking = False
        self._opened.set()

    def after_fork_in_child(self) -> None:
        self.__init__()  # type: ignore[misc]  # the child's only thread is the forking one


class _Outside:
    """``with GATE.outside:`` leaves the gate for the block (entered again after it)."""

    def __init__(self, gate: ForkGate) -> None:
        self._gate = gate

    def __enter__(self) -> None:
        self._gate.__exit__(None, None, None)

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._gate.__enter__()


#: the one gate of this process, for every SQLite backend
GATE = ForkGate()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(
        before=GATE.before_fork,
        after_in_parent=GATE.after_fork_in_parent,
        after_in_child=GATE.after_fork_in_child,
    )
