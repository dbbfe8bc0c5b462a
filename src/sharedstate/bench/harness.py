"""Runs sharedstate's operations and the raw hand-written ones side by side.

Every measurement is a fixed time window in which P forked processes x T threads call one
operation as fast as they can; sharedstate and raw take turns (A B A B ...) so drift of a
noisy machine hits both, and the median of the rounds is reported. Before measuring, each
operation runs unmeasured for a moment, so that one-time costs (connecting, SQLite growing
its WAL file) are not counted against whichever runs first. After each window the harness
checks that the operation counted exactly (final value == number of calls).
"""

from __future__ import annotations

import multiprocessing
import queue as thread_queue
import statistics
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, TypeVar

import sharedstate

from ..examples import SomeObj
from .raw import RawOperations, raw_operations_class


@dataclass(frozen=True)
class Layout:
    processes: int
    threads: int

    @property
    def label(self) -> str:
        return f"{self.processes} proc x {self.threads} thr"


#: (our operation, raw operation) -> the ratio issue #3/#5 ask for, per URL scheme
TARGETS: dict[str, dict[tuple[str, str], float]] = {
    "sqlite": {
        ("object call", "raw read-modify-write"): 0.8,
        ("counter incr", "raw increment"): 0.9,
    },
    "redis": {
        ("object call", "raw increment"): 0.7,
        ("object call", "raw read-modify-write"): 2.0,
        ("counter incr", "raw increment"): 0.9,
    },
    "postgresql": {
        ("object call", "raw increment"): 0.8,
        ("counter incr", "raw increment"): 0.9,
    },
}


def with_scheme_aliases(targets: dict[str, dict[tuple[str, str], float]]) -> None:
    """Adds the schemes that name the same backend (``rediss``, ``postgres``), so a table
    is written once per backend."""
    targets["rediss"] = targets["redis"]
    targets["postgres"] = targets["postgresql"]


with_scheme_aliases(TARGETS)


@dataclass
class Measurement:
    layout: str
    operation: str
    kind: str  # "sharedstate" or "raw"
    ops_per_second: list[float] = field(default_factory=list)
    exact: bool = True

    @property
    def median(self) -> float:
        return statistics.median(self.ops_per_second) if self.ops_per_second else 0.0


@dataclass
class Ratio:
    layout: str
    ours: str
    raw: str
    ratio: float
    target: float | None

    @property
    def met(self) -> bool | None:
        return None if self.target is None else self.ratio >= self.target


# -- one measured window -------------------------------------------------------------------

OperationFactory = Callable[[], tuple[Callable[[], int], Callable[[], None]]]


def _thread_main(
    make: OperationFactory, ready: threading.Barrier, window: list[float], counts: list[int], index: int, errors: list[str]
) -> None:
    """Makes its own operation (connections belong to the thread that opened them), warms
    it up, waits for the window to open, then calls it until the window closes."""
    try:
        operation, close = make()
        operation()
        ready.wait()
        stop_at = window[0]
        done = 0
        clock = time.monotonic
        while clock() < stop_at:
            operation()
            done += 1
        counts[index] = done
        close()
    except BaseException as exc:  # reported to the parent
        errors.append(repr(exc))
        ready.abort()


def _process_main(make: OperationFactory, threads: int, go: Any, window: float, queue: Any) -> None:
    try:
        counts = [0] * threads
        errors: list[str] = []
        stop_at = [0.0]
        ready = threading.Barrier(threads + 1)
        workers = [
            threading.Thread(target=_thread_main, args=(make, ready, stop_at, counts, i, errors))
            for i in range(threads)
        ]
        for worker in workers:
            worker.start()
        go.wait()
        stop_at[0] = time.monotonic() + window
        try:
            ready.wait()
        except threading.BrokenBarrierError:
            pass
        for worker in workers:
            worker.join()
        queue.put(("error", errors[0]) if errors else ("ok", sum(counts) + threads))
    except BaseException as exc:
        queue.put(("error", repr(exc)))


def run_window(layout: Layout, window: float, make: OperationFactory) -> tuple[float, int]:
    """Calls/second over ``window`` seconds, and the number of calls made (the warm-up
    call of each thread included, so the caller can check the final value).

    One process runs here, in this process (memory:// keeps its state nowhere else);
    several are forked."""
    if layout.processes == 1:
        results: thread_queue.Queue[tuple[str, Any]] = thread_queue.Queue()
        go_now = threading.Event()
        go_now.set()
        _process_main(make, layout.threads, go_now, window, results)
        status, payload = results.get()
        if status != "ok":
            raise RuntimeError(f"a benchmark worker failed: {payload}")
        return (payload - layout.threads) / window, payload
    with forked(_process_main, layout.processes, (make, layout.threads), window) as (queue, go):
        time.sleep(0.2)  # let every process connect before the window opens
        go.set()
        total = 0
        for _ in range(layout.processes):
            status, payload = queue.get(timeout=window + 120)
            if status != "ok":
                raise RuntimeError(f"a benchmark worker failed: {payload}")
            total += payload
    calls_in_window = total - layout.processes * layout.threads
    return calls_in_window / window, total


@contextmanager
def forked(target: Callable[..., None], processes: int, args: tuple[Any, ...], window: float) -> Iterator[tuple[Any, Any]]:
    """Forks ``processes`` children running ``target(*args, go, window, queue)`` and gives
    the queue they report on and the event that opens their window; on the way out every
    child is joined, or killed when it does not end, so a failed window leaves none behind.
    Forked, not spawned: the operation factories are closures, which only fork carries."""
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    go = context.Event()
    children = [context.Process(target=target, args=(*args, go, window, queue)) for _ in range(processes)]
    for child in children:
        child.start()
    try:
        yield queue, go
    finally:
        for child in children:
            child.join(10)
            if child.is_alive():
                child.kill()


# -- the operations ----------------------------------------------------------------------


def _ours(url: str, operation: str, name: str) -> OperationFactory:
    stores: dict[str, sharedstate.Store] = {}
    lock = threading.Lock()

    def make() -> tuple[Callable[[], int], Callable[[], None]]:
        # one store per process, shared by its threads, as an app would have it
        with lock:
            store = stores.get("store")
            if store is None:
                store = stores["store"] = sharedstate.connect(url)
        if operation == "object call":
            return store.object(name, SomeObj, 0).query, lambda: None
        return store.counter(name).incr, lambda: None

    return make


def _raw(url: str, raw_class: type[RawOperations], method: Callable[[RawOperations], Callable[[], int]], name: str) -> OperationFactory:
    def make() -> tuple[Callable[[], int], Callable[[], None]]:
        raw = raw_class(url, name)  # one per thread: hand-written code has a connection each
        return method(raw), raw.close

    return make


def _extra_operation(label: str) -> Callable[[RawOperations], Callable[[], int]]:
    """The raw operation ``label`` of a backend's extras, taken from each thread's own raw
    object (its connection)."""
    return lambda raw: raw.extra_operations()[label]


def _final_ours(url: str, operation: str, name: str) -> int:
    with sharedstate.connect(url) as store:
        if operation == "object call":
            return store.object(name, SomeObj, 0).param
        return store.counter(name).get()


def run_benchmark(
    url: str,
    layouts: list[Layout],
    window: float,
    rounds: int,
    progress: Callable[[str], None] = lambda message: None,
) -> tuple[list[Measurement], list[Ratio]]:
    scheme = url.split("://", 1)[0]
    raw_class = raw_operations_class(scheme)
    probe = raw_class(url, "probe")
    raw_operations: dict[str, Callable[[RawOperations], Callable[[], int]]] = {
        "raw read-modify-write": lambda r: r.object_call,
        "raw increment": lambda r: r.counter_incr,
    }
    for label in probe.extra_operations():
        raw_operations[label] = _extra_operation(label)
    probe.close()

    def measure(kind: str, label: str, name: str, layout: Layout) -> tuple[float, int, int]:
        if kind == "sharedstate":
            rate, calls = run_window(layout, window, _ours(url, label, name))
            return rate, calls, _final_ours(url, label, name)
        raw = raw_class(url, name)
        raw.setup()
        rate, calls = run_window(layout, window, _raw(url, raw_class, raw_operations[label], name))
        final = raw.read()
        raw.close()
        return rate, calls, final

    progress("warming up (connections, server caches, SQLite's WAL file)")
    _warm_up(url, raw_class, window)
    return measure_layouts(
        layouts, rounds, PAIRS, list(raw_operations), TARGETS.get(scheme, {}), measure, progress
    )


#: each of our operations beside the raw operation that does the same work
PAIRS = [("object call", "raw read-modify-write"), ("counter incr", "raw increment")]

class Labelled(Protocol):
    """A layout, as far as the rounds need it: its name in the progress and the report."""

    @property
    def label(self) -> str: ...


LayoutT = TypeVar("LayoutT", bound=Labelled)


def measure_layouts(
    layouts: list[LayoutT],
    rounds: int,
    pairs: list[tuple[str, str]],
    raw_labels: list[str],
    wanted: dict[tuple[str, str], float],
    measure: Callable[[str, str, str, LayoutT], tuple[float, int, int]],
    progress: Callable[[str], None],
    tag: str = "",
) -> tuple[list[Measurement], list[Ratio]]:
    """The rounds of every layout, sync or async alike: ``measure(kind, label, name,
    layout)`` runs one window on the fresh ``name`` and gives (calls/second, calls made,
    final value), so a window that lost or doubled a call marks its measurement inexact.
    Ours and raw take turns within a round so that a noisy machine's drift hits both."""
    measurements: list[Measurement] = []
    ratios: list[Ratio] = []
    for layout in layouts:
        ours = {op: Measurement(layout.label, op, "sharedstate") for op, _ in pairs}
        raws = {op: Measurement(layout.label, op, "raw") for op in raw_labels}
        for round_number in range(rounds):
            for our_op, raw_op in _schedule(pairs, raws):
                for kind, label in (("sharedstate", our_op), ("raw", raw_op)):
                    if label is None:
                        continue
                    name = f"bench-{uuid.uuid4().hex[:10]}"
                    progress(f"{layout.label}: {tag}{label} (round {round_number + 1}/{rounds})")
                    rate, calls, final = measure(kind, label, name, layout)
                    target = ours[label] if kind == "sharedstate" else raws[label]
                    target.ops_per_second.append(rate)
                    target.exact = target.exact and final == calls
        measurements.extend([*ours.values(), *raws.values()])
        for our_op, raw_op in sorted({*pairs, *wanted}):
            if raw_op in raws and raws[raw_op].median > 0:
                ratios.append(
                    Ratio(layout.label, our_op, raw_op, ours[our_op].median / raws[raw_op].median, wanted.get((our_op, raw_op)))
                )
    return measurements, ratios


def _warm_up(url: str, raw_class: type[RawOperations], window: float) -> None:
    """Runs each kind of operation unmeasured for a while: the first writes to a fresh
    store pay one-time costs (SQLite grows its WAL file; servers warm their caches) that
    would otherwise count against whichever operation is measured first."""
    name = f"warmup-{uuid.uuid4().hex[:10]}"
    raw = raw_class(url, name)
    raw.setup()
    warm = Layout(1, 1)
    for make in (_ours(url, "object call", name), _raw(url, raw_class, lambda r: r.object_call, name)):
        run_window(warm, max(window, 1.0), make)
    raw.close()


def _schedule(pairs: list[tuple[str, str]], raw_operations: dict[str, Any]) -> Iterator[tuple[str | None, str | None]]:
    """Ours and its raw twin back to back; then the raw operations with no twin."""
    paired = {raw for _, raw in pairs}
    yield from pairs
    for label in raw_operations:
        if label not in paired:
            yield None, label


def as_json(url: str, layouts: list[Layout], window: float, rounds: int, measurements: list[Measurement], ratios: list[Ratio]) -> dict[str, Any]:
    from ..backends import redact_url

    return {
        "url": redact_url(url),
        "window_seconds": window,
        "rounds": rounds,
        "layouts": [asdict(layout) for layout in layouts],
        "measurements": [
            {**asdict(m), "median_ops_per_second": m.median} for m in measurements
        ],
        "ratios": [{**asdict(r), "met": r.met} for r in ratios],
    }
