"""The event loop is never blocked by store I/O, measured over HTTP on a real server.

One uvicorn worker serves ``tests/apps/ping_app.py``: ``/call`` makes one object call on
the store, ``/ping`` touches no store. While the store is stalled for ``STALL`` seconds
(SQLite: another connection holds the write lock; Redis: a proxy holds every reply) 20
real HTTP clients call ``/call`` at once, and ``/ping`` is asked on the same worker,
again and again, until the stall ends. With the async API every ping answers within
``LONGEST_PING``; the variant that calls the sync API from ``async def`` stops the loop
for the whole stall, and the same measurement must catch it, or it would prove nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

pytest.importorskip("uvicorn")
pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")

from .asgi_helpers import UVICORN_READY, serve, unique_prefix  # noqa: E402
from .proxies import HoldingProxy, hold_sqlite, proxy_in_front  # noqa: E402

APPS = Path(__file__).resolve().parent / "apps"
STALL = 0.4  # seconds the store is stalled
CALLERS = 20
LONGEST_PING = 0.05  # what /ping may take while the store stalls
ATTEMPTS = 3  # a loop blocked by store I/O is blocked every time; load on a 2-core box is luck

Stall = Callable[[], threading.Thread]


@contextlib.contextmanager
def stalled_store(request: pytest.FixtureRequest, backend: str, tmp_path: Path) -> Iterator[tuple[str, Stall]]:
    """(the URL the server uses, a function that stalls that store for STALL seconds)."""
    if backend == "sqlite":
        path = tmp_path / "state.db"

        yield f"sqlite:///{path}?prefix={unique_prefix()}", lambda: hold_sqlite(path, STALL)
        return
    redis_url = request.getfixturevalue("redis_url")
    with proxy_in_front(redis_url, HoldingProxy, default_port=6379) as (url, proxy):
        yield f"{url}{'&' if '?' in url else '?'}prefix={unique_prefix()}", lambda: proxy.hold_for(STALL)


def _uvicorn(port: int) -> list[str]:
    """One worker: uvicorn's single-process path (its TCP_NODELAY is set, see uvicorn#3149)."""
    return [sys.executable, "-m", "uvicorn", "--host", "127.0.0.1", "--port", str(port),
            "--app-dir", str(APPS), "ping_app:app"]  # fmt: skip


async def _stalled_round(base: str, stall: Stall) -> tuple[list[float], float]:
    """One stall: (each ping's time while the 20 calls waited, how long the calls took)."""
    limits = httpx.Limits(max_connections=CALLERS + 1)
    async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as callers, \
            httpx.AsyncClient(base_url=base, timeout=30) as pinger:  # fmt: skip
        (await pinger.get("/ping")).raise_for_status()  # its keep-alive connection, opened
        holder = await asyncio.to_thread(stall)
        started = time.perf_counter()
        calls = asyncio.gather(*(callers.get("/call") for _ in range(CALLERS)))
        await asyncio.sleep(0.1)  # the calls have reached the worker and wait on the store
        pings: list[float] = []
        # at least one ping, even when a loaded machine took most of the stall to get here
        while not pings or time.perf_counter() - started < STALL * 0.75:
            sent = time.perf_counter()
            (await pinger.get("/ping")).raise_for_status()
            pings.append(time.perf_counter() - sent)
            await asyncio.sleep(0.01)
        for response in await calls:
            response.raise_for_status()
        elapsed = time.perf_counter() - started
        await asyncio.to_thread(holder.join)
    return pings, elapsed


async def _value(base: str) -> int:
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        return int((await client.get("/value")).json())


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
@pytest.mark.parametrize("variant", ["async", "sync"])
def test_ping_answers_while_the_store_stalls(
    request: pytest.FixtureRequest, tmp_path: Path, backend: str, variant: str
) -> None:
    with stalled_store(request, backend, tmp_path) as (url, stall):
        env = {"SHAREDSTATE_TEST_URL": url, "SHAREDSTATE_TEST_VARIANT": variant}
        with serve(_uvicorn, UVICORN_READY, 1, env, tmp_path / "uvicorn.log") as base:
            httpx.get(base + "/call", timeout=30).raise_for_status()  # connected; record exists
            worst: list[float] = []
            for attempt in range(ATTEMPTS):
                pings, elapsed = asyncio.run(_stalled_round(base, stall))
                assert elapsed > STALL * 0.8, "the store did not stall: the test measured nothing"
                assert asyncio.run(_value(base)) == 1 + (attempt + 1) * CALLERS
                worst.append(max(pings))
                if variant == "async" and worst[-1] < LONGEST_PING:
                    break
    shown = [round(w * 1000) for w in worst]
    print(f"{backend}, {variant} API: the slowest /ping of each stall {shown} ms")
    if variant == "async":
        assert min(worst) < LONGEST_PING, f"/ping waited {shown} ms while the store stalled"
    else:
        # the sync API from async def: the loop stops for the stall, every time
        assert min(worst) > LONGEST_PING, f"the measurement missed a blocked loop: {shown} ms"
