"""Shared counters: the backend's native atomic add, combined per process.

Concurrent ``incr`` calls of one process on one counter are combined (``combining.py``) into
one native add of their sum; each caller gets the value it would have seen had the batch's
calls run one after another, in queue order. Every add carries a call id, so that a reply
lost in flight (a broken connection, a paused server) is resolved by asking the store
whether that add took effect (:meth:`~sharedstate.backends.base.Backend.counter_outcome`)
rather than guessed: the engine returns its value, or retries an add that is certain never
to apply, or, when the store stays unreachable until the deadline, raises
:class:`~sharedstate.errors.OutcomeUnknownError`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from .backends.base import UNKNOWN, deadline_scope
from .combining import Call, batch_deadline
from .errors import CounterOverflowError, OutcomeUnknownError, SharedStateError, request_sent
from .frames import new_id
from .steps import ADD, OUTCOME, Steps

if TYPE_CHECKING:
    from .engine import Engine
    from .store import Store


class Counter:
    """A shared integer; ``incr`` is the backend's native atomic add."""

    def __init__(self, store: Store, name: str, key: str) -> None:
        self.store = store
        self.name = name
        self.key = key

    def incr(self, amount: int = 1) -> int:
        """Adds ``amount`` and returns the new value, atomically."""
        if type(amount) is not int:
            raise TypeError(f"a counter adds whole numbers, not {type(amount).__name__}")
        deadline = time.monotonic() + self.store.timeout
        combiner = self.store._combiners.get(self.key)
        if combiner is None:
            combiner = self.store._combiner(
                self.key, self._run_incrs, self._add, f"an increment of counter {self.name!r}"
            )
        return combiner.submit(amount, deadline)

    def decr(self, amount: int = 1) -> int:
        """Subtracts ``amount`` and returns the new value, atomically."""
        return self.incr(-amount)

    def _run_incrs(self, batch: list[Call]) -> None:
        """One native add for the whole batch (see :func:`incr_batch_steps`)."""
        engine = self.store._engine
        engine.drive(incr_batch_steps(engine, self.key, batch))

    def _add(self, delta: int, deadline: float) -> int:
        """One add with a call id; a lost reply is resolved, never guessed (``engine.py``)."""
        engine = self.store._engine
        backend = engine.backend
        if not backend.loses_replies:  # embedded: one plain call, nothing to resolve
            if not backend.reads_deadline:  # (no scope for a store that never reads it)
                return backend.counter_add(self.key, delta, None)
            with deadline_scope(deadline):
                return backend.counter_add(self.key, delta, None)
        return engine.drive(add_steps(engine, self.key, delta, deadline))

    def get(self) -> int:
        """The current value."""
        with deadline_scope(time.monotonic() + self.store.timeout):
            return self.store.backend.counter_get(self.key)

    def set(self, value: int) -> None:
        """Sets the value."""
        if type(value) is not int:
            raise TypeError(f"a counter holds whole numbers, not {type(value).__name__}")
        with deadline_scope(time.monotonic() + self.store.timeout):
            self.store.backend.counter_set(self.key, value)

    def __int__(self) -> int:
        return self.get()

    def __repr__(self) -> str:
        return f"<Counter {self.name!r}>"


def add_steps(engine: Engine, key: str, delta: int, deadline: float) -> Steps:
    """The engine's step for one native add with a call id; a lost reply is resolved by
    asking the store (the backend's ``counter_outcome``), never guessed. Returns the new
    value."""
    while True:
        call_id = new_id() if engine.backend.loses_replies else None
        try:
            return (yield (ADD, key, delta, call_id, deadline))
        except SharedStateError as exc:
            if call_id is None or not request_sent(exc):
                raise
            cause: SharedStateError = exc
        pause = 0.002
        while True:  # ask the store whether the add took effect, until the deadline
            engine.check_deadline(deadline, call_id, key, cause)
            try:
                found = yield (OUTCOME, key, call_id, deadline)
            except SharedStateError as exc:
                cause = exc
                pause = yield from engine.pause(deadline, pause, exc, call_id, key)
                continue
            break
        if found is UNKNOWN:
            raise OutcomeUnknownError(
                f"an increment of {engine.describe(key)} lost its reply, and "
                f"{engine.backend.describe()} cannot tell whether it took effect"
            ) from cause
        if found is not None:
            return int(found)
        # fenced: it never took effect and never will; the add is made again, in time
        engine.check_deadline(deadline, UNKNOWN, key, cause)


def incr_batch_steps(engine: Engine, key: str, batch: Sequence[Call]) -> Steps:
    """One native add for a batch of increments, as the engine's requests (driven by the
    sync store or the async one); finishes every call. Each call gets the value it would
    have seen had the batch's calls run one after another. The calls are concurrent, so any
    order is a valid one: queue order, unless near a limit of the counter's range another
    order keeps every value in range. Where none does, or where the sum itself would leave
    the range, each call runs alone, so that exactly the ones that fit succeed."""
    total = sum(call.payload for call in batch)
    try:
        final = yield from add_steps(engine, key, total, batch_deadline(batch))
    except CounterOverflowError:
        if len(batch) == 1:
            raise
        yield from _run_alone(engine, key, batch)
        return
    order = _order_in_range(engine.backend.counter_range, batch, final - total)
    if order is None:  # no order fits (amounts near the range itself): take it back
        yield from add_steps(engine, key, -total, batch_deadline(batch))
        yield from _run_alone(engine, key, batch)
        return
    running = final - total
    for call in order:
        running += call.payload
        call.finish(running)


def _order_in_range(bounds: tuple[int, int], batch: Sequence[Call], start: int) -> list[Call] | None:
    low, high = bounds
    for order in _orders(batch):
        running = start
        for call in order:
            running += call.payload
            if not low <= running <= high:
                break
        else:
            return order
    return None


def _orders(batch: Sequence[Call]) -> Iterator[list[Call]]:
    """Queue order, then (only if a limit needs it) decreases first, then increases first:
    the sort is never paid by a batch that fits as it queued."""
    yield list(batch)
    negatives_first = sorted(batch, key=lambda call: call.payload >= 0)
    yield negatives_first
    yield negatives_first[::-1]


def _run_alone(engine: Engine, key: str, batch: Sequence[Call]) -> Steps:
    for call in batch:
        try:
            call.finish((yield from add_steps(engine, key, call.payload, call.deadline)))
        except SharedStateError as exc:
            call.finish(error=exc)
