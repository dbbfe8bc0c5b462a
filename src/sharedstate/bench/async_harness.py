"""``sharedstate bench --async``: the async API beside the raw async operation of the same
backend, in one run.

A window is P forked processes, each running one event loop with T tasks that call one
operation as fast as they can (an app's worker under load: one loop, many requests in
flight). Ours: one ``connect_async`` store per process, its object's ``query()`` or its
counter's ``incr()``. Raw: :mod:`.raw_async`, one client per process. As in the sync
harness, sharedstate and raw take turns (A B A B ...) on fresh names, the median of the
rounds is reported, a warm-up runs first, and each window's final value must equal the
number of calls made. Before a window opens every process has connected and called once
per task (it reports ready), so no process's start-up eats into another's window; each
process divides its calls by its own measured time (its last calls end after the window).
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import sharedstate

from ..examples import SomeObj
from .harness import (
    PAIRS,
    TARGETS,
    Measurement,
    Ratio,
    _final_ours,
    forked,
    measure_layouts,
    with_scheme_aliases,
)
from .raw import raw_operations_class
from .raw_async import AsyncOperation, AsyncRawOperations, async_raw_class


@dataclass(frozen=True)
class AsyncLayout:
    processes: int
    tasks: int

    @property
    def label(self) -> str:
        return f"{self.processes} proc x {self.tasks} tasks"


#: (our operation, raw operation) -> the ratio issue #10 asks for, per URL scheme: the sync
#: targets, but for Redis's object call against its raw increment (0.8 here, 0.7 in sync)
ASYNC_TARGETS: dict[str, dict[tuple[str, str], float]] = {
    scheme: dict(targets) for scheme, targets in TARGETS.items() if scheme in ("sqlite", "redis", "postgresql")
}
ASYNC_TARGETS["redis"][("object call", "raw increment")] = 0.8
with_scheme_aliases(ASYNC_TARGETS)

Close = Callable[[], Awaitable[None]]
AsyncFactory = Callable[[], Awaitable[tuple[AsyncOperation, Close]]]


# -- one measured window -------------------------------------------------------------------


async def _tasks_main(make: AsyncFactory, tasks: int, ready: Callable[[], None], go: Any, window: float) -> tuple[float, int]:
    """(calls per second of this process's tasks, calls made including the warm-up)."""
    operation, close = await make()
    await asyncio.gather(*(operation() for _ in range(tasks)))  # connected, once per task
    ready()
    await asyncio.to_thread(go.wait)
    counts = [0] * tasks
    clock = time.monotonic
    started = clock()
    stop_at = started + window

    async def worker(index: int) -> None:
        done = 0
        while clock() < stop_at:
            await operation()
            done += 1
        counts[index] = done

    await asyncio.gather(*(worker(i) for i in range(tasks)))
    elapsed = clock() - started
    await close()
    return sum(counts) / elapsed, sum(counts) + tasks


def _process_main(make: AsyncFactory, tasks: int, go: Any, window: float, queue: Any) -> None:
    try:
        result = asyncio.run(_tasks_main(make, tasks, lambda: queue.put(("ready", None)), go, window))
        queue.put(("ok", result))
    except BaseException as exc:  # reported to the parent
        queue.put(("error", repr(exc)))


def run_async_window(layout: AsyncLayout, window: float, make: AsyncFactory) -> tuple[float, int]:
    """Calls/second over about ``window`` seconds, and the number of calls made (each
    task's warm-up call included, so the caller can check the final value).

    One process runs here, in this process (memory:// keeps its state nowhere else);
    several are forked, and the window opens once every one of them is ready."""
    if layout.processes == 1:
        go_now = threading.Event()
        go_now.set()
        return asyncio.run(_tasks_main(make, layout.tasks, lambda: None, go_now, window))
    with forked(_process_main, layout.processes, (make, layout.tasks), window) as (queue, go):
        rate, total, ready, finished = 0.0, 0, 0, 0
        while finished < layout.processes:
            status, payload = queue.get(timeout=window + 120)
            if status == "error":
                raise RuntimeError(f"a benchmark worker failed: {payload}")
            if status == "ready":
                ready += 1
                if ready == layout.processes:
                    go.set()
                continue
            rate, total, finished = rate + payload[0], total + payload[1], finished + 1
    return rate, total


# -- the operations ----------------------------------------------------------------------


def _ours(url: str, operation: str, name: str) -> AsyncFactory:
    async def make() -> tuple[AsyncOperation, Close]:
        store = sharedstate.connect_async(url)  # one per process, shared by its tasks
        if operation == "object call":
            return store.object(name, SomeObj, 0).query, store.aclose
        return store.counter(name).incr, store.aclose

    return make


def _raw(url: str, operation: str, name: str, tasks: int) -> AsyncFactory:
    async def make() -> tuple[AsyncOperation, Close]:
        raw: AsyncRawOperations = async_raw_class(url.split("://", 1)[0])(url, name, tasks)
        await raw.open()
        call = raw.object_call if operation == "raw read-modify-write" else raw.counter_incr
        return call, raw.close

    return make


def run_async_benchmark(
    url: str,
    layouts: list[AsyncLayout],
    window: float,
    rounds: int,
    progress: Callable[[str], None] = lambda message: None,
) -> tuple[list[Measurement], list[Ratio]]:
    scheme = url.split("://", 1)[0]
    sync_raw = raw_operations_class(scheme)  # creates and reads the raw key or row
    async_raw_class(scheme)

    def measure(kind: str, label: str, name: str, layout: AsyncLayout) -> tuple[float, int, int]:
        if kind == "sharedstate":
            rate, calls = run_async_window(layout, window, _ours(url, label, name))
            return rate, calls, _final_ours(url, label, name)
        raw = sync_raw(url, name)
        raw.setup()
        rate, calls = run_async_window(layout, window, _raw(url, label, name, layout.tasks))
        final = raw.read()
        raw.close()
        return rate, calls, final

    progress("warming up (connections, server caches, SQLite's WAL file)")
    _warm_up(url, window)
    raw_labels = [raw for _, raw in PAIRS]
    wanted = ASYNC_TARGETS.get(scheme, {})
    return measure_layouts(layouts, rounds, PAIRS, raw_labels, wanted, measure, progress, "async ")


def _warm_up(url: str, window: float) -> None:
    """Each side unmeasured for a while first: a fresh store's first writes pay one-time
    costs (SQLite grows its WAL file; servers warm their caches)."""
    name = f"warmup-{uuid.uuid4().hex[:10]}"
    raw = raw_operations_class(url.split("://", 1)[0])(url, name)
    raw.setup()
    warm = AsyncLayout(1, 1)
    for make in (_ours(url, "object call", name), _raw(url, "raw read-modify-write", name, 1)):
        run_async_window(warm, max(window, 1.0), make)
    raw.close()
