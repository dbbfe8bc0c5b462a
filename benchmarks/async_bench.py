"""Async object calls and counter increments against the sync ones and the raw async
operation of the same store, in one run (rounds alternate; medians reported).

    python benchmarks/async_bench.py --url redis://127.0.0.1:6379/0
    python benchmarks/async_bench.py --url postgresql://postgres@127.0.0.1:5432/test
    python benchmarks/async_bench.py --url sqlite:////tmp/bench.db

Rows: calls per second for 1 task one call after another (1x1), and for 64 tasks at once
in one process (1x64, where combining shares trips). Raw baselines: Redis, one
``redis.asyncio`` ``INCR`` and a ``WATCH``/``GET``/``MULTI``/``SET``/``EXEC`` loop;
PostgreSQL, one psycopg async ``UPDATE ... RETURNING`` (autocommit).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable

import sharedstate


class SomeObj:
    def __init__(self, param: int) -> None:
        self.param = param

    def query(self) -> int:
        self.param += 1
        return self.param


async def rate(call: Callable[[], Awaitable[object]], tasks: int, seconds: float) -> float:
    """Calls per second of ``tasks`` tasks each calling ``call`` in a loop for ``seconds``."""
    done = 0
    stop = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < stop:
            await call()
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(tasks)))
    return done / (time.perf_counter() - started)


def sync_rate(call: Callable[[], object], seconds: float) -> float:
    done = 0
    started = time.perf_counter()
    stop = started + seconds
    while time.perf_counter() < stop:
        call()
        done += 1
    return done / (time.perf_counter() - started)


async def raw_baselines(url: str, key: str) -> dict[str, Callable[[], Awaitable[object]]]:
    scheme = url.split("://")[0]
    if scheme in ("redis", "rediss"):
        import redis.asyncio

        client = redis.asyncio.Redis.from_url(url.split("?")[0])

        async def incr() -> object:
            return await client.incr(key + ":raw")

        async def watch_loop() -> object:
            async with client.pipeline() as pipe:
                while True:
                    try:
                        await pipe.watch(key + ":rmw")
                        value = int(await pipe.get(key + ":rmw") or 0) + 1
                        pipe.multi()
                        pipe.set(key + ":rmw", value)
                        await pipe.execute()
                        return value
                    except redis.WatchError:
                        continue

        return {"raw INCR": incr, "raw WATCH/EXEC": watch_loop}
    if scheme in ("postgresql", "postgres"):
        import psycopg

        connection = await psycopg.AsyncConnection.connect(url.split("?")[0], autocommit=True)
        await connection.execute("CREATE TABLE IF NOT EXISTS sharedstate_async_bench_raw (k text PRIMARY KEY, v bigint)")
        await connection.execute("INSERT INTO sharedstate_async_bench_raw VALUES (%s, 0) ON CONFLICT DO NOTHING", (key,))
        lock = asyncio.Lock()  # one connection: one statement at a time

        async def update() -> object:
            async with lock:
                cursor = await connection.execute("UPDATE sharedstate_async_bench_raw SET v = v + 1 WHERE k = %s RETURNING v", (key,))
                return await cursor.fetchone()

        return {"raw UPDATE RETURNING": update}
    return {}


async def main_async(url: str, seconds: float, rounds: int) -> dict[str, float]:
    key = f"bench{uuid.uuid4().hex[:8]}"
    sync_store = sharedstate.connect(url, prefix=key)
    async_store = sharedstate.connect_async(url, prefix=key)
    sync_obj = sync_store.object("obj", SomeObj, 0)
    async_obj = async_store.object("obj", SomeObj, 0)
    sync_hits, async_hits = sync_store.counter("hits"), async_store.counter("hits")
    raw = await raw_baselines(url, key)
    results: dict[str, list[float]] = {}

    async def measure(name: str, value: Awaitable[float] | float) -> None:
        results.setdefault(name, []).append(await value if not isinstance(value, float) else value)

    for _ in range(rounds):
        await measure("sync object 1x1", await asyncio.to_thread(sync_rate, sync_obj.query, seconds))
        await measure("async object 1x1", rate(async_obj.query, 1, seconds))
        await measure("async object 1x64", rate(async_obj.query, 64, seconds))
        await measure("sync counter 1x1", await asyncio.to_thread(sync_rate, sync_hits.incr, seconds))
        await measure("async counter 1x1", rate(async_hits.incr, 1, seconds))
        await measure("async counter 1x64", rate(async_hits.incr, 64, seconds))
        for name, call in raw.items():
            await measure(name + " 1x1", rate(call, 1, seconds))
            await measure(name + " 1x64", rate(call, 64, seconds))
    await async_store.aclose()
    sync_store.close()
    return {name: statistics.median(values) for name, values in results.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="sqlite:///async-bench.db")
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    figures = asyncio.run(main_async(args.url, args.seconds, args.rounds))
    if args.json:
        print(json.dumps(figures))
        return
    for name, value in figures.items():
        print(f"{name:28} {value:10,.0f} /s")
    for ours, theirs in (
        ("async object 1x1", "raw INCR 1x1"),
        ("async object 1x1", "raw WATCH/EXEC 1x1"),
        ("async object 1x64", "raw WATCH/EXEC 1x64"),
        ("async object 1x64", "raw INCR 1x64"),
        ("async counter 1x1", "raw INCR 1x1"),
        ("async counter 1x64", "raw INCR 1x64"),
        ("async object 1x1", "raw UPDATE RETURNING 1x1"),
        ("async object 1x64", "raw UPDATE RETURNING 1x64"),
        ("async object 1x1", "sync object 1x1"),
        ("async counter 1x1", "sync counter 1x1"),
    ):
        if ours in figures and theirs in figures:
            print(f"{ours} / {theirs}: {figures[ours] / figures[theirs]:.2f}x")


if __name__ == "__main__":
    main()
