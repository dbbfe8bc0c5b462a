"""Combining per event loop: concurrent awaits on one name share one trip to the store.

The asyncio twin of ``combining.py``. Calls on one name in one event loop queue up; a
*worker task* of the name takes everything queued so far as one batch and runs it as one
atomic step of the engine, while the callers await their own futures. Each call takes
effect at the batch's commit, in its own turn, and its method runs inside the caller's
``contextvars`` context (copied when it called). Calls made in the same loop iteration
share a batch; after a crowded batch the worker yields once more, so that the callers it
just answered can queue their next calls before it takes the next batch.

Why a worker task rather than the first caller, as the threaded combiner does: a caller
can be cancelled at any await (a client disconnects, ``asyncio.timeout``). A batch run by
its own task is never cut off half-way by one caller's cancellation, so the other callers
of the batch still get their results, and nobody has to hand a combining role on.

Cancellation and deadlines, call by call:

* cancelled while queued: the call leaves the queue; it never ran (did not happen);
* cancelled while its batch is under way: the call is dropped from the batch if the batch
  has not yet computed its write (the engine runs the change again after every conflict,
  and the change skips cancelled calls), otherwise it takes effect with the batch, like a
  request already on the wire; when every caller of a batch is gone, the batch stops at
  its next wait (``driver.Guard``), never around a request;
* a lone call (nothing queued or running on its name) runs in its caller's own task: a
  cancellation reaches its step directly, at a wait or around a request, with the same
  outcome as above: not sent, or taken effect or not, never half;
* every call has its own deadline; a batch is carried under its most pressing one; a call
  whose deadline passed while queued gets :class:`~sharedstate.errors.StoreTimeoutError`
  (it never ran); a batch that timed out puts back the calls whose own deadline is still
  ahead, for another try.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from ..combining import BATCHED, DONE, MAX_BATCH, QUEUED, Call
from ..errors import StoreTimeoutError
from .driver import Guard, Withdrawn


class AsyncCall(Call):
    """A call whose caller awaits ``future``; finishing the call resolves it."""

    __slots__ = ("future",)

    #: None for a lone call run in its caller's own task (its caller reads the outcome)
    future: asyncio.Future[Any] | None

    def finish(self, result: Any = None, error: BaseException | None = None) -> None:
        Call.finish(self, result, error)
        future = self.future
        if future is not None and not future.done():  # a cancelled caller's is done already
            if error is None:
                future.set_result(result)
            else:
                future.set_exception(error)

    @property
    def cancelled(self) -> bool:
        return self.future is not None and self.future.cancelled()


#: runs a batch as one step; must finish every call it does not drop (or raise)
Execute = Callable[[list[AsyncCall], Guard], Awaitable[None]]


class AsyncCombiner:
    """Serializes the calls on one name within one event loop, applying them in batches."""

    def __init__(
        self, execute: Execute, what: str = "the call", execute_one: Callable[[Any, float], Awaitable[Any]] | None = None
    ) -> None:
        self._execute = execute
        #: runs one lone call's payload in its caller's task and returns its result (no
        #: AsyncCall, no batch): the uncontended path, where the caller gives one
        self._execute_one = execute_one
        self._what = what
        self._queue: deque[AsyncCall] = deque()
        self._worker: asyncio.Task[None] | None = None
        self._batch: list[AsyncCall] = []
        self._guard: Guard | None = None
        self._alone = False  # a lone call runs in its caller's task (see ``submit``)
        self._crowded = False  # the last batch had company: the next calls queue up

    async def submit(self, payload: Any, deadline: float) -> Any:
        if self._worker is None and not self._alone and not self._crowded:
            # The uncontended path: nothing queued or running on this name, so the call
            # runs as a batch of one in its caller's own task and context (no worker task,
            # no extra loop iterations; here rather than in a method of its own: a
            # coroutine less per call). Calls arriving meanwhile queue up and get a worker
            # when it ends. A cancellation reaches the step directly: before its write is
            # sent, the call never happens; in flight, it is as a cancelled batch (taken
            # effect or not, never half), and the name is free again at once either way.
            self._alone = True
            try:
                if self._execute_one is not None:
                    return await self._execute_one(payload, deadline)
                alone = AsyncCall(payload, deadline)
                alone.future = None
                await self._execute([alone], Guard())
                return alone.outcome()
            finally:
                self._alone = False
                if self._queue and self._worker is None:
                    self._worker = asyncio.get_running_loop().create_task(self._work())
        loop = asyncio.get_running_loop()
        call = AsyncCall(payload, deadline)
        call.context = contextvars.copy_context()
        call.future = loop.create_future()
        call.state = QUEUED
        self._queue.append(call)
        if self._worker is None and not self._alone:
            self._worker = loop.create_task(self._work())
        try:
            return await call.future
        except asyncio.CancelledError:
            if call.state == QUEUED:
                self._queue.remove(call)
                call.state = DONE
            elif call.state == BATCHED and call in self._batch:
                guard = self._guard
                if guard is not None and all(other.cancelled for other in self._batch):
                    guard.withdrawn = True
            raise

    async def _work(self) -> None:
        batch: list[AsyncCall] = []
        try:
            crowded = False
            while self._queue:
                if crowded:
                    await asyncio.sleep(0)
                batch = self._take()
                if not batch:
                    continue
                crowded = self._crowded = len(batch) > 1
                await self._run_batch(batch)
                batch = []
        except BaseException:
            # the worker itself was cancelled (its loop is closing, or the store closed):
            # nothing queued can run any more in this loop
            for call in (*batch, *self._queue):
                if not call.future.done():  # type: ignore[union-attr]  # a queued call has one
                    call.future.cancel()  # type: ignore[union-attr]
                call.state = DONE
            self._queue.clear()
            raise
        finally:
            self._worker = None
            self._batch, self._guard = [], None

    def _take(self) -> list[AsyncCall]:
        """The calls queued so far (up to MAX_BATCH), less the cancelled and expired ones."""
        now = time.monotonic()
        batch: list[AsyncCall] = []
        queue = self._queue
        while queue and len(batch) < MAX_BATCH:
            call = queue.popleft()
            if call.cancelled:
                call.state = DONE
            elif call.deadline <= now:
                call.finish(
                    error=StoreTimeoutError(
                        f"{self._what} waited behind other calls of this event loop past its "
                        "deadline (see ?timeout=); it did not take effect"
                    )
                )
            else:
                call.state = BATCHED
                batch.append(call)
        return batch

    async def _run_batch(self, batch: list[AsyncCall]) -> None:
        guard = Guard()
        self._batch, self._guard = batch, guard
        try:
            await self._execute(batch, guard)
        except Withdrawn:
            pass  # every caller is gone, and nothing was in flight
        except Exception as exc:
            # The step failed as a whole: every call gets its error (whose class says
            # whether it took effect), except that a batch that timed out (so did not
            # happen) under its most pressing deadline puts back the calls whose own
            # deadline is still ahead: no call ends early for sharing a trip.
            retry: list[AsyncCall] = []
            if isinstance(exc, StoreTimeoutError):
                now = time.monotonic()
                retry = [c for c in batch if not c.done and not c.cancelled and c.deadline > now]
            for call in batch:
                if not call.done and call not in retry:
                    call.finish(error=exc)
            for call in reversed(retry):
                call.state = QUEUED
                self._queue.appendleft(call)
        finally:
            self._batch, self._guard = [], None
        for call in batch:
            if call.state == BATCHED:  # dropped from the batch (cancelled) or withdrawn
                call.state = DONE


__all__ = ["AsyncCall", "AsyncCombiner", "Execute"]
