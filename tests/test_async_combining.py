"""The async combiner on its own: batching per event loop, deadlines, cancellation.

``execute`` here is a plain coroutine standing in for one atomic step, so that the tests
can see batch sizes and make a step slow or fail at will; the combiner's behaviour with the
real engine and stores is in test_async_conformance.py and test_async_cancel.py."""

from __future__ import annotations

import asyncio
import contextvars
import time

import pytest

import sharedstate
from sharedstate.aio.combining import AsyncCall, AsyncCombiner
from sharedstate.aio.driver import Guard, Withdrawn

pytestmark = pytest.mark.anyio

WHO: contextvars.ContextVar[str] = contextvars.ContextVar("who", default="?")


class Recorder:
    """A step that answers each call with its payload and the batch it ran in."""

    def __init__(self, pause: float = 0.0) -> None:
        self.batches: list[list[object]] = []
        self.pause = pause

    async def __call__(self, batch: list[AsyncCall], guard: Guard) -> None:
        self.batches.append([call.payload for call in batch])
        if self.pause:
            await asyncio.sleep(self.pause)
        for call in batch:  # no context: a lone call, run in its caller's own task
            who = call.context.run(WHO.get) if call.context is not None else WHO.get()
            call.finish((call.payload, who, len(self.batches)))


async def test_awaits_of_one_iteration_share_one_trip_in_their_own_contexts():
    """The first call finds nothing queued and runs alone in its own task; the 99 made
    meanwhile share the next trip, each method run in its caller's context."""
    step = Recorder(pause=0.001)
    combiner = AsyncCombiner(step)

    async def call(i: int) -> object:
        WHO.set(f"caller{i}")
        return await combiner.submit(i, time.monotonic() + 5)

    results = await asyncio.gather(*(call(i) for i in range(100)))
    assert [r[0] for r in results] == list(range(100))  # type: ignore[index]
    assert [r[1] for r in results] == [f"caller{i}" for i in range(100)]  # type: ignore[index]
    assert step.batches == [[0], list(range(1, 100))]


async def test_a_lone_call_runs_in_its_callers_task_and_a_cancelled_one_frees_the_name():
    step = Recorder(pause=0.05)
    combiner = AsyncCombiner(step)
    WHO.set("me")
    assert await combiner.submit("x", time.monotonic() + 5) == ("x", "me", 1)
    lone = asyncio.ensure_future(combiner.submit("gone", time.monotonic() + 5))
    await asyncio.sleep(0)  # "gone" is under way
    queued = asyncio.ensure_future(combiner.submit("next", time.monotonic() + 5))
    await asyncio.sleep(0)
    lone.cancel()
    assert (await asyncio.wait_for(queued, 1))[0] == "next"


async def test_calls_made_during_a_batch_form_the_next_one():
    step = Recorder(pause=0.02)
    combiner = AsyncCombiner(step)
    first = asyncio.ensure_future(combiner.submit("a", time.monotonic() + 5))
    await asyncio.sleep(0)  # the first batch is under way
    later = [asyncio.ensure_future(combiner.submit(i, time.monotonic() + 5)) for i in range(10)]
    await asyncio.gather(first, *later)
    assert step.batches == [["a"], list(range(10))]


async def test_a_call_past_its_deadline_while_queued_did_not_happen():
    step = Recorder(pause=0.1)
    combiner = AsyncCombiner(step, "a call on shared object 'x'")
    busy = asyncio.ensure_future(combiner.submit("slow", time.monotonic() + 5))
    await asyncio.sleep(0)  # "slow" is under way
    with pytest.raises(sharedstate.StoreTimeoutError, match="did not take effect"):
        await combiner.submit("late", time.monotonic() + 0.02)
    await busy
    assert step.batches == [["slow"]]  # the late call never ran


async def test_a_timed_out_batch_puts_back_the_calls_whose_deadline_is_ahead():
    tries: list[list[object]] = []
    soon_deadline = time.monotonic() + 0.3

    async def step(batch: list[AsyncCall], guard: Guard) -> None:
        tries.append([call.payload for call in batch])
        await asyncio.sleep(0.001)
        if len(tries) == 2:  # fails once the batch's most pressing deadline has passed
            await asyncio.sleep(max(soon_deadline - time.monotonic(), 0) + 0.01)
            raise sharedstate.StoreTimeoutError("under the batch's most pressing deadline")
        for call in batch:
            call.finish(call.payload)

    combiner = AsyncCombiner(step)
    lead = asyncio.ensure_future(combiner.submit("lead", time.monotonic() + 5))
    await asyncio.sleep(0)
    soon = asyncio.ensure_future(combiner.submit("soon", soon_deadline))
    patient = asyncio.ensure_future(combiner.submit("patient", time.monotonic() + 5))
    assert await lead == "lead"
    with pytest.raises(sharedstate.StoreTimeoutError):
        await soon
    assert await patient == "patient"
    assert tries == [["lead"], ["soon", "patient"], ["patient"]]


async def test_a_cancelled_waiter_leaves_the_queue_and_others_still_get_results():
    gate = asyncio.Event()
    batches: list[list[object]] = []

    async def step(batch: list[AsyncCall], guard: Guard) -> None:
        batches.append([call.payload for call in batch])
        await gate.wait()
        for call in batch:
            call.finish(call.payload)

    combiner = AsyncCombiner(step)
    first = asyncio.ensure_future(combiner.submit("first", time.monotonic() + 5))
    await asyncio.sleep(0)  # "first" is under way, waiting at the gate
    queued = [asyncio.ensure_future(combiner.submit(i, time.monotonic() + 5)) for i in range(6)]
    await asyncio.sleep(0)
    queued[2].cancel()
    queued[4].cancel()
    await asyncio.sleep(0)
    gate.set()
    results = await asyncio.gather(first, *queued, return_exceptions=True)
    assert isinstance(results[3], asyncio.CancelledError) and isinstance(results[5], asyncio.CancelledError)
    assert results[:3] + results[4:5] + results[6:] == ["first", 0, 1, 3, 5]
    assert batches == [["first"], [0, 1, 3, 5]]


async def test_a_batch_whose_callers_all_left_is_withdrawn_at_its_next_safe_point():
    withdrawn: list[bool] = []

    async def step(batch: list[AsyncCall], guard: Guard) -> None:
        await asyncio.sleep(0.005)  # a request's round trip
        if [call.payload for call in batch] != ["lead"]:
            for _ in range(100):  # a step waiting for a hold: a safe point every 10 ms
                await asyncio.sleep(0.01)
                if guard.withdrawn:
                    withdrawn.append(True)
                    raise Withdrawn
        for call in batch:
            call.finish("done")

    combiner = AsyncCombiner(step)
    lead = asyncio.ensure_future(combiner.submit("lead", time.monotonic() + 5))
    await asyncio.sleep(0)
    calls = [asyncio.ensure_future(combiner.submit(i, time.monotonic() + 5)) for i in range(3)]
    assert await lead == "done"
    await asyncio.sleep(0.02)  # the batch of three is waiting
    for task in calls:
        task.cancel()
    await asyncio.sleep(0.05)
    assert withdrawn == [True]
    assert await combiner.submit("lead", time.monotonic() + 5) == "done"  # not wedged
