"""Helpers for hammering a store from many processes and threads and judging the result."""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections.abc import Callable
from typing import Any

# (call time, return time, value); times on CLOCK_MONOTONIC, which is one clock for every
# process of the machine, so real-time order can be compared across processes.
Op = tuple[float, float, Any]


def run_threads(threads: int, calls: int, operation: Callable[[], Any]) -> list[Op]:
    """``threads`` threads each make ``calls`` calls, started together."""
    barrier = threading.Barrier(threads)
    results: list[list[Op]] = [[] for _ in range(threads)]
    errors: list[BaseException] = []

    def work(index: int) -> None:
        try:
            barrier.wait()
            mine = results[index]
            for _ in range(calls):
                start = time.monotonic()
                value = operation()
                mine.append((start, time.monotonic(), value))
        except BaseException as exc:  # reported by the caller
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    if errors:
        raise errors[0]
    return [op for ops in results for op in ops]


def _process_main(make_operation, threads, calls, start_event, queue) -> None:
    try:
        operation = make_operation()
        start_event.wait()
        queue.put(("ok", run_threads(threads, calls, operation)))
    except BaseException as exc:
        queue.put(("error", repr(exc)))


def run_processes(
    processes: int,
    threads: int,
    calls: int,
    make_operation: Callable[[], Callable[[], Any]],
    timeout: float = 240,
) -> list[Op]:
    """``processes`` forked processes x ``threads`` threads x ``calls`` calls.

    ``make_operation`` runs in each child (after the fork), so it may open its own store,
    or use one made before the fork (to test that a store survives ``fork``).
    """
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    start = context.Event()
    children = [
        context.Process(target=_process_main, args=(make_operation, threads, calls, start, queue))
        for _ in range(processes)
    ]
    for child in children:
        child.start()
    start.set()
    ops: list[Op] = []
    try:
        for _ in children:
            status, payload = queue.get(timeout=timeout)
            if status != "ok":
                raise AssertionError(f"a worker process failed: {payload}")
            ops.extend(payload)
    finally:
        for child in children:
            child.join(10)
            if child.is_alive():
                child.kill()
    return ops


def assert_exact_and_linearizable(ops: list[Op], first: int = 1) -> None:
    """Every value first..first+N-1 exactly once, and real-time order kept: a call that
    returned before another began got the smaller value."""
    values = sorted(op[2] for op in ops)
    expected = list(range(first, first + len(ops)))
    if values != expected:
        seen = set(values)
        duplicates = len(values) - len(seen)
        missing = [v for v in expected if v not in seen][:10]
        raise AssertionError(
            f"{len(ops)} calls: {duplicates} duplicate values, missing e.g. {missing}"
        )
    # Scan from the largest value down, keeping the earliest return among larger values:
    # if it precedes this op's call, a larger value finished before a smaller one began.
    by_value = sorted(ops, key=lambda op: op[2], reverse=True)
    earliest_return, holder = float("inf"), None
    for call, ret, value in by_value:
        if earliest_return < call:
            raise AssertionError(
                f"real-time order broken: value {holder} returned before the call that got "
                f"{value} began"
            )
        if ret < earliest_return:
            earliest_return, holder = ret, value
