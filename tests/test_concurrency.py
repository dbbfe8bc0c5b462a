"""Exactness under real concurrency: many processes x many threads, on every backend."""

from __future__ import annotations

import os
import tempfile

import pytest

import sharedstate

from .concurrency import assert_exact_and_linearizable, run_processes, run_threads
from .models import YieldingObj

PROCESSES, THREADS, CALLS = 4, 8, 120  # 3,840 calls per test


def test_checker_catches_a_broken_history():
    """The judge itself must be able to fail: duplicates, gaps and order inversions."""
    with pytest.raises(AssertionError, match="duplicate"):
        assert_exact_and_linearizable([(0, 1, 1), (0, 1, 1)])
    with pytest.raises(AssertionError, match="real-time order"):
        assert_exact_and_linearizable([(0.0, 1.0, 2), (2.0, 3.0, 1)])
    assert_exact_and_linearizable([(0.0, 3.0, 2), (1.0, 2.0, 1)])  # overlapping: fine


def test_threads_of_one_process(store):
    obj = store.object("global_obj", YieldingObj, 0)
    ops = run_threads(16, 200, obj.query)
    assert_exact_and_linearizable(ops)
    assert obj.param == 16 * 200


def test_processes_and_threads_each_connecting(multiprocess_url):
    def make():
        return sharedstate.connect(multiprocess_url).object("global_obj", YieldingObj, 0).query

    ops = run_processes(PROCESSES, THREADS, CALLS, make)
    assert_exact_and_linearizable(ops)
    with sharedstate.connect(multiprocess_url) as store:
        assert store.object("global_obj", YieldingObj, 0).param == PROCESSES * THREADS * CALLS


def test_store_made_and_used_before_fork(multiprocess_url):
    """As under ``gunicorn --preload``: the object exists (and has connected) in the parent
    before the workers fork; each worker must get its own connection."""
    store = sharedstate.connect(multiprocess_url)
    obj = store.object("global_obj", YieldingObj, 0)
    assert obj.query() == 1
    ops = run_processes(PROCESSES, THREADS, CALLS, lambda: obj.query)
    assert_exact_and_linearizable(ops, first=2)
    assert obj.query() == PROCESSES * THREADS * CALLS + 2
    store.close()


def test_counter_across_processes(multiprocess_url):
    def make():
        return sharedstate.connect(multiprocess_url).counter("hits").incr

    ops = run_processes(PROCESSES, THREADS, CALLS, make)
    assert_exact_and_linearizable(ops)


def test_transactions_across_processes(multiprocess_url):
    """Two calls in one transaction always get two consecutive values."""

    def make():
        store = sharedstate.connect(multiprocess_url)
        obj = store.object("pair", YieldingObj, 0)

        def two_calls():
            with store.transaction(obj) as o:
                return (o.query(), o.query())

        return two_calls

    ops = run_processes(2, 4, 15, make)
    pairs = [op[2] for op in ops]
    assert all(second == first + 1 for first, second in pairs)
    flat = sorted(v for pair in pairs for v in pair)
    assert flat == list(range(1, 2 * len(pairs) + 1))


def test_lock_gives_mutual_exclusion_across_processes(multiprocess_url):
    """A plain file, read and rewritten under the lock by every worker: the count is exact
    only if no two holders ever overlap. Tokens are unique and grow with grant order."""
    fd, path = tempfile.mkstemp()
    os.write(fd, b"0")
    os.close(fd)

    def make():
        store = sharedstate.connect(multiprocess_url)

        def guarded_increment():
            with store.lock("file", ttl=30) as lease:
                with open(path) as handle:
                    value = int(handle.read())
                os.sched_yield()
                with open(path, "w") as handle:
                    handle.write(str(value + 1))
                return (lease.token, value + 1)

        return guarded_increment

    try:
        ops = run_processes(3, 3, 20, make)
        with open(path) as handle:
            assert int(handle.read()) == 3 * 3 * 20
        tokens = sorted(op[2] for op in ops)
        assert len({t for t, _ in tokens}) == len(tokens)
        # grant order = token order: the n-th grant wrote n
        assert [v for _, v in tokens] == list(range(1, len(tokens) + 1))
    finally:
        os.unlink(path)
