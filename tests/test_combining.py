"""Flat combining on its own: batches, deadlines per call, and interrupts that never leave
the queue to nobody. A real Combiner and real threads; the batch executor is a plain
function, so each test controls exactly when a batch is in flight."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from sharedstate.combining import Call, Combiner, batch_deadline
from sharedstate.errors import StoreTimeoutError


class Recorder:
    """Executes batches (each call's payload is its result), optionally held at a gate."""

    def __init__(self) -> None:
        self.batches: list[list[object]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self.deadlines: list[float] = []

    def __call__(self, batch: list[Call]) -> None:
        self.entered.set()
        self.deadlines.append(batch_deadline(batch))
        self.gate.wait(10)
        self.batches.append([call.payload for call in batch])
        for call in batch:
            call.finish(call.payload)


def _in_thread(combiner: Combiner, payload: object, deadline: float, results: list[object]) -> threading.Thread:
    def run() -> None:
        try:
            results.append(combiner.submit(payload, deadline))
        except BaseException as exc:
            results.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def _busy(combiner: Combiner, recorder: Recorder, results: list[object]) -> threading.Thread:
    """A first call that is in flight (held at the recorder's gate) until the gate opens."""
    recorder.gate.clear()
    recorder.entered.clear()
    thread = _in_thread(combiner, "first", time.monotonic() + 30, results)
    assert recorder.entered.wait(5)
    return thread


def test_concurrent_calls_share_a_batch_in_queue_order():
    recorder = Recorder()
    combiner = Combiner(recorder)
    results: list[object] = []
    first = _busy(combiner, recorder, results)
    waiting = [_in_thread(combiner, n, time.monotonic() + 30, results) for n in range(5)]
    time.sleep(0.2)
    recorder.gate.set()
    for thread in [first, *waiting]:
        thread.join(5)
    assert recorder.batches[0] == ["first"]
    assert sorted(recorder.batches[1]) == list(range(5))  # one trip for the five
    assert sorted(r for r in results if r != "first") == list(range(5))  # type: ignore[type-var]


def test_a_call_whose_deadline_passes_while_queued_leaves_and_never_runs():
    recorder = Recorder()
    combiner = Combiner(recorder, what="a test call")
    results: list[object] = []
    first = _busy(combiner, recorder, results)
    started = time.monotonic()
    with pytest.raises(StoreTimeoutError, match="did not take effect"):
        combiner.submit("late", started + 0.3)
    assert 0.25 < time.monotonic() - started < 0.33
    recorder.gate.set()
    first.join(5)
    assert combiner.submit("after", time.monotonic() + 5) == "after"
    assert all("late" not in batch for batch in recorder.batches)


def test_a_batch_is_carried_under_its_most_pressing_deadline():
    recorder = Recorder()
    combiner = Combiner(recorder)
    results: list[object] = []
    first = _busy(combiner, recorder, results)
    soon = time.monotonic() + 3
    threads = [
        _in_thread(combiner, "later", time.monotonic() + 20, results),
        _in_thread(combiner, "soon", soon, results),
    ]
    time.sleep(0.2)
    recorder.gate.set()
    for thread in [first, *threads]:
        thread.join(5)
    assert recorder.deadlines[1] == soon


def test_an_interrupted_waiter_leaves_no_entry_behind():
    """KeyboardInterrupt while waiting behind another thread's call used to leave the
    entry queued: the combining role was later handed to nobody, and every later call on
    that name in the process blocked forever."""
    recorder = Recorder()
    combiner = Combiner(recorder)
    results: list[object] = []
    first = _busy(combiner, recorder, results)

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGUSR1, interrupt)  # as Ctrl-C reaches the main thread
    timer = threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGUSR1))
    try:
        timer.start()
        with pytest.raises(KeyboardInterrupt):
            combiner.submit("interrupted", time.monotonic() + 30)  # waits behind "first"
    finally:
        timer.cancel()
        signal.signal(signal.SIGUSR1, previous)
    recorder.gate.set()
    first.join(5)
    later: list[object] = []
    thread = _in_thread(combiner, "later", time.monotonic() + 5, later)
    thread.join(3)
    assert not thread.is_alive(), "the combiner is wedged"
    assert later == ["later"]
    assert all("interrupted" not in batch for batch in recorder.batches)


def test_an_interrupted_combiner_hands_the_queued_calls_on():
    class Interrupting(Recorder):
        def __call__(self, batch: list[Call]) -> None:
            if batch[0].payload == "first":
                self.entered.set()
                self.gate.wait(10)
                raise KeyboardInterrupt
            super().__call__(batch)

    recorder = Interrupting()
    combiner = Combiner(recorder)
    results: list[object] = []
    first = _busy(combiner, recorder, results)
    waiting = [_in_thread(combiner, n, time.monotonic() + 30, results) for n in range(3)]
    time.sleep(0.2)
    recorder.gate.set()
    for thread in [first, *waiting]:
        thread.join(5)
    assert any(isinstance(r, KeyboardInterrupt) for r in results)
    assert sorted(r for r in results if isinstance(r, int)) == [0, 1, 2]


def test_a_waiter_handed_the_role_just_as_its_deadline_passes_leaves_no_broken_lock():
    """A waiter whose timed wait ended in the same instant the role was handed to it used
    to skip taking its wakeup back, and the end of its own batch then released a lock
    that was not held: RuntimeError('release unlocked lock'), an error outside the family."""
    import random

    rng = random.Random(7)
    failures: list[BaseException] = []
    for _ in range(300):
        recorder = Recorder()
        combiner = Combiner(recorder)
        results: list[object] = []
        recorder.gate.clear()
        recorder.entered.clear()
        first = _in_thread(combiner, "first", time.monotonic() + 30, results)
        assert recorder.entered.wait(5)
        threading.Timer(0.004, recorder.gate.set).start()  # the batch ends ...
        try:  # ... about when this waiter's deadline passes
            combiner.submit("edge", time.monotonic() + 0.004 + rng.uniform(-0.001, 0.001))
        except StoreTimeoutError:
            pass
        except BaseException as exc:  # noqa: BLE001 - any other error is the failure
            failures.append(exc)
        first.join(5)
        assert combiner.submit("after", time.monotonic() + 5) == "after"
    assert failures == []
