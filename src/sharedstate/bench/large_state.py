"""``sharedstate bench --state-size N``: what one object call costs when the state is big.

The default bench's object holds one int, so its figures say nothing about an object that
also keeps a large dict: there, the cost of a call is dominated by how much of the state a
call reads, decodes, encodes and writes back, not by the round trip. This measures that,
on one object of :class:`LargeState` with ``N`` entries, for three kinds of change:

* ``bump()``: only the int attribute changes (the dict is carried along untouched);
* ``touch(key)``: one existing entry of the dict changes;
* ``replace()``: the whole dict is rebound to a new one of the same ``N`` entries, the
  upper bound (everything is rewritten), so it gets a shorter window.

There is no hand-written twin to divide by, so the figures are the calls' own: calls per
second across all workers, and the mean time one caller waits for one call. The window is
timed from when its workers start to when their last call returns (a slow call that runs
past the window's end is counted in full, not cut off), which keeps the figures honest when
a window holds only a few calls. The classes live here, in an importable module, so every
process of the harness (forked, or a store's reader elsewhere) finds them by name.
"""

from __future__ import annotations

import json
import os
import queue as thread_queue
import random
import statistics
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sharedstate

from .harness import Layout, forked

#: entries added per ``fill`` call: each call stays small (about 60 KB of new state), and
#: 100,000 entries take 50 calls
FILL_CHUNK = 2000

#: the three measured changes, in the order they run in each round
OPERATIONS = ("bump()", "touch(key)", "replace()")

#: ``replace()`` rewrites everything and is slow on a big state: its window is this share
#: of ``--seconds`` (every worker still makes at least one measured call)
REPLACE_WINDOW_SHARE = 0.5


def entry_key(index: int) -> str:
    """The key of entry ``index``: ``k000123`` (fixed width, so every entry is one size)."""
    return f"k{index:06d}"


def entry_value(index: int, generation: int) -> str:
    """A short value, distinct per ``generation``: a write of it is never a no-op (an
    unchanged state is not rewritten, which would measure nothing). With its key, about 31
    bytes of JSON per entry."""
    return f"g{generation % 10**8:08d}-i{index % 10**7:07d}"


class LargeState:
    """An object with an int and a dict of many short entries, as an app's cache, index or
    table of sessions is: most calls change one small part of a big state."""

    def __init__(self) -> None:
        self.count = 0
        self.entries: dict[str, str] = {}

    def fill(self, start: int, count: int) -> int:
        """Adds entries ``start`` .. ``start + count - 1``; filling in chunks keeps every
        call small. Idempotent, since a call may run again after a conflict."""
        for index in range(start, start + count):
            self.entries[entry_key(index)] = entry_value(index, 0)
        return len(self.entries)

    def bump(self) -> int:
        """Changes only the int: what a call costs for the state it does not touch."""
        self.count += 1
        return self.count

    def touch(self, key: str, value: str) -> None:
        """Sets one existing entry: a small change inside the big attribute."""
        self.entries[key] = value

    def replace(self, generation: int) -> None:
        """Rebinds the dict to a new one of the same keys with new values: everything is
        rewritten."""
        self.entries = {entry_key(i): entry_value(i, generation) for i in range(len(self.entries))}


def state_bytes(size: int) -> int:
    """The JSON size of ``size`` entries, to show beside the figures."""
    state = LargeState()
    state.fill(0, size)
    return len(json.dumps(state.entries, separators=(",", ":")))


@dataclass
class StateMeasurement:
    """One operation in one layout: the figures of each round; medians are reported."""

    layout: str
    operation: str
    calls_per_second: list[float] = field(default_factory=list)
    microseconds_per_call: list[float] = field(default_factory=list)
    calls: list[int] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    #: bump() counts exactly (final int - initial int == calls made); None where the
    #: operation leaves nothing to count
    exact: bool | None = None

    @property
    def median_calls_per_second(self) -> float:
        return statistics.median(self.calls_per_second) if self.calls_per_second else 0.0

    @property
    def median_microseconds_per_call(self) -> float:
        return statistics.median(self.microseconds_per_call) if self.microseconds_per_call else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "layout": self.layout,
            "operation": self.operation,
            "calls_per_second": self.median_calls_per_second,
            "microseconds_per_call": self.median_microseconds_per_call,
            "exact": self.exact,
            "rounds": [
                {"calls": c, "seconds": s, "calls_per_second": r, "microseconds_per_call": u}
                for c, s, r, u in zip(self.calls, self.seconds, self.calls_per_second, self.microseconds_per_call, strict=True)
            ],
        }


# -- filling -------------------------------------------------------------------------------


def fill_state(url: str, name: str, size: int, note: Callable[[str], None]) -> None:
    """Makes object ``name`` with ``size`` entries, ``FILL_CHUNK`` per call, telling
    ``note`` how far it got (100,000 entries take a while when every call rewrites all)."""
    with sharedstate.connect(url) as store:
        state = store.object(name, LargeState)
        started = time.monotonic()
        for start in range(0, size, FILL_CHUNK):
            count = min(FILL_CHUNK, size - start)
            state.fill(start, count)
            note(f"filling the state: {start + count:,} / {size:,} entries ({time.monotonic() - started:.1f} s)")
        stored = len(state.entries)
        if stored != size:
            raise RuntimeError(f"the filled state holds {stored} entries, not {size}")


def _count(url: str, name: str) -> int:
    with sharedstate.connect(url) as store:
        return store.object(name, LargeState).count


# -- one timed window ----------------------------------------------------------------------

#: given the process's store and a thread's own random generator, the call to measure
CallFactory = Callable[[sharedstate.Store, random.Random], Callable[[], Any]]


def _call_factory(operation: str, name: str, size: int) -> CallFactory:
    def make(store: sharedstate.Store, rng: random.Random) -> Callable[[], Any]:
        state: Any = store.object(name, LargeState)
        if operation == "bump()":
            return state.bump
        if operation == "touch(key)":

            def touch() -> None:
                index = rng.randrange(size)
                state.touch(entry_key(index), entry_value(index, rng.randrange(1, 10**8)))

            return touch
        return lambda: state.replace(rng.randrange(1, 10**8))

    return make


def _worker(make: CallFactory, store: sharedstate.Store, ready: threading.Barrier, start: threading.Barrier,
            stop_at: list[float], out: list[Any], index: int, errors: list[str]) -> None:  # fmt: skip
    """One thread: its call made and warmed up (unmeasured), then calls until the window
    closes, at least once; records (calls, when it started, when its last call ended)."""
    try:
        call = make(store, random.Random(os.urandom(8)))
        call()
        ready.wait()
        start.wait()
        began = time.monotonic()
        done = 0
        clock = time.monotonic
        while done == 0 or clock() < stop_at[0]:
            call()
            done += 1
        out[index] = (done, began, time.monotonic())
    except BaseException as exc:  # reported to the parent
        errors.append(repr(exc))
        ready.abort()
        start.abort()


def _process_main(url: str, make: CallFactory, threads: int, go: Any, window: float, queue: Any) -> None:
    """One process: its own store shared by its threads (as an app has it); says "ready"
    once every thread is warmed up, opens its window when the parent says go."""
    store = sharedstate.connect(url)
    try:
        out: list[Any] = [None] * threads
        errors: list[str] = []
        stop_at = [0.0]
        ready, start = threading.Barrier(threads + 1), threading.Barrier(threads + 1)
        workers = [
            threading.Thread(target=_worker, args=(make, store, ready, start, stop_at, out, i, errors))
            for i in range(threads)
        ]
        for worker in workers:
            worker.start()
        try:
            ready.wait()
            queue.put(("ready", None))
            go.wait()
            stop_at[0] = time.monotonic() + window
            start.wait()
        except threading.BrokenBarrierError:
            pass
        for worker in workers:
            worker.join()
        queue.put(("error", errors[0]) if errors else ("done", out))
    except BaseException as exc:
        queue.put(("error", repr(exc)))
    finally:
        store.close()


def run_timed_window(url: str, layout: Layout, window: float, make: CallFactory) -> tuple[int, float, float]:
    """(calls measured, seconds from the first worker's start to the last one's end,
    worker-seconds spent in calls). One process runs in this process (memory:// keeps its
    state nowhere else), in a thread so this one can open the window; several are forked."""
    if layout.processes == 1:
        results: thread_queue.Queue[tuple[str, Any]] = thread_queue.Queue()
        go_now = threading.Event()
        runner = threading.Thread(target=_process_main, args=(url, make, layout.threads, go_now, window, results))
        runner.start()
        try:
            reports = _gather(results, go_now, 1, window)
        finally:
            go_now.set()
            runner.join()
    else:
        with forked(_process_main, layout.processes, (url, make, layout.threads), window) as (queue, go):
            reports = _gather(queue, go, layout.processes, window)
    workers = [worker for report in reports for worker in report]
    calls = sum(done for done, _, _ in workers)
    elapsed = max(end for _, _, end in workers) - min(began for _, began, _ in workers)
    busy = sum(end - began for _, began, end in workers)
    return calls, elapsed, busy


def _gather(queue: Any, go: Any, processes: int, window: float) -> list[Any]:
    """Opens the window once every process is ready, then collects their reports."""
    deadline = 600 + window  # a warm-up call on a big state can take long; not forever
    for _ in range(processes):
        status, payload = queue.get(timeout=deadline)
        if status == "error":
            raise RuntimeError(f"a benchmark worker failed: {payload}")
    go.set()
    reports = []
    for _ in range(processes):
        status, payload = queue.get(timeout=deadline)
        if status != "done":
            raise RuntimeError(f"a benchmark worker failed: {payload}")
        reports.append(payload)
    return reports


# -- the whole run -------------------------------------------------------------------------


def run_large_state(
    url: str,
    layouts: list[Layout],
    size: int,
    window: float,
    rounds: int,
    progress: Callable[[str], None] = lambda message: None,
    note: Callable[[str], None] | None = None,
) -> list[StateMeasurement]:
    """Fills one object with ``size`` entries, then measures each operation in each
    layout, ``rounds`` times. ``progress`` hears of each window, ``note`` of the fill."""
    name = f"bench-state-{uuid.uuid4().hex[:10]}"
    fill_state(url, name, size, note or progress)
    measurements: list[StateMeasurement] = []
    try:
        for layout in layouts:
            for operation in OPERATIONS:
                measurements.append(StateMeasurement(layout.label, operation))
            mine = measurements[-len(OPERATIONS):]
            for round_number in range(rounds):
                for measurement in mine:
                    progress(f"{layout.label}: {measurement.operation} on {size:,} entries (round {round_number + 1}/{rounds})")
                    _measure(url, name, size, layout, window, measurement)
    finally:
        with sharedstate.connect(url) as store:
            store.delete(name)  # a big state is not left behind on a server
    return measurements


def _measure(url: str, name: str, size: int, layout: Layout, window: float, measurement: StateMeasurement) -> None:
    operation = measurement.operation
    before = _count(url, name) if operation == "bump()" else 0
    seconds = window * REPLACE_WINDOW_SHARE if operation == "replace()" else window
    calls, elapsed, busy = run_timed_window(url, layout, seconds, _call_factory(operation, name, size))
    measurement.calls.append(calls)
    measurement.seconds.append(elapsed)
    measurement.calls_per_second.append(calls / elapsed)
    measurement.microseconds_per_call.append(busy / calls * 1e6)
    if operation == "bump()":  # every call, the warm-up ones too, adds exactly one
        counted = _count(url, name) - before == calls + layout.processes * layout.threads
        measurement.exact = counted and measurement.exact is not False


def as_json(size: int, measurements: list[StateMeasurement]) -> dict[str, Any]:
    """The ``large_state`` part of ``bench --json``."""
    return {
        "entries": size,
        "state_json_bytes": state_bytes(size),
        "fill_chunk": FILL_CHUNK,
        "replace_window_share": REPLACE_WINDOW_SHARE,
        "measurements": [m.as_dict() for m in measurements],
    }
