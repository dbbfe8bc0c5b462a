"""Flat combining: the threads of one process share one trip to the store.

When several threads of a process call the same shared object (or counter) at once, the
first becomes the *combiner*: it takes every call queued so far and applies them as one
batch, in one store transaction, while the others wait. Each call in the batch takes effect
at the batch's commit, which lies between that call's start and its return, so every call
stays linearizable; the store sees one writer per process instead of one per thread, and a
batch of N calls costs one round trip instead of N. A lone thread pays only an uncontended
lock.

User methods run in the combiner thread but inside the caller's ``contextvars`` context,
so what a method reads from context (Flask's ``g`` and ``request``, for instance) is the
caller's own.
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

MAX_BATCH = 256


class Call:
    """One queued call: what to run, and (once done) its result or exception."""

    __slots__ = ("payload", "context", "result", "error", "done", "wakeup")

    def __init__(self, payload: Any) -> None:
        self.payload = payload
        #: the caller's context, taken only when another thread may run the call
        self.context: contextvars.Context | None = None
        self.result: Any = None
        self.error: BaseException | None = None
        self.done = False
        self.wakeup: threading.Lock | None = None  # held while its thread sleeps

    def outcome(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.result


class Combiner:
    """Serializes calls on one name within a process, applying queued calls in batches.

    Each waiting thread sleeps on a lock of its own and is woken exactly once: when its
    call is done, or when it is promoted to combine the calls queued behind the last batch.
    (A shared condition's ``notify_all`` would wake every waiter for every batch.)
    """

    def __init__(
        self,
        execute: Callable[[list[Call]], None],
        execute_one: Callable[[Any], Any] | None = None,
    ) -> None:
        self._execute = execute
        #: runs one lone call's payload directly (no Call, no batch): the uncontended path
        self._execute_one = execute_one
        self._lock = threading.Lock()
        self._queue: list[Call] = []
        self._busy = False
        self._crowded = False  # the last batch had more than one call

    def submit(self, payload: Any) -> Any:
        if self._execute_one is not None:
            lock = self._lock
            lock.acquire()
            if not self._busy and not self._crowded:
                self._busy = True
                lock.release()
                try:
                    return self._execute_one(payload)
                finally:
                    self._finish(())
            lock.release()
        call = Call(payload)
        with self._lock:
            if self._busy:
                call.context = contextvars.copy_context()
                call.wakeup = threading.Lock()
                call.wakeup.acquire()
                self._queue.append(call)
            else:
                self._busy = True
        if call.wakeup is not None:
            call.wakeup.acquire()  # sleeps until done or promoted
            if call.done:
                return call.outcome()
            batch = self._take_batch(call)
        elif self._crowded:
            # The last batch had company: the threads it woke are about to call again.
            # Yielding the GIL once lets them queue, so they share this trip instead of
            # each making its own a moment later. A lone caller never pays this.
            time.sleep(0)
            batch = self._take_batch(call)
        else:
            batch = [call]
        self._crowded = len(batch) > 1
        self._run_batch(batch, call)
        return call.outcome()

    def _take_batch(self, call: Call) -> list[Call]:
        """``call`` (this combiner's own) and the calls queued behind it."""
        with self._lock:
            batch = [call, *self._queue[: MAX_BATCH - 1]]
            del self._queue[: MAX_BATCH - 1]
        return batch

    def _run_batch(self, batch: list[Call], own: Call) -> None:
        try:
            self._execute(batch)
        except Exception as exc:
            # The store itself failed (unreachable, timed out): every call of the batch
            # gets the error; none of them is known to have taken effect.
            for other in batch:
                if not other.done:
                    other.error, other.done = exc, True
        except BaseException:
            # KeyboardInterrupt or the like in the combiner: hand the others back.
            with self._lock:
                self._queue[:0] = [c for c in batch if not c.done and c is not own]
            self._finish(batch)
            raise
        self._finish(batch)

    def _finish(self, finished: Sequence[Call]) -> None:
        if len(finished) > 1 or (finished and finished[0].wakeup is not None):
            for other in finished:
                if other.wakeup is not None and other.done:
                    other.wakeup.release()
        with self._lock:
            if self._queue:
                successor = self._queue.pop(0)
                assert successor.wakeup is not None
                successor.wakeup.release()  # it stays busy: the role passes on
            else:
                self._busy = False
