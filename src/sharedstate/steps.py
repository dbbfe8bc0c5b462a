"""What a step of the engine asks of its driver, and the blocking driver.

A step (``Engine.steps``, ``load_steps``, ``counters.add_steps``) is a generator: it yields
a request, the driver carries it out and sends the answer back in (or throws the
backend's error in at the yield), until the step returns. The step never touches a socket,
so the same step runs under :func:`drive` here, with blocking calls, and under
``aio/driver.py``, with awaits. Every request carries the step's deadline, which the
driver hands to the backend (``deadline_scope``) for the time the request takes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator
from typing import Any

from .backends.base import Backend, Record, deadline_scope
from .errors import SharedStateError
from .frames import Frame, Split

# What a step asks its driver to do: (LOAD, key, since, deadline) -> Record | None;
# (CAS, key, expected, data, parts, deadline) -> (ok, record); (SLEEP, seconds) -> None;
# (ADD, key, delta, call_id, deadline) -> int; (OUTCOME, key, call_id, deadline) -> int |
# None | UNKNOWN. A backend error is thrown into the step at its yield.
LOAD, CAS, SLEEP, ADD, OUTCOME = "load", "cas", "sleep", "add", "outcome"

Op = tuple[Any, ...]
Steps = Generator[Op, Any, Any]


class NeedParts(Exception):
    """Internal: a change needs the record's parts written after version ``since`` (0:
    every part) before it can run; the step loads them and runs the change again."""

    def __init__(self, since: int) -> None:
        super().__init__(since)
        self.since = since



class Held(Exception):
    """Internal: the record is held by another owner (a transaction, a lock, a step that
    stopped racing); the step waits, at most ``remaining`` seconds more for this hold."""

    def __init__(self, remaining: float) -> None:
        super().__init__(remaining)
        self.remaining = remaining


#: A change: from the current frame (EMPTY when nothing is stored) to the new payload (None:
#: write nothing; a ``Split``: a head and its parts) and an outcome handed back to the
#: caller once that write is known applied.
Change = Callable[[Record | None, Frame], "tuple[bytes | Split | None, Any]"]


def drive(backend: Backend, steps: Steps) -> Any:
    """Runs a step against the blocking ``backend``: answers each request it yields
    (within the step's deadline) and returns what it returns."""
    reply: Any = None
    error: BaseException | None = None
    while True:
        try:
            op = steps.send(reply) if error is None else steps.throw(error)
        except StopIteration as done:
            return done.value
        reply, error = None, None
        kind = op[0]
        try:
            if kind == LOAD:
                with deadline_scope(op[3]):
                    reply = backend.load(op[1]) if op[2] is None else backend.load(op[1], op[2])
            elif kind == CAS:
                with deadline_scope(op[5]):
                    if op[4] is None:
                        reply = backend.compare_and_set(op[1], op[2], op[3])
                    else:
                        reply = backend.compare_and_set(op[1], op[2], op[3], op[4])
            elif kind == SLEEP:
                time.sleep(op[1])
            elif kind == ADD:
                with deadline_scope(op[4]):
                    reply = backend.counter_add(op[1], op[2], op[3])
            else:
                with deadline_scope(op[3]):
                    reply = backend.counter_outcome(op[1], op[2])
        except SharedStateError as exc:
            error = exc


__all__ = ["ADD", "CAS", "LOAD", "OUTCOME", "SLEEP", "Change", "Held", "NeedParts", "Op", "Steps", "drive"]
