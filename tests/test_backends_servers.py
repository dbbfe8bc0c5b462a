"""What only server backends go through: restarts, wrong credentials, unreachable hosts,
fork, and memcached's evictions. Each test uses a private server of its own (started on a
free port), so restarting it disturbs nobody else.

PostgreSQL's restart and password tests use a private cluster (``initdb`` under a temp
dir, scram password auth), never the machine's shared one.
"""

from __future__ import annotations

import multiprocessing
import secrets
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator

import pytest

import sharedstate
from sharedstate import (
    BackendUnavailableError,
    InvalidURLError,
    SharedStateError,
    StateLostError,
    StoreTimeoutError,
)

from .models import SomeObj
from .servers import (
    ServerProcess,
    free_port,
    manager_server,
    memcached_server,
    redis_server,
    unavailable,
)

PASSWORD = "right-" + secrets.token_hex(4)


class Ticket:
    def __init__(self, start: int) -> None:
        self.param = start

    def query(self) -> int:
        value = self.param
        time.sleep(0)
        self.param = value + 1
        return self.param


def _started(make: Callable[[], ServerProcess]) -> ServerProcess:
    try:
        return make().start()
    except (FileNotFoundError, RuntimeError) as exc:
        unavailable(str(exc))
        raise


@pytest.fixture(scope="module")
def private_redis() -> Iterator[ServerProcess]:
    # appendfsync always: every answered write is on disk, so even SIGKILL loses none
    server = _started(
        lambda: redis_server(free_port(), "--requirepass", PASSWORD, "--appendfsync", "always")
    )
    yield server
    server.stop()


@pytest.fixture(scope="module")
def private_memcached() -> Iterator[ServerProcess]:
    server = _started(lambda: memcached_server(free_port()))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def private_manager() -> Iterator[tuple[ServerProcess, str]]:
    authkey = secrets.token_hex(8)
    server = _started(lambda: manager_server(free_port(), authkey))
    yield server, authkey
    server.stop()


def _prefixed(url: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}prefix=r{uuid.uuid4().hex[:8]}-"


# -- restarts --------------------------------------------------------------------------------
def _calls_across_restart(
    url: str, restart: Callable[[], None]
) -> tuple[list[tuple[float, int]], list[tuple[float, Exception]], float, int]:
    """Calls query() from 4 threads while the server restarts; returns what returned and
    what failed (each with its time), when the restart began and the final value."""
    store = sharedstate.connect(url)
    obj = store.object("ticket", Ticket, 0)
    returned: list[tuple[float, int]] = []
    failed: list[tuple[float, Exception]] = []
    stop = threading.Event()

    def worker() -> None:
        while not stop.is_set():
            try:
                value = obj.query()
                returned.append((time.monotonic(), value))
            except SharedStateError as exc:
                failed.append((time.monotonic(), exc))
                time.sleep(0.02)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        deadline = time.monotonic() + 20
        while len(returned) < 200 and time.monotonic() < deadline:
            time.sleep(0.01)
        restarted_at = time.monotonic()
        restart()
        after = len(returned)
        while len(returned) < after + 200 and time.monotonic() < deadline + 20:
            time.sleep(0.01)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert len(returned) >= after + 200, f"no recovery after the restart: {failed[-3:]}"
    final = obj.param
    store.close()
    return returned, failed, restarted_at, final


def _assert_durable(
    returned: list[tuple[float, int]], failed: list[tuple[float, Exception]], final: int
) -> None:
    values = [value for _, value in returned]
    assert len(values) == len(set(values)), (
        "a number was handed out twice: a returned call was lost"
    )
    # a call that failed mid-flight may or may not have been applied; none that returned is lost
    assert max(values) <= final <= max(values) + len(failed)
    for _, error in failed:
        assert isinstance(error, (BackendUnavailableError, StoreTimeoutError)), repr(error)
        assert PASSWORD not in str(error)


@pytest.mark.slow
def test_redis_killed_and_restarted_mid_calls_loses_no_returned_call(private_redis):
    url = _prefixed(f"redis://:{PASSWORD}@127.0.0.1:{private_redis.port}/0")
    returned, failed, _, final = _calls_across_restart(
        url, lambda: private_redis.restart(signal.SIGKILL)
    )
    _assert_durable(returned, failed, final)


@pytest.mark.slow
def test_postgres_crashed_and_restarted_mid_calls_loses_no_returned_call(private_postgres):
    def crash_and_restart() -> None:
        private_postgres.stop("immediate")  # like a crash: no checkpoint, WAL replay at start
        private_postgres.start()

    url = _prefixed(private_postgres.url())
    returned, failed, _, final = _calls_across_restart(url, crash_and_restart)
    _assert_durable(returned, failed, final)


def _assert_loss_reported(
    returned: list[tuple[float, int]], failed: list[tuple[float, Exception]], restarted_at: float
) -> None:
    """A memory-only server lost everything: the loss must be raised before any number is
    handed out again; after that, counting restarts."""
    before = [value for at, value in returned if at < restarted_at]
    lost = [at for at, error in failed if isinstance(error, StateLostError)]
    assert lost, "the restart's loss of state was never reported"
    for at, value in returned:
        if value in before and at > restarted_at:
            assert at > lost[0], f"{value} was handed out again before StateLostError"
    for _, error in failed:
        assert isinstance(error, (BackendUnavailableError, StoreTimeoutError, StateLostError)), (
            repr(error)
        )


@pytest.mark.slow
def test_memcached_restart_reports_lost_state_before_counting_again(private_memcached):
    url = _prefixed(f"memcached://127.0.0.1:{private_memcached.port}")
    returned, failed, restarted_at, _ = _calls_across_restart(url, private_memcached.restart)
    _assert_loss_reported(returned, failed, restarted_at)


@pytest.mark.slow
def test_manager_restart_reports_lost_state_before_counting_again(private_manager):
    server, authkey = private_manager
    url = _prefixed(f"manager://127.0.0.1:{server.port}?authkey={authkey}")
    returned, failed, restarted_at, _ = _calls_across_restart(url, server.restart)
    _assert_loss_reported(returned, failed, restarted_at)


# -- credentials -----------------------------------------------------------------------------
def _refused(url: str, secret: str) -> BackendUnavailableError:
    started = time.monotonic()
    with sharedstate.connect(url) as store:
        with pytest.raises(BackendUnavailableError) as caught:
            store.counter("c").incr()
    assert time.monotonic() - started < 5
    assert secret not in str(caught.value)
    return caught.value


def test_redis_wrong_password_is_a_clear_error(private_redis):
    error = _refused(f"redis://:wrong-pw@127.0.0.1:{private_redis.port}/0", "wrong-pw")
    assert f"127.0.0.1:{private_redis.port}" in str(error)
    assert "password" in str(error)
    with sharedstate.connect(
        _prefixed(f"redis://:{PASSWORD}@127.0.0.1:{private_redis.port}/0")
    ) as store:
        assert store.counter("c").incr() == 1


def test_postgres_wrong_password_is_a_clear_error(private_postgres):
    error = _refused(private_postgres.url("wrong-pw"), "wrong-pw")
    assert f"127.0.0.1:{private_postgres.port}" in str(error)
    assert "password" in str(error)
    with sharedstate.connect(_prefixed(private_postgres.url())) as store:
        assert store.counter("c").incr() == 1


def test_manager_wrong_authkey_is_a_clear_error(private_manager):
    server, authkey = private_manager
    error = _refused(f"manager://127.0.0.1:{server.port}?authkey=wrong-key", "wrong-key")
    assert "authkey" in str(error)


@pytest.mark.parametrize("command", ["client", "server"])
def test_manager_refuses_to_run_without_an_authkey(command):
    url = f"manager://127.0.0.1:{free_port()}"
    if command == "client":
        with pytest.raises(InvalidURLError, match="authkey"):
            sharedstate.connect(url)
    else:
        from click.testing import CliRunner

        from sharedstate.cli import main

        result = CliRunner().invoke(main, ["serve", url])
        assert result.exit_code != 0
        assert "authkey" in result.output


# -- unreachable -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "template",
    [
        "redis://127.0.0.1:{port}/0",
        "postgresql://postgres@127.0.0.1:{port}/test",
        "memcached://127.0.0.1:{port}",
        "manager://127.0.0.1:{port}?authkey=k",
    ],
)
def test_closed_port_fails_fast_and_clearly(template):
    port = free_port()  # nothing listens there
    started = time.monotonic()
    with sharedstate.connect(template.format(port=port)) as store:
        with pytest.raises(BackendUnavailableError, match=f"127.0.0.1:{port}"):
            store.object("o", Ticket, 0).query()
    assert time.monotonic() - started < 3


# -- fork ------------------------------------------------------------------------------------
def _child_calls(obj: object, count: int, queue: multiprocessing.Queue) -> None:
    queue.put([obj.query() for _ in range(count)])  # type: ignore[attr-defined]


@pytest.mark.parametrize("server", ["redis", "postgresql", "memcached", "manager"])
def test_store_opened_before_fork_works_in_parent_and_children(server, request):
    """Connections made before fork (gunicorn --preload) are never shared: the children
    open their own, and the parent's keep working."""
    if server == "manager":
        process, authkey = request.getfixturevalue("private_manager")
        base = f"manager://127.0.0.1:{process.port}?authkey={authkey}"
    else:
        fixture = {"redis": "redis_url", "postgresql": "postgres_url", "memcached": "memcached_url"}
        base = request.getfixturevalue(fixture[server])
    store = sharedstate.connect(_prefixed(base))
    obj = store.object("ticket", Ticket, 0)
    assert obj.query() == 1  # the parent is connected now
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    children = [context.Process(target=_child_calls, args=(obj, 50, queue)) for _ in range(3)]
    for child in children:
        child.start()
    mine = [obj.query() for _ in range(50)]
    theirs = [value for _ in children for value in queue.get(timeout=60)]
    for child in children:
        child.join(timeout=30)
        assert child.exitcode == 0
    assert sorted([1, *mine, *theirs]) == list(range(1, 202))
    assert obj.query() == 202
    store.close()


# -- memcached evictions ---------------------------------------------------------------------
def _evict(url: str, key: str) -> None:
    """Removes an item behind sharedstate's back, as an eviction would."""
    from sharedstate.backends.memcached import MemcachedBackend

    backend = MemcachedBackend(url.split("?")[0], {})
    assert backend._run(lambda client: client.delete(key, noreply=False))
    backend.close()


def test_memcached_evicted_state_raises_in_every_process_and_is_not_recreated(memcached_url):
    prefix = f"e{uuid.uuid4().hex[:8]}-"
    url = f"{memcached_url}?prefix={prefix}"
    with sharedstate.connect(url) as store:
        obj = store.object("ticket", Ticket, 0)
        counter = store.counter("hits")
        assert [obj.query() for _ in range(3)] == [1, 2, 3]
        assert counter.incr(5) == 5
    _evict(memcached_url, f"sharedstate:{prefix}o:ticket")
    _evict(memcached_url, f"sharedstate:{prefix}c:hits")
    with sharedstate.connect(url) as fresh:  # a process that never saw them
        with pytest.raises(StateLostError, match="ticket"):
            fresh.object("ticket", Ticket, 0).query()
        with pytest.raises(StateLostError, match="hits"):
            fresh.counter("hits").incr()
        with pytest.raises(StateLostError):
            fresh.counter("hits").get()
        # starting again is explicit: the names are deleted (the object's record through
        # the backend, until Store.delete itself forgets a lost record)
        fresh.backend.delete(f"{prefix}o:ticket")
        assert fresh.delete("hits")
        assert fresh.object("ticket", Ticket, 0).query() == 1
        assert fresh.counter("hits").incr() == 1


def test_memcached_counter_goes_below_zero(memcached_url):
    with sharedstate.connect(_prefixed(memcached_url)) as store:
        counter = store.counter("c")
        assert counter.decr(3) == -3
        counter.set(-10)
        assert counter.incr(4) == -6
        assert counter.get() == -6


# -- TLS -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tls_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, str]]:
    """A private redis-server that speaks TLS only, with a self-signed certificate."""
    import shutil
    import subprocess

    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    if shutil.which("openssl") is None:
        unavailable("openssl is needed to make a test certificate")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
         "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    port = free_port()
    server = _started(
        lambda: ServerProcess(
            [shutil.which("redis-server") or "redis-server", "--port", "0", "--tls-port", str(port),
             "--bind", "127.0.0.1", "--tls-cert-file", str(cert), "--tls-key-file", str(key),
             "--tls-ca-cert-file", str(cert), "--tls-auth-clients", "no", "--save", "",
             "--appendonly", "no"],
            port, "redis-server (TLS)",
        )
    )  # fmt: skip
    yield port, str(cert)
    server.stop()


def test_rediss_speaks_tls_and_checks_the_certificate(tls_redis):
    port, ca = tls_redis
    with sharedstate.connect(_prefixed(f"rediss://127.0.0.1:{port}/0?ssl_ca_certs={ca}")) as store:
        assert store.object("o", Ticket, 0).query() == 1
        assert store.counter("c").incr() == 1
    with sharedstate.connect(f"rediss://127.0.0.1:{port}/0") as untrusting:  # no CA given
        with pytest.raises(BackendUnavailableError, match="certificate verify failed"):
            untrusting.counter("c").incr()


def test_redis_frames_each_record_as_the_engine_did(redis_url):
    """The compare-and-set script takes the last writes' call ids from the record it
    replaces rather than from the request: what it stores must be, byte for byte, the frame
    the engine built (the ids of the last 16 writes, in order, then the hold and state),
    through writes from two stores, a transaction's hold, and more writes than ids kept."""
    import redis

    from sharedstate.frames import KEEP_IDS, decode_frame

    prefix = f"frames{uuid.uuid4().hex[:8]}-"
    url = f"{redis_url}?prefix={prefix}"
    first, second = sharedstate.connect(url), sharedstate.connect(url)
    objects = [first.object("framed", SomeObj, 0), second.object("framed", SomeObj, 0)]
    raw = redis.Redis.from_url(redis_url)
    key = f"sharedstate:{prefix}o:framed"
    for i in range(KEEP_IDS * 2 + 3):
        store = (first, second)[i % 2]
        if i == 7:
            with store.transaction(objects[i % 2]) as held:
                held.query()
        else:
            objects[i % 2].query()
        stored = raw.hget(key, "d")
        assert stored == store._engine.cache[f"{prefix}o:framed"].data
        frame = decode_frame(stored)
        assert len(frame.ids) == min(i + 1 + (i >= 7), KEEP_IDS)  # a transaction: two writes
    assert objects[0].param == KEEP_IDS * 2 + 3
    first.delete("framed")
    raw.close()
