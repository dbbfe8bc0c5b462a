"""``within``, the bound on every async request: the timer's own cancellation comes out
as TimeoutError, any other passes through, and nothing is left behind on the task."""

from __future__ import annotations

import asyncio
import sys
import time

import pytest

from sharedstate.aio.backends.timeouts import within


def test_a_block_past_its_bound_raises_timeout_error_and_leaves_the_task_usable():
    async def main() -> float:
        began = time.monotonic()
        with pytest.raises(TimeoutError):
            with within(0.05):
                await asyncio.sleep(5)
        took = time.monotonic() - began
        await asyncio.sleep(0.01)  # not cancelled again: the timer's cancel was taken back
        return took

    took = asyncio.run(main())
    assert 0.05 <= took < 0.5


def test_a_block_that_ends_in_time_leaves_no_timer_behind():
    async def main() -> str:
        with within(0.02):
            await asyncio.sleep(0)
        await asyncio.sleep(0.1)  # past the bound: the timer was cancelled on the way out
        return "done"

    assert asyncio.run(main()) == "done"


def test_a_cancellation_from_elsewhere_passes_through_as_cancelled():
    async def worker(inside: asyncio.Event) -> None:
        with within(10):
            inside.set()
            await asyncio.sleep(10)

    async def main() -> None:
        inside = asyncio.Event()
        task = asyncio.create_task(worker(inside))
        await inside.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())


needs_asyncio_timeout = pytest.mark.skipif(sys.version_info < (3, 11), reason="asyncio.timeout is 3.11+")


@needs_asyncio_timeout
def test_an_outer_timeout_stays_the_outer_ones():
    async def main() -> None:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.05):
                with within(10):
                    await asyncio.sleep(5)
        await asyncio.sleep(0.01)

    asyncio.run(main())


@needs_asyncio_timeout
def test_an_inner_bound_inside_a_longer_outer_timeout_is_the_inner_ones():
    async def main() -> str:
        async with asyncio.timeout(10):
            try:
                with within(0.05):
                    await asyncio.sleep(5)
            except TimeoutError:
                await asyncio.sleep(0.01)  # the outer one is untouched: no cancel pending
                return "inner"
        return "none"

    assert asyncio.run(main()) == "inner"


def test_outside_an_event_loop_it_says_so():
    with pytest.raises(RuntimeError):
        within(1)
