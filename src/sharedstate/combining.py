"""Flat combining: the threads of one process share one trip to the store.

When several threads of a process call the same shared object (or counter) at once, the
first becomes the *combiner*: it takes every call queued so far and applies them as one
batch, in one atomic step, while the others wait. Each call in the batch takes effect at the
batch's commit, which lies between that call's start and its return, so every call stays
linearizable; the store sees one writer per process instead of one per thread, and a batch
of N calls costs one round trip instead of N. A lone thread pays only an uncontended lock.

User methods run in the combiner thread but inside the caller's ``contextvars`` context,
so what a method reads from context (Flask's ``g`` and ``request``, for instance) is the
caller's own.

Liveness, whoever carries a call:

* every call has its own **deadline**, fixed when its caller called; a batch is carried
  under the earliest deadline among its calls, so no call waits past its own;
* a caller whose deadline passes while its call is still queued takes the call out and gets
  :class:`~sharedstate.errors.StoreTimeoutError`: the call never ran, so it did not happen;
* a caller interrupted while waiting (``KeyboardInterrupt``, ``gevent.Timeout``, any
  ``BaseException``) takes its call out of the queue, or, if the combining role had just
  been handed to it, hands the role on: an interrupt never leaves the queue to nobody.
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from .errors import StoreTimeoutError

MAX_BATCH = 256

# The life of a call: queued, then either taken into a batch or handed the combining role,
# then done.
QUEUED, BATCHED, PROMOTED, DONE = range(4)


class Call:
    """One call: what to run, by when, and (once done) its result or exception."""

    __slots__ = ("payload", "deadline", "context", "result", "error", "state", "wakeup")

    def __init__(self, payload: Any, deadline: float) -> None:
        self.payload = payload
        self.deadline = deadline  # time.monotonic() by which the caller wants an answer
        #: the caller's context, taken only when another thread may run the call
        self.context: contextvars.Context | None = None
        self.result: Any = None
        self.error: BaseException | None = None
        self.state = BATCHED
        self.wakeup: threading.Lock | None = None  # held while its thread sleeps

    @property
    def done(self) -> bool:
        return self.state == DONE

    def finish(self, result: Any = None, error: BaseException | None = None) -> None:
        self.result, self.error, self.state = result, error, DONE

    def outcome(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.result


def batch_deadline(batch: Sequence[Call]) -> float:
    """The deadline a batch is carried under: its most pressing call's."""
    return min(call.deadline for call in batch)


class Combiner:
    """Serializes calls on one name within a process, applying queued calls in batches.

    Each waiting thread sleeps on a lock of its own and is woken exactly once: when its
    call is done, or when it is handed the combining role for the calls queued behind the
    last batch. (A shared condition's ``notify_all`` would wake every waiter every batch.)
    ``execute`` must finish every call of the batch it is given (``Call.finish``), or raise.
    """

    def __init__(
        self,
        execute: Callable[[list[Call]], None],
        execute_one: Callable[[Any, float], Any] | None = None,
        what: str = "the call",
    ) -> None:
        self._execute = execute
        #: runs one lone call's payload directly (no Call, no batch): the uncontended path
        self._execute_one = execute_one
        self._what = what
        self._lock = threading.Lock()
        self._queue: list[Call] = []
        self._busy = False
        self._crowded = False  # the last batch had more than one call

    def submit(self, payload: Any, deadline: float) -> Any:
        if self._execute_one is not None:
            lock = self._lock
            lock.acquire()
            if not self._busy and not self._crowded:
                self._busy = True
                lock.release()
                try:
                    return self._execute_one(payload, deadline)
                finally:
                    self._pass_role()
            lock.release()
        call = Call(payload, deadline)
        with self._lock:
            if self._busy:
                call.context = contextvars.copy_context()
                call.wakeup = threading.Lock()
                call.wakeup.acquire()
                call.state = QUEUED
                self._queue.append(call)
            else:
                self._busy = True
        if call.wakeup is not None:
            self._wait(call)
            if call.state == DONE:
                return call.outcome()
            batch = self._take_batch(call)  # promoted: this thread combines now
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

    def _wait(self, call: Call) -> None:
        """Sleeps until ``call`` is done or promoted; leaves the queue on timeout or on an
        interrupt, so that no entry is left behind for nobody to answer."""
        assert call.wakeup is not None
        try:
            if call.wakeup.acquire(timeout=max(call.deadline - time.monotonic(), 0.0)):
                return
            with self._lock:
                if call.state == QUEUED:
                    self._queue.remove(call)
                    call.state = DONE
                    raise StoreTimeoutError(
                        f"{self._what} waited behind other calls of this process past its "
                        "deadline (see ?timeout=); it did not take effect"
                    )
            # Taken into a batch, done, or handed the role at the last moment: its wakeup
            # is released (or, for a batch carried under a deadline no later than this
            # call's, moments away). Take it, so that it is held again as every woken
            # call's is: released once more when this call's own batch is done.
            call.wakeup.acquire()
        except BaseException:
            promoted = False
            with self._lock:
                if call.state == QUEUED:
                    self._queue.remove(call)
                    call.state = DONE
                elif call.state == PROMOTED:
                    promoted = True
            if promoted:
                self._pass_role()
            raise

    def _take_batch(self, call: Call) -> list[Call]:
        """``call`` (this combiner's own) and the calls queued behind it."""
        with self._lock:
            taken = self._queue[: MAX_BATCH - 1]
            del self._queue[: MAX_BATCH - 1]
            for other in taken:
                other.state = BATCHED
        call.state = BATCHED
        return [call, *taken]

    def _run_batch(self, batch: list[Call], own: Call) -> None:
        try:
            self._execute(batch)
        except Exception as exc:
            # The step failed as a whole: every call of the batch gets its error (whose
            # class says whether the batch took effect), except that a batch that timed out
            # (so did not happen) under its most pressing deadline leaves the calls whose
            # own deadlines are still ahead queued for another try: no call ends before
            # its own deadline because it shared a trip with an older one.
            retry: list[Call] = []
            if isinstance(exc, StoreTimeoutError):
                now = time.monotonic()
                retry = [c for c in batch if not c.done and c is not own and c.deadline > now]
            for other in batch:
                if not other.done and other not in retry:
                    other.finish(error=exc)
            if retry:
                with self._lock:
                    for other in retry:
                        other.state = QUEUED
                    self._queue[:0] = retry
        except BaseException:
            # KeyboardInterrupt or the like in the combiner: the others' calls did not run
            # here; put them back at the head of the queue for the next combiner.
            with self._lock:
                back = [c for c in batch if not c.done and c is not own]
                for other in back:
                    other.state = QUEUED
                self._queue[:0] = back
            self._wake(batch)
            self._pass_role()
            raise
        self._wake(batch)
        self._pass_role()

    @staticmethod
    def _wake(finished: Sequence[Call]) -> None:
        for other in finished:
            if other.wakeup is not None and other.done:
                other.wakeup.release()

    def _pass_role(self) -> None:
        """Hands the combining role to the longest-waiting call, or frees it."""
        with self._lock:
            if self._queue:
                successor = self._queue.pop(0)
                successor.state = PROMOTED
                assert successor.wakeup is not None
                successor.wakeup.release()  # it stays busy: the role passes on
            else:
                self._busy = False
