"""Backends under faults: restarts, pauses, concurrent start-up, fork, and whether an error
says that its request may have reached the server (``errors.request_sent``).

Every test here uses a private server started on a free loopback port (``servers.py``),
so restarting or pausing it (SIGSTOP) disturbs nobody else; the machine's shared servers
are only used where nothing is done to them.
"""

from __future__ import annotations

import contextlib
import signal
import uuid
from collections.abc import Callable, Iterator

import pytest

from sharedstate.errors import request_sent

from .servers import ServerProcess, free_port, redis_server, unavailable


def _started(make: Callable[[], ServerProcess]) -> ServerProcess:
    try:
        return make().start()
    except (FileNotFoundError, RuntimeError) as exc:
        unavailable(str(exc))
        raise


@pytest.fixture
def fresh_redis() -> Iterator[ServerProcess]:
    """A private Redis for one test (restarted or paused by it)."""
    server = _started(lambda: redis_server(free_port()))
    try:
        yield server
    finally:
        with contextlib.suppress(ProcessLookupError, AttributeError):
            server.process.send_signal(signal.SIGCONT)  # type: ignore[union-attr]
        server.stop()


def _redis_backend(port: int, query: str = ""):
    from sharedstate.backends.redis import RedisBackend

    options = dict(pair.split("=", 1) for pair in query.split("&") if pair)
    return RedisBackend(f"redis://127.0.0.1:{port}/0", options)


# -- item: idle pooled connections after a Redis restart ------------------------------------
def test_redis_restart_every_idle_pooled_connection_works_at_once(fresh_redis):
    backend = _redis_backend(fresh_redis.port)
    key = f"c{uuid.uuid4().hex[:8]}"
    connections = [backend._pool.acquire() for _ in range(6)]
    for connection in connections:
        connection.connect()
    for connection in connections:
        backend._pool.release(connection)
    assert backend.counter_add(key, 1) == 1
    fresh_redis.restart()  # appendonly: the counter survives; every pooled socket is dead
    # each call takes the next idle (dead) connection; none may fail
    assert [backend.counter_add(key, 1) for _ in range(8)] == list(range(2, 10))
    backend.close()


def test_redis_refused_connection_is_not_marked_sent():
    backend = _redis_backend(free_port())  # nothing listens there
    with pytest.raises(Exception) as caught:
        backend.counter_add("c", 1)
    assert not request_sent(caught.value)
    backend.close()


# -- item: PostgreSQL tables created by many processes started at once -----------------------
_FIRST_CALL = """
import sys, time
import sharedstate
store = sharedstate.connect(sys.argv[1])
counter = store.counter("hits")
start = float(sys.argv[2])
time.sleep(max(0.0, start - time.time()))
counter.incr()
store.close()
"""


@pytest.mark.slow
def test_postgres_tables_created_by_separately_started_processes_at_once(private_postgres):
    """Separately started interpreters (not forked: each salts ``hash`` its own way) make
    their first call on a fresh table at the same instant; every one must succeed."""
    import subprocess
    import sys
    import time

    import sharedstate

    table = f"t{uuid.uuid4().hex[:12]}"
    url = f"{private_postgres.url()}?table={table}&pool_min=0"
    start = time.time() + 8
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", _FIRST_CALL, url, repr(start)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for _ in range(30)
    ]
    failures = []
    for process in processes:
        try:
            _, error = process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            _, error = process.communicate()
        if process.returncode != 0:
            failures.append(error.decode(errors="replace").strip().splitlines()[-1:])
    assert time.time() > start, "the processes did not start together: raise the lead time"
    assert not failures, f"{len(failures)} of 30 first calls failed: {failures[:3]}"
    with sharedstate.connect(url) as store:
        assert store.counter("hits").get() == 30
