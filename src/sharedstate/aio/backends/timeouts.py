"""One way to bound an await by a number of seconds, on every Python the package runs on.

Python 3.11+ has :func:`asyncio.timeout`. On 3.10 the same is done by hand (a timer that
cancels the task, the cancellation turned into :class:`TimeoutError` when the timer made
it), rather than through ``async-timeout``, which not every driver installs."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

if sys.version_info >= (3, 11):
    from asyncio import timeout as within
else:  # pragma: no cover - exercised on Python 3.10 only

    @asynccontextmanager
    async def within(seconds: float) -> AsyncIterator[None]:
        task = asyncio.current_task()
        assert task is not None
        fired = []

        def expire() -> None:
            fired.append(True)
            task.cancel()

        timer = asyncio.get_running_loop().call_later(max(seconds, 0.0), expire)
        try:
            yield
        except asyncio.CancelledError:
            if fired:
                raise TimeoutError from None
            raise
        finally:
            timer.cancel()


__all__ = ["within"]
