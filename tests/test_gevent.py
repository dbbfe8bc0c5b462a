"""Every backend under gevent's monkey-patching: exact, and no greenlet frozen by a driver.

Each case runs in a subprocess that patches first (``monkey.patch_all()`` must come before
anything imports ``socket`` or ``threading``), then runs 50 greenlets x 40 calls of a
method that yields between its read and its write, plus counter increments, beside a
ticker greenlet that wakes every millisecond.

To tell a cooperative driver from a blocking one, the server backends are reached through
a proxy that holds every reply for ``DELAY`` seconds: a driver that blocks the event loop
while it waits would stop the ticker for that long on every round trip; a cooperative one
lets it keep ticking. SQLite (and memory://) have no socket: a SQLite call blocks the loop
for its duration (coleifer/peewee#1503), which sharedstate keeps short (one statement,
no waiting inside a transaction); for them the test checks exactness only.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

pytest.importorskip("gevent")

from .proxies import DelayingProxy, proxy_in_front  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DELAY = 0.03  # seconds each reply from a server is held back
GREENLETS, CALLS = 50, 40

SCRIPT = textwrap.dedent(
    """
    from gevent import monkey
    monkey.patch_all()

    import json, sys, time
    import gevent
    import sharedstate

    class Ticket:
        def __init__(self, start):
            self.param = start

        def query(self):
            value = self.param
            time.sleep(0)  # patched: yields to the other greenlets mid-call
            self.param = value + 1
            return self.param

    store = sharedstate.connect(sys.argv[1])
    obj = store.object("global_obj", Ticket, 0)
    hits = store.counter("hits")
    greenlets, calls = int(sys.argv[2]), int(sys.argv[3])
    gaps, in_calls, running = [], [0], [True]

    def ticker():
        last = time.perf_counter()
        while running[0]:
            gevent.sleep(0.001)
            now = time.perf_counter()
            if in_calls[0]:
                gaps.append(now - last)
            last = now

    results, counts = [], []

    def worker():
        for _ in range(calls):
            in_calls[0] += 1
            try:
                results.append(obj.query())
                counts.append(hits.incr())
            finally:
                in_calls[0] -= 1

    tick = gevent.spawn(ticker)
    gevent.sleep(0.01)
    started = time.perf_counter()
    gevent.joinall([gevent.spawn(worker) for _ in range(greenlets)], raise_error=True)
    elapsed = time.perf_counter() - started
    running[0] = False
    tick.join()
    total = greenlets * calls
    print(json.dumps({
        "exact": sorted(results) == list(range(1, total + 1)),
        "counter_exact": sorted(counts) == list(range(1, total + 1)),
        "unique": len(set(results)),
        "ticks": len(gaps),
        "max_gap": max(gaps, default=0.0),
        "frozen": sum(gap for gap in gaps if gap > float(sys.argv[4]) / 2),
        "elapsed": elapsed,
    }))
    """
)


@pytest.fixture
def proxied_url(store_url: str, backend_name: str) -> Iterator[tuple[str, bool]]:
    """(URL, whether it goes through the delaying proxy)."""
    parts = urlsplit(store_url)
    if not parts.port and backend_name not in ("redis", "postgresql", "memcached", "manager"):
        yield store_url, False
        return
    with proxy_in_front(store_url, lambda target: DelayingProxy(target, DELAY)) as (url, _):
        yield url, True


@pytest.mark.slow
def test_greenlets_are_exact_and_never_frozen(proxied_url):
    url, proxied = proxied_url
    completed = subprocess.run(
        [sys.executable, "-c", SCRIPT, url, str(GREENLETS), str(CALLS), str(DELAY)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    report = json.loads(completed.stdout.strip().splitlines()[-1])
    assert report["exact"], report
    assert report["counter_exact"], report
    if proxied:
        # every round trip waited >= DELAY on the network: a blocking driver would stop the
        # ticker that long each time, so nearly all the run would be spent in long gaps; a
        # cooperative one lets it tick meanwhile. (A rare long gap is the machine's noise.)
        assert report["elapsed"] > DELAY * CALLS, report
        assert report["ticks"] > report["elapsed"] / DELAY, report
        assert report["frozen"] < 0.1 * report["elapsed"], report
