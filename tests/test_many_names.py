"""Many names through one process, on every backend: the per-name dicts stay bounded, an
evicted entry only costs a reload (or a new combiner, even one evicted while busy), and
``delete()`` frees a name's entries. The memory figure itself is measured by
``benchmarks/many_names.py``, not here."""

from __future__ import annotations

import asyncio
import threading

import pytest

import sharedstate
from sharedstate import bounded

from .models import YieldingObj

LIMIT = 40


@pytest.fixture
def small_limit(monkeypatch):
    monkeypatch.setattr(bounded, "KEEP_NAMES", LIMIT)


def per_name_sizes(store: sharedstate.Store) -> dict[str, int]:
    engine = store._engine
    return {
        "cache": len(engine.cache),
        "frames": len(engine._frames),
        "seen holds": len(engine._seen_holds),
        "specs": len(store._specs),
        "combiners": len(store._combiners),
        "instances": len(store._objects._instances),
    }


def test_per_name_entries_stay_bounded_and_evicted_names_reload(store, small_limit):
    for i in range(10 * LIMIT):
        obj = store.object(f"user-{i}", YieldingObj, i)
        assert obj.query() == i + 1
        store.counter(f"c-{i}").incr(i)
    sizes = per_name_sizes(store)
    assert all(size <= LIMIT + 1 for size in sizes.values()), sizes
    for i in (0, 1, 10 * LIMIT - 1):  # evicted long ago, or still there: the state is right
        assert store.object(f"user-{i}", YieldingObj, 0).query() == i + 2
        assert store.counter(f"c-{i}").incr() == i + 1


def test_a_busy_combiner_evicted_only_loses_batching(store, small_limit):
    """Threads hammer one name while others declare many more, so its combiner is dropped
    while calls are queued on it; a second combiner for the same name then runs beside
    it, and the engine's compare-and-set keeps every call exactly once."""
    hot = store.object("hot", YieldingObj, 0)
    results: list[int] = []
    churn_done = threading.Event()

    def hammer() -> None:
        local = [hot.query() for _ in range(10)]
        while not churn_done.is_set():  # keep calling while the churn evicts combiners
            local.append(hot.query())
        results.extend(local)

    hot_key = store.prefix + "o:hot"
    combiners_seen: set[int] = set()

    def churn() -> None:
        for i in range(6 * LIMIT):
            store.object(f"other-{i}", YieldingObj, 0).query()
            combiner = store._combiners.get(hot_key)
            if combiner is not None:
                combiners_seen.add(id(combiner))
        churn_done.set()

    threads = [threading.Thread(target=hammer) for _ in range(6)] + [threading.Thread(target=churn)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert churn_done.is_set()
    assert len(combiners_seen) > 1  # the hot name's combiner was dropped and made again
    assert sorted(results) == list(range(1, len(results) + 1))  # unique, none lost
    assert hot.param == len(results)


def test_delete_frees_the_names_entries(store):
    obj = store.object("gone", YieldingObj, 0)
    obj.query()
    store.counter("gone").incr()
    key = store.prefix + "o:gone"
    assert key in store._engine.cache and "gone" in store._specs
    assert store.delete("gone")
    assert key not in store._engine.cache
    assert key not in store._combiners and store.prefix + "c:gone" not in store._combiners
    assert key not in store._objects._instances
    assert "gone" not in store._specs
    assert obj.query() == 1  # the object still works: its factory runs again


def test_trim_drops_the_oldest_quarter():
    entries = {i: i for i in range(101)}
    dropped: list[int] = []
    bounded.trim(entries, 100, dropped.append)
    assert list(entries) == list(range(26, 101)) and dropped == list(range(26))
    bounded.trim(entries, 100)
    assert len(entries) == 75  # under the limit: untouched


def test_async_per_loop_combiners_stay_bounded(store_url, small_limit):
    """The async store's combiners (one per name and event loop) are kept to the newest
    names as well; evicted names still count right."""
    store = sharedstate.connect_async(store_url)

    async def many_names() -> int:
        for i in range(10 * LIMIT):
            assert await store.object(f"auser-{i}", YieldingObj, i).query() == i + 1
            assert await store.counter(f"ac-{i}").incr(i + 1) == i + 1
        kept = len(store._here().combiners)
        assert await store.object("auser-0", YieldingObj, 0).query() == 2
        assert await store.counter("ac-0").incr() == 2
        await store.aclose()
        return kept

    assert asyncio.run(many_names()) <= LIMIT + 1
