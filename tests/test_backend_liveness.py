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
