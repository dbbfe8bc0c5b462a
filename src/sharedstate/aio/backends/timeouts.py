"""One way to bound the awaits of a block by a number of seconds: ``with within(s):``.

It does what :func:`asyncio.timeout` does (a timer that cancels the task; the cancellation
it caused comes out of the block as :class:`TimeoutError`, and one from elsewhere passes
through untouched), as a plain context manager used inside a coroutine. Why not
``asyncio.timeout`` itself: it costs 4.3-4.9 us per use on the machine this was measured
on (a ``Timeout`` object, two coroutines for ``async with``, its state machine), and every
async Redis request is bounded by one; this costs about half. It also runs on Python 3.10,
which has no ``asyncio.timeout`` (nor ``Task.cancelling``: there a cancellation that
arrives together with the timer's is reported as the timeout).

Timer callbacks run only between a task's steps, so when the timer fired, the task was
suspended at an await inside the block, and the cancellation is thrown in there: it
reaches ``__exit__`` as ``CancelledError`` (unless the block swallows it, which ours do
not).
"""

from __future__ import annotations

import asyncio
import sys
from types import TracebackType

#: ``Task.cancelling`` / ``uncancel`` (3.11+): cancellations are counted, so the timer's own
#: can be told from another one
_COUNTED = sys.version_info >= (3, 11)


class within:  # noqa: N801 - named as the function it stands for
    """Bounds the awaits of a ``with`` block in the running task by ``seconds``."""

    __slots__ = ("_task", "_timer", "_cancelling", "_fired")

    def __init__(self, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task(loop)
        if task is None:
            raise RuntimeError("within() bounds the awaits of a task; there is none running")
        self._task = task
        self._fired = False
        self._cancelling = task.cancelling() if _COUNTED else 0
        self._timer = loop.call_at(loop.time() + max(seconds, 0.0), self._expire)

    def _expire(self) -> None:
        self._fired = True
        self._task.cancel()

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self._timer.cancel()
        if not self._fired:
            return
        own = self._task.uncancel() <= self._cancelling if _COUNTED else True
        if own and kind is not None and issubclass(kind, asyncio.CancelledError):
            raise TimeoutError from error


__all__ = ["within"]
