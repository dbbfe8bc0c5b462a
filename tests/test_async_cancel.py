"""Cancellation is first-class: a call cancelled at any await point (a client that
disconnects, ``asyncio.timeout``) never wedges the object, a lock or the combiner for
anyone else, and never takes effect twice or half-way.

Each test cancels after 0, 1, 2, ... loop iterations (then after growing sleeps, to reach
the points where a request is in flight in a thread or on a socket), and checks after each
cancellation that the object still answers at once and that what is stored is consistent:
every completed call exactly once, a cancelled call at most once.
"""

from __future__ import annotations

import asyncio
from collections import Counter as Tally
from collections.abc import Awaitable, Callable

import pytest

import sharedstate

pytestmark = pytest.mark.anyio

POINTS = 36  # cancellation points tried per test


class Log:
    def __init__(self) -> None:
        self.entries: list[str] = []

    def add(self, tag: str) -> int:
        self.entries.append(tag)
        return len(self.entries)


async def _after(point: int) -> None:
    """Lets ``point`` loop iterations pass (then sleeps of growing length)."""
    if point < 20:
        for _ in range(point):
            await asyncio.sleep(0)
    else:
        await asyncio.sleep((point - 19) * 0.0007)


async def _cancel_at(point: int, work: Callable[[], Awaitable[object]]) -> tuple[bool, object]:
    """Runs ``work`` in a task cancelled after ``point``; (completed, its result)."""
    task = asyncio.ensure_future(work())
    await _after(point)
    task.cancel()
    try:
        return True, await task
    except asyncio.CancelledError:
        return False, None


async def test_object_calls_cancelled_at_every_point(store_url):
    async with sharedstate.connect_async(store_url) as store:
        obj = store.object("log", Log)
        completed: set[str] = set()
        cancelled: set[str] = set()
        for point in range(POINTS):
            bystanders = [asyncio.ensure_future(obj.add(f"b{point}-{j}")) for j in range(3)]
            done, result = await _cancel_at(point, lambda p=point: obj.add(f"c{p}"))
            (completed if done else cancelled).add(f"c{point}")
            assert len(await asyncio.wait_for(asyncio.gather(*bystanders), 5)) == 3
            completed.update(f"b{point}-{j}" for j in range(3))
            await asyncio.wait_for(obj.add(f"probe{point}"), 5)  # not wedged
            completed.add(f"probe{point}")
        entries = Tally(await obj.entries)
        assert all(count == 1 for count in entries.values()), entries.most_common(3)
        assert completed <= set(entries)
        assert set(entries) <= completed | cancelled
        assert cancelled, "no call was cancelled before it completed: the test tried nothing"


async def test_calls_cancelled_while_queued_never_take_effect(store_url):
    """Callers queued behind a transaction and cancelled before their batch ran are left
    out; the others get their results."""
    async with sharedstate.connect_async(store_url) as store:
        obj = store.object("log", Log)
        await obj.add("start")
        release = asyncio.Event()

        async def hold() -> None:
            async with store.transaction(obj) as o:
                o.add("transaction")
                await release.wait()

        holder = asyncio.ensure_future(hold())
        await asyncio.sleep(0.05)
        callers = {f"q{i}": asyncio.ensure_future(obj.add(f"q{i}")) for i in range(20)}
        await asyncio.sleep(0.05)
        gone = {tag for i, tag in enumerate(callers) if i % 3 == 0}
        for tag in gone:
            callers[tag].cancel()
        release.set()
        await asyncio.wait_for(holder, 5)
        for tag, task in callers.items():
            if tag in gone:
                with pytest.raises(asyncio.CancelledError):
                    await task
            else:
                assert isinstance(await asyncio.wait_for(task, 5), int)
        entries = await obj.entries
        assert not gone & set(entries)
        assert set(callers) - gone <= set(entries)
        assert len(entries) == len(set(entries))


async def test_lock_acquires_cancelled_at_every_point_never_leave_it_held(store_url):
    async with sharedstate.connect_async(store_url) as store:
        for point in range(POINTS):
            lock = store.lock(f"l{point % 4}", ttl=30)
            holder = await lock.acquire() if point % 2 else None

            async def waiter(lock: sharedstate.aio.AsyncLock = lock) -> object:
                return await lock.acquire()

            done, lease = await _cancel_at(point, waiter)
            if holder is not None:
                await holder.release()
            if done:
                await lease.release()  # type: ignore[union-attr]
            # a lease granted to the cancelled waiter was released for it: not held 30 s
            again = await asyncio.wait_for(store.lock(f"l{point % 4}", ttl=30, timeout=3).acquire(), 5)
            await again.release()


async def test_transactions_cancelled_at_every_point_release_the_object(store_url):
    async with sharedstate.connect_async(store_url) as store:
        obj = store.object("log", Log)
        outcomes: dict[str, bool] = {}
        for point in range(POINTS):

            async def transact(tag: str = f"t{point}") -> None:
                async with store.transaction(obj, ttl=30) as o:
                    o.add(tag)
                    await asyncio.sleep(0.002)
                    o.add(tag + "'")

            done, _ = await _cancel_at(point, transact)
            outcomes[f"t{point}"] = done
            await asyncio.wait_for(obj.add(f"probe{point}"), 3)  # the hold is gone
        entries = await obj.entries
        tally = Tally(entries)
        assert all(count == 1 for count in tally.values())
        for tag, done in outcomes.items():
            both = tag in tally and tag + "'" in tally
            assert both == (tag in tally) == (tag + "'" in tally)  # all or nothing
            if done:
                assert both


async def test_counter_increments_cancelled_at_every_point(store_url):
    async with sharedstate.connect_async(store_url) as store:
        hits = store.counter("hits")
        seen: list[int] = []
        cancelled = 0
        for point in range(POINTS):
            others = [asyncio.ensure_future(hits.incr()) for _ in range(2)]
            done, value = await _cancel_at(point, hits.incr)
            if done:
                seen.append(value)  # type: ignore[arg-type]
            else:
                cancelled += 1
            seen.extend(await asyncio.wait_for(asyncio.gather(*others), 5))
        assert len(set(seen)) == len(seen)
        final = await hits.get()
        assert len(seen) <= final <= len(seen) + cancelled
        assert max(seen) <= final


async def test_timeouts_around_many_concurrent_callers(store_url):
    """Clients that give up (``asyncio.wait_for``) at random moments among others that
    wait: every patient caller gets its result, nothing is applied twice."""
    async with sharedstate.connect_async(store_url) as store:
        obj = store.object("log", Log)

        async def client(i: int) -> object:
            if i % 2:
                return await obj.add(f"p{i}")
            try:
                return await asyncio.wait_for(obj.add(f"i{i}"), timeout=(i % 7) * 0.0005)
            except asyncio.TimeoutError:
                return None

        results = await asyncio.gather(*(client(i) for i in range(200)))
        assert all(isinstance(r, int) for r in results[1::2])
        entries = await obj.entries
        assert len(entries) == len(set(entries))
        assert {f"p{i}" for i in range(1, 200, 2)} <= set(entries)
        assert await asyncio.wait_for(obj.add("last"), 5) == len(entries) + 1
