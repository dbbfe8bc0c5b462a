"""The async API (``connect_async``) on every backend: the same promises as the sync store.

Runs once per backend through the ``store_url`` fixture. Each test is a coroutine run by
anyio's pytest plugin on asyncio.
"""

from __future__ import annotations

import asyncio
import contextvars
import sys
import threading
from collections.abc import Awaitable, Callable

import pytest

import sharedstate
from sharedstate import (
    ClassMismatchError,
    ConfigurationError,
    CounterOverflowError,
    LeaseExpiredError,
    StoreTimeoutError,
)

pytestmark = pytest.mark.anyio


class SomeObj:
    def __init__(self, param: int) -> None:
        self.param = param
        self.items: list[int] = []

    def query(self) -> int:
        self.param += 1
        return self.param

    def add(self, item: int) -> list[int]:
        self.items.append(item)
        return self.items

    def fail(self) -> None:
        self.param = -1000
        raise ValueError("refused")


class Other:
    def __init__(self) -> None:
        self.x = 0


class WithAsync:
    async def run(self) -> None:  # refused: could suspend half-way
        pass


REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="none")


class Seer:
    def __init__(self) -> None:
        self.seen: list[str] = []

    def see(self) -> str:
        self.seen.append(REQUEST_ID.get())
        return REQUEST_ID.get()


async def test_calls_reads_and_the_factory(store_url):
    async with sharedstate.connect_async(store_url) as store:
        obj = store.object("global_obj", SomeObj, 10)
        assert await obj.query() == 11
        assert await obj.query() == 12
        assert await obj.param == 12
        items = await obj.add(5)
        assert items == [5]
        copy = await obj.items
        copy.append(99)  # a copy: nothing stored changes
        assert await obj.items == [5]
        again = store.object("global_obj", SomeObj, 500)  # the factory does not run again
        assert await again.param == 12


async def test_concurrent_awaits_are_exact(store_url):
    async with sharedstate.connect_async(store_url) as store:
        obj = store.object("global_obj", SomeObj, 0)
        results = await asyncio.gather(*(obj.query() for _ in range(300)))
        assert sorted(results) == list(range(1, 301))
        assert await obj.param == 300


async def test_a_raising_call_changes_nothing_and_its_error_is_unchanged(store_url):
    async with sharedstate.connect_async(store_url) as store:
        obj = store.object("global_obj", SomeObj, 0)
        results = await asyncio.gather(obj.query(), obj.fail(), obj.query(), return_exceptions=True)
        assert sorted(r for r in results if isinstance(r, int)) == [1, 2]
        errors = [r for r in results if isinstance(r, BaseException)]
        assert len(errors) == 1 and type(errors[0]) is ValueError and str(errors[0]) == "refused"
        assert await obj.param == 2


async def test_class_mismatch_and_async_methods_are_refused(store_url):
    async with sharedstate.connect_async(store_url) as store:
        await store.object("thing", SomeObj, 0).query()
        other = sharedstate.connect_async(store_url)
        with pytest.raises(ClassMismatchError):
            await other.object("thing", Other).x
        with pytest.raises(TypeError, match="async"):
            store.object("w", WithAsync).run  # noqa: B018
        with pytest.raises(TypeError, match="cannot set"):
            store.object("thing", SomeObj, 0).param = 3
        await other.aclose()


async def test_each_call_runs_in_its_callers_context(store_url):
    async with sharedstate.connect_async(store_url) as store:
        obj = store.object("seer", Seer)

        async def request(name: str) -> str:
            REQUEST_ID.set(name)
            await asyncio.sleep(0)
            return await obj.see()

        names = [f"r{i}" for i in range(50)]
        assert await asyncio.gather(*(request(n) for n in names)) == names
        assert sorted(await obj.seen) == sorted(names)


async def test_counters(store_url):
    async with sharedstate.connect_async(store_url) as store:
        hits = store.counter("hits")
        assert await hits.get() == 0
        assert await hits.incr() == 1
        values = await asyncio.gather(*(hits.incr() for _ in range(100)))
        assert sorted(values) == list(range(2, 102))
        assert await hits.decr(2) == 99
        await hits.set(7)
        assert await hits.get() == 7
        with pytest.raises(CounterOverflowError):
            await hits.incr(2**63)
        with pytest.raises(TypeError):
            await hits.incr(1.5)  # type: ignore[arg-type]
        assert await hits.get() == 7


async def test_locks_grant_increasing_tokens_one_holder_at_a_time(store_url):
    async with sharedstate.connect_async(store_url) as store:
        lock = store.lock("report", ttl=10)
        inside: list[int] = []
        tokens: list[int] = []

        async def worker() -> None:
            async with lock as lease:
                inside.append(1)
                assert len(inside) == 1
                tokens.append(lease.token)
                await asyncio.sleep(0.005)
                inside.pop()

        await asyncio.gather(*(worker() for _ in range(8)))
        assert tokens == sorted(tokens) and len(set(tokens)) == 8
        async with lock as lease:
            with pytest.raises(ConfigurationError):
                await lock.acquire()
            assert await lock.locked()
            await lease.extend(5)
        assert not await lock.locked()
        held = await store.lock("report", ttl=10).acquire()
        with pytest.raises(StoreTimeoutError):
            await asyncio.create_task(store.lock("report", timeout=0.2).acquire())
        await held.release()
        with pytest.raises(LeaseExpiredError):
            await held.release()


async def test_transactions(store_url):
    async with sharedstate.connect_async(store_url) as store:
        obj = store.object("global_obj", SomeObj, 0)
        async with store.transaction("global_obj") as o:
            assert o.query() == 1
            assert o.query() == 2
            with pytest.raises(ConfigurationError):
                await obj.query()  # would wait for its own transaction
        assert await obj.param == 2
        with pytest.raises(ZeroDivisionError):
            async with store.transaction(obj) as o:
                o.query()
                1 / 0  # noqa: B018
        assert await obj.param == 2

        async def transfer() -> None:
            async with store.transaction(obj) as o:
                o.query()
                await asyncio.sleep(0.001)
                o.query()

        results = await asyncio.gather(*(transfer() for _ in range(5)), *(obj.query() for _ in range(20)))
        assert await obj.param == 2 + 5 * 2 + 20
        assert len({r for r in results if r is not None}) == 20


async def test_delete_and_reopen(store_url):
    store = sharedstate.connect_async(store_url)
    obj = store.object("gone", SomeObj, 5)
    assert await obj.query() == 6
    await store.counter("gone_c").incr(3)
    assert await store.delete("gone") is True
    assert await store.delete("gone_c") is True
    assert await obj.query() == 6  # the factory runs again
    await store.aclose()
    assert await obj.query() == 7  # used after aclose: reopened


async def test_sync_and_async_clients_share_one_object(store_url):
    sync_store = sharedstate.connect(store_url)
    async_store = sharedstate.connect_async(store_url)
    sync_obj = sync_store.object("global_obj", SomeObj, 0)
    async_obj = async_store.object("global_obj", SomeObj, 0)
    values = []
    for _ in range(5):
        values.append(sync_obj.query())
        values.append(await async_obj.query())
    assert values == list(range(1, 11))
    assert sync_store.counter("c").incr(2) == 2
    assert await async_store.counter("c").incr() == 3
    # sync calls from a worker thread while this loop awaits its own
    done: list[int] = []
    thread = threading.Thread(target=lambda: done.extend(sync_obj.query() for _ in range(50)))
    thread.start()
    mine = [await async_obj.query() for _ in range(50)]
    await asyncio.to_thread(thread.join)
    assert sorted(done + mine) == list(range(11, 111))
    sync_store.close()
    await async_store.aclose()


def test_one_store_from_several_event_loops(store_url):
    """A store made at import time is used from two loops one after another (as in
    tests), and from loops in two threads at once."""
    store = sharedstate.connect_async(store_url)
    obj = store.object("global_obj", SomeObj, 0)

    async def calls(n: int) -> list[int]:
        return list(await asyncio.gather(*(obj.query() for _ in range(n))))

    first = asyncio.run(calls(20))
    second = asyncio.run(calls(20))
    results: list[list[int]] = []
    threads = [threading.Thread(target=lambda: results.append(asyncio.run(calls(50)))) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    everything = first + second + results[0] + results[1]
    assert sorted(everything) == list(range(1, 141))


def test_threads_starting_event_loops_at_once_share_one_store(store_url):
    """Loops that start in several threads at once, while entries of closed loops wait to
    be dropped, all get their connections: none trips over another's clean-up."""
    store = sharedstate.connect_async(store_url)
    obj = store.object("many_loops", SomeObj, 0)

    async def one_call() -> int:
        return await obj.query()

    switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads take turns often: a race shows at once
    try:
        rounds = [_loops_at_once(one_call) for _ in range(3)]
    finally:
        sys.setswitchinterval(switch_interval)
    assert rounds == [8, 8, 8]
    assert asyncio.run(one_call()) == 3 * 48 + 1


def _loops_at_once(one_call: Callable[[], Awaitable[int]]) -> int:
    """Runs 40 loops one after another, then 8 in threads at once; returns how many of
    those 8 got their call's result, after checking none raised."""
    for _ in range(40):  # loops that ran and closed: their entries are stale
        asyncio.run(one_call())
    barrier = threading.Barrier(8)
    results: list[int] = []
    errors: list[BaseException] = []

    def in_thread() -> None:
        try:
            barrier.wait()
            results.append(asyncio.run(one_call()))
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=in_thread) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    return len(results)


async def test_each_server_has_its_native_async_driver(store_url, backend_name):
    """Redis and PostgreSQL are awaited on their own async drivers; the others run their
    sync backend in the store's thread (SQLite, memcached, manager) or inline (memory)."""
    store = sharedstate.connect_async(store_url)
    expected = {
        "redis": "AsyncRedisBackend",
        "postgresql": "AsyncPostgresBackend",
        "memory": "InlineBackend",
    }.get(backend_name, "ThreadedBackend")
    assert type(store._here().backend).__name__ == expected
    await store.aclose()


def test_connect_async_is_lazy_and_checks_its_url_at_once():
    with pytest.raises(sharedstate.InvalidURLError):
        sharedstate.connect_async("nope://x")
    store = sharedstate.connect_async("redis://127.0.0.1:1/0?timeout=2")  # nothing listens
    obj = store.object("global_obj", SomeObj, 0)  # no loop, no connection: import time

    async def first_call() -> None:
        with pytest.raises(sharedstate.BackendUnavailableError, match="127.0.0.1:1"):
            await obj.query()

    asyncio.run(first_call())
    assert repr(obj) == "<AsyncSharedObject 'global_obj' of SomeObj>"


def test_an_unreachable_postgresql_is_reported_as_such():
    pytest.importorskip("psycopg")
    store = sharedstate.connect_async("postgresql://postgres@127.0.0.1:1/test?timeout=2")

    async def first_call() -> None:
        with pytest.raises(sharedstate.BackendUnavailableError, match="127.0.0.1:1"):
            await store.counter("c").incr()

    asyncio.run(first_call())


async def test_sync_and_async_locks_on_one_name_exclude_each_other(store_url):
    sync_store = sharedstate.connect(store_url)
    async_store = sharedstate.connect_async(store_url)
    held = sync_store.lock("report", ttl=10).acquire()
    with pytest.raises(StoreTimeoutError):
        await async_store.lock("report", timeout=0.2).acquire()
    held.release()
    lease = await async_store.lock("report", ttl=10).acquire()
    assert lease.token == held.token + 1  # one sequence of fencing tokens
    with pytest.raises(StoreTimeoutError):
        await asyncio.to_thread(sync_store.lock("report", timeout=0.2).acquire)
    await lease.release()
    sync_store.close()
    await async_store.aclose()
