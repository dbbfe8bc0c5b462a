"""The async driver: the engine's one atomic step (``engine.py``), answered with awaits.

:meth:`Engine.steps <sharedstate.engine.Engine.steps>` (and ``load_steps``, ``counters.add_steps``,
the counter batch of ``counters.py``) yield what they need done; :func:`drive_async`
answers each request by awaiting the async backend, ``SLEEP`` with :func:`asyncio.sleep`,
and throws a backend's error back in at the request's ``yield``. The step logic (cache,
conflicts, holds, call ids, lost replies) is the sync store's, not a copy of it.

Deadlines: every request carries its step's deadline, which the driver puts in the
``deadline_scope`` context variable for the duration of the await, exactly as the sync
driver does. Each backend bounds its own I/O by what is left (``time_left``), because only
the backend knows whether its request may have been sent when time ran out: a timeout
before sending is a plain :class:`~sharedstate.errors.StoreTimeoutError` (did not happen),
one after is marked with :func:`~sharedstate.errors.mark_sent`, and the engine then asks
the store what became of it. A blanket ``asyncio.timeout`` here could not tell the two
apart.

Withdrawing a step (:class:`Guard`): when every caller of a step is gone, the step stops
at its next *wait* (a sleep: waiting out another's hold, or pausing before it asks again),
never around a request: an in-flight request runs to its answer, so that what it did is
known to the engine and never guessed, and a step whose own hold is on the record always
goes on to release it (its change, finding no caller left, writes nothing else). Once a
write of the step came back in doubt (its reply lost), the step is never withdrawn: the
engine resolves what became of it, so that a lost hold or grant is not left behind.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from ..backends.base import _DEADLINE, Record
from ..engine import Engine
from ..errors import SharedStateError, request_sent
from ..steps import ADD, CAS, LOAD, OUTCOME, SLEEP, Change, Steps

if TYPE_CHECKING:
    from .backends.base import AsyncBackend


class Withdrawn(Exception):
    """Internal: the callers of a step all went away before it sent anything more."""


class Guard:
    """Lets the callers of a step withdraw it at its next wait (see the module
    docstring); ``withdrawn`` is checked before and after each sleep."""

    __slots__ = ("withdrawn",)

    def __init__(self) -> None:
        self.withdrawn = False


async def drive_async(steps: Steps, backend: AsyncBackend, guard: Guard | None = None) -> Any:
    """Runs an engine step against an async backend; returns what the step returns."""
    reply: Any = None
    error: BaseException | None = None
    doubt = False  # a write of this step lost its reply: never withdrawn from then on
    try:
        while True:
            try:
                op = steps.send(reply) if error is None else steps.throw(error)
            except StopIteration as done:
                return done.value
            reply, error = None, None
            kind = op[0]
            if kind == SLEEP:
                if guard is not None and guard.withdrawn and not doubt:
                    raise Withdrawn
                await asyncio.sleep(op[1])
                if guard is not None and guard.withdrawn and not doubt:
                    raise Withdrawn
                continue
            token = _DEADLINE.set(op[-1])
            try:
                if kind == LOAD:
                    reply = await (backend.load(op[1]) if op[2] is None else backend.load(op[1], op[2]))
                elif kind == CAS:
                    if op[4] is None:
                        reply = await backend.compare_and_set(op[1], op[2], op[3])
                    else:
                        reply = await backend.compare_and_set(op[1], op[2], op[3], op[4])
                elif kind == ADD:
                    reply = await backend.counter_add(op[1], op[2], op[3])
                elif kind == OUTCOME:
                    reply = await backend.counter_outcome(op[1], op[2])
                else:  # pragma: no cover - the engine yields nothing else
                    raise AssertionError(f"unknown request {kind!r}")
            except SharedStateError as exc:
                error = exc
                doubt = doubt or (kind in (CAS, ADD) and request_sent(exc))
            finally:
                _DEADLINE.reset(token)
    except BaseException:
        steps.close()  # cancelled or withdrawn: the step ends here, nothing in flight
        raise


async def run_async(
    engine: Engine, key: str, change: Change, deadline: float, backend: AsyncBackend, guard: Guard | None = None
) -> tuple[Record | None, Any]:
    """:meth:`Engine.run <sharedstate.engine.Engine.run>` with awaits: the first try on
    the cached record (``Engine.first_try``) is one awaited compare-and-set, without the
    step's generator; anything else goes on in ``steps``, as in the sync driver. A write
    whose reply was lost is resolved by a step that is never withdrawn (no guard)."""
    first = engine.first_try(key, change, deadline)
    if first is None:
        return await drive_async(engine.steps(key, change, deadline), backend, guard)
    record, _, data, parts, call_id, outcome, began = first
    token = _DEADLINE.set(deadline)
    try:
        if parts is None:
            ok, current = await backend.compare_and_set(key, record.version, data)
        else:
            ok, current = await backend.compare_and_set(key, record.version, data, parts)
    except SharedStateError as exc:
        if not request_sent(exc):
            raise
        steps = engine.steps(key, change, deadline, call_id=call_id, lost_write=(record.version, outcome))
        return await drive_async(steps, backend)  # type: ignore[no-any-return]
    finally:
        _DEADLINE.reset(token)
    if ok and current is not None:
        return engine.first_written(key, first, current)
    engine.note_conflict(key, current)
    steps = engine.steps(key, change, deadline, call_id=call_id, current=current, began=began)
    return await drive_async(steps, backend, guard)  # type: ignore[no-any-return]


#: tasks that must finish although nobody awaits them (releases of orphaned holds);
#: referenced here so that the event loop's weak references do not let them vanish
_BACKGROUND: set[asyncio.Task[Any]] = set()


def in_background(work: Awaitable[Any]) -> asyncio.Task[Any]:
    """Runs ``work`` to its end whatever happens to whoever started it; its error, if any,
    is retrieved (a release that failed leaves a hold that ends with its ttl)."""
    task = asyncio.ensure_future(work)
    _BACKGROUND.add(task)

    def done(finished: asyncio.Task[Any]) -> None:
        _BACKGROUND.discard(finished)
        if not finished.cancelled():
            finished.exception()

    task.add_done_callback(done)
    return task


async def run_guarded(
    steps: Steps,
    backend: AsyncBackend,
    orphaned: Callable[[Any], Awaitable[Any]] | None = None,
) -> Any:
    """Runs a step in a task of its own, so that a cancelled caller never interrupts a
    request in flight: the step is withdrawn at its next wait, and if it completes anyway
    (its grant was on its way), ``orphaned(result)`` undoes what nobody will use
    (releases a granted lock, ends a transaction's hold)."""
    guard = Guard()
    task = asyncio.ensure_future(drive_async(steps, backend, guard))
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        guard.withdrawn = True

        def settle(finished: asyncio.Task[Any]) -> None:
            if finished.cancelled() or finished.exception() is not None:
                return
            if orphaned is not None:
                in_background(orphaned(finished.result()))

        task.add_done_callback(settle)
        raise


__all__ = ["Guard", "Withdrawn", "drive_async", "in_background", "run_guarded"]
