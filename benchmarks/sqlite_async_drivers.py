"""Raw SQLite ``UPDATE ... RETURNING`` awaited from asyncio three ways: aiosqlite, the sync
``sqlite3`` module in one executor thread (what sharedstate's async store does), and inline
(blocking the event loop: the ceiling, not an option). Needs ``pip install aiosqlite``.

    python benchmarks/sqlite_async_drivers.py [--calls 3000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

SQL = "UPDATE c SET v = v + 1 WHERE k = 'x' RETURNING v"


async def main_async(path: str, calls: int, rounds: int) -> dict[str, float]:
    import aiosqlite

    rates: dict[str, list[float]] = {}
    db = await aiosqlite.connect(path, isolation_level=None)
    await db.execute("PRAGMA synchronous=NORMAL")
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    connection.execute("PRAGMA synchronous=NORMAL")
    executor = ThreadPoolExecutor(1)
    loop = asyncio.get_running_loop()

    def one() -> object:
        return connection.execute(SQL).fetchone()

    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(calls):
            async with db.execute(SQL) as cursor:
                await cursor.fetchone()
        rates.setdefault("aiosqlite", []).append(calls / (time.perf_counter() - started))
        started = time.perf_counter()
        for _ in range(calls):
            await loop.run_in_executor(executor, one)
        rates.setdefault("one executor thread", []).append(calls / (time.perf_counter() - started))
        started = time.perf_counter()
        for _ in range(calls):
            one()
        rates.setdefault("inline (blocks the loop)", []).append(calls / (time.perf_counter() - started))
    await db.close()
    connection.close()
    executor.shutdown()
    return {name: statistics.median(values) for name, values in rates.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "bench.db")
        setup = sqlite3.connect(path, isolation_level=None)
        setup.execute("PRAGMA journal_mode=WAL")
        setup.execute("CREATE TABLE c (k TEXT PRIMARY KEY, v INTEGER)")
        setup.execute("INSERT INTO c VALUES ('x', 0)")
        setup.close()
        for name, rate in asyncio.run(main_async(path, args.calls, args.rounds)).items():
            print(f"{name:28} {rate:10,.0f} /s")


if __name__ == "__main__":
    main()
