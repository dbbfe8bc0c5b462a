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
from collections.abc import Callable
from typing import Any

MAX_BATCH = 256


class Call:
    """One queued call: what to run, and (once done) its result or exception."""

    __slots__ = ("payload", "context", "result", "error", "done")

    def __init__(self, payload: Any) -> None:
        self.payload = payload
        self.context = contextvars.copy_context()
        self.result: Any = None
        self.error: BaseException | None = None
        self.done = False

    def outcome(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.result


class Combiner:
    """Serializes calls on one name within a process, applying queued calls in batches."""

    def __init__(self, execute: Callable[[list[Call]], None]) -> None:
        self._execute = execute
        self._lock = threading.Lock()
        self._condition = threading.Condition(self._lock)
        self._queue: list[Call] = []
        self._busy = False
        self._waiting = 0

    def submit(self, payload: Any) -> Any:
        call = Call(payload)
        lock = self._lock
        with lock:  # the plain lock: entering a Condition costs a Python-level call
            if not self._busy:
                self._busy = True
                batch = [call]
            else:
                self._queue.append(call)
                batch = self._wait_for_turn(call)
        while batch is not None:
            self._run_batch(batch, call)
            if call.done:
                return call.outcome()
            with lock:
                batch = self._wait_for_turn(call)
        return call.outcome()

    def _wait_for_turn(self, call: Call) -> list[Call] | None:
        """With the lock held: waits until ``call`` is done (None) or this thread may
        combine (the batch to run, which includes ``call``)."""
        self._waiting += 1
        try:
            while self._busy and not call.done:
                self._condition.wait()
        finally:
            self._waiting -= 1
        if call.done:
            return None
        self._busy = True
        batch = self._queue[:MAX_BATCH]
        del self._queue[:MAX_BATCH]
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
                self._release()
            raise
        with self._lock:
            self._release()

    def _release(self) -> None:
        self._busy = False
        if self._waiting:
            self._condition.notify_all()
