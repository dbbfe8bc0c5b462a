"""Backends under faults: restarts, pauses, concurrent start-up, fork, and whether an error
says that its request may have reached the server (``errors.request_sent``).

Every test here uses a private server started on a free loopback port (``servers.py``),
so restarting or pausing it (SIGSTOP) disturbs nobody else; the machine's shared servers
are only used where nothing is done to them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
import uuid
from collections.abc import Callable, Iterator

import pytest

from sharedstate.backends import Backend, open_backend
from sharedstate.errors import SharedStateError, request_sent

from .servers import (
    PrivatePostgres,
    ServerProcess,
    free_port,
    manager_server,
    memcached_server,
    redis_server,
    unavailable,
)


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
    return _backend(f"redis://127.0.0.1:{port}/0", query)


def _backend(url: str, query: str = "") -> Backend:
    """A backend of ``url`` with the backend options in ``query`` (``a=1&b=2``)."""
    options = dict(pair.split("=", 1) for pair in query.split("&") if pair)
    timeout = float(options.pop("timeout", "10"))
    return open_backend(url + ("?" + query if query else ""), options, timeout)


@contextlib.contextmanager
def paused(pids: list[int]) -> Iterator[None]:
    """The processes stopped with SIGSTOP (a hung server: connections stay open, nothing is
    answered, new connections complete in the kernel's backlog) until the block ends."""
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        for pid in pids:
            _wait_stopped(pid)
        yield
    finally:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)


def _postgres_pids(cluster: PrivatePostgres) -> list[int]:
    """The postmaster of a private cluster and every process it started."""
    postmaster = int((cluster.data / "postmaster.pid").read_text().split()[0])
    pids = [postmaster]
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError), open(f"/proc/{entry}/stat") as stat:
                if int(stat.read().rpartition(")")[2].split()[1]) == postmaster:
                    pids.append(int(entry))
    return pids


def _wait_stopped(pid: int) -> None:
    """SIGSTOP takes effect when the process is next scheduled: wait until it has, in every
    thread (until then a thread may still answer)."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        states = []
        for task in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{task}/stat") as stat:
                states.append(stat.read().rpartition(")")[2].split()[0])
        if states and all(state in "tT" for state in states):
            return
        time.sleep(0.001)
    raise AssertionError(f"process {pid} did not stop")


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


# -- item: errors say whether their request may have reached the server ---------------------
_AUTHKEY = "k" + uuid.uuid4().hex


class Paused:
    """A private server of one kind, its base URL, and the processes to pause."""

    def __init__(self, url: str, pids: Callable[[], list[int]], stop: Callable[[], None]) -> None:
        self.url, self.pids, self.stop = url, pids, stop


def _pausable(kind: str, request: pytest.FixtureRequest) -> Iterator[Paused]:
    if kind == "postgresql":
        cluster: PrivatePostgres = request.getfixturevalue("private_postgres")
        yield Paused(cluster.url(), lambda: _postgres_pids(cluster), lambda: None)
        return
    server, url = _server(kind)
    try:
        yield Paused(url, lambda: [server.process.pid] if server.process else [], server.stop)
    finally:
        server.stop(signal.SIGKILL)


def _server(kind: str) -> tuple[ServerProcess, str]:
    """A private server of ``kind`` and its base URL."""
    port = free_port()
    if kind == "redis":
        return _started(lambda: redis_server(port)), f"redis://127.0.0.1:{port}/0"
    if kind == "memcached":
        return _started(lambda: memcached_server(port)), f"memcached://127.0.0.1:{port}"
    server = _started(lambda: manager_server(port, _AUTHKEY))
    return server, f"manager://127.0.0.1:{port}?authkey={_AUTHKEY}"


@pytest.fixture(params=["redis", "memcached", "manager", "postgresql"])
def paused_server(request: pytest.FixtureRequest) -> Iterator[Paused]:
    yield from _pausable(request.param, request)


def _query(url: str, extra: str) -> str:
    base, _, query = url.partition("?")
    return "&".join(part for part in (query, extra) if part)


@pytest.mark.parametrize(
    "url",
    [
        "redis://127.0.0.1:{port}/0",
        "memcached://127.0.0.1:{port}",
        "manager://127.0.0.1:{port}?authkey=k",
        "postgresql://postgres@127.0.0.1:{port}/test",
    ],
)
def test_refused_connection_is_not_marked_sent(url):
    url = url.format(port=free_port())  # nothing listens there
    backend = _backend(url.partition("?")[0], _query(url, ""))
    with pytest.raises(SharedStateError) as caught:
        backend.counter_add("c", 1)
    assert not request_sent(caught.value)
    backend.close()


def test_paused_server_errors_tell_sent_from_not_sent(paused_server):
    """Sent: a request on an open connection that the (paused) server never answers.
    Not sent: a new connection to the paused server, whose handshake goes unanswered."""
    server = paused_server
    key = f"c{uuid.uuid4().hex[:8]}"
    base, query = server.url.partition("?")[0], _query(server.url, "timeout=0.5")
    connected = _backend(base, query)
    assert connected.counter_add(key, 1) == 1
    fresh = _backend(base, query)
    with paused(server.pids()):
        started = time.monotonic()
        with pytest.raises(SharedStateError) as sent:
            connected.counter_add(key, 1)
        assert request_sent(sent.value), repr(sent.value)
        with pytest.raises(SharedStateError) as not_sent:
            fresh.counter_add(key, 1)
        assert not request_sent(not_sent.value), repr(not_sent.value)
        assert time.monotonic() - started < 4
    # the lost add ran once the server resumed, or was dropped with the connection the
    # client reset (SO_LINGER 0): either is allowed, never twice
    assert connected.counter_get(key) in (1, 2)
    connected.close()
    fresh.close()


# -- item: PostgreSQL tables created by many processes started at once -----------------------
_FIRST_CALL = """
import sys, time
import sharedstate
store = sharedstate.connect(sys.argv[1])
counter = store.counter("hits")
print("ready", flush=True)
start = float(sys.stdin.readline())  # the same instant for every process
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
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", _FIRST_CALL, url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(30)
    ]
    try:
        for process in processes:  # every one imported and connected (lazily: no table yet)
            assert process.stdout is not None and process.stdin is not None
            if process.stdout.readline() != b"ready\n":
                raise AssertionError(f"a process failed to start: {process.communicate()[1]!r}")
        start = time.time() + 0.3
        for process in processes:
            process.stdin.write(f"{start!r}\n".encode())  # type: ignore[union-attr]
            process.stdin.flush()  # type: ignore[union-attr]
    except BaseException:
        for process in processes:
            process.kill()
            process.wait()
        raise
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


# -- item: counters with call ids -------------------------------------------------------------
def _ids() -> Iterator[str]:
    while True:
        yield uuid.uuid4().hex


@pytest.fixture(params=["redis", "manager", "postgresql"])
def outcome_server(request: pytest.FixtureRequest) -> Iterator[Paused]:
    yield from _pausable(request.param, request)


def test_counter_outcome_tells_applied_from_fenced(outcome_server):
    url = outcome_server.url
    backend = _backend(
        url.partition("?")[0],
        _query(url, f"table=t{uuid.uuid4().hex[:8]}" if url.startswith("postgres") else ""),
    )
    ids = _ids()
    applied, never_sent = next(ids), next(ids)
    assert backend.counter_add("c", 3, call_id=applied) == 3
    assert backend.counter_add("c", -1, call_id=next(ids)) == 2
    assert backend.counter_outcome("c", applied) == 3
    assert backend.counter_add("c", 3, call_id=applied) == 3  # sent again: not applied twice
    assert backend.counter_outcome("c", never_sent) is None  # fenced from now on
    with pytest.raises(SharedStateError):
        backend.counter_add("c", 10, call_id=never_sent)
    assert backend.counter_outcome("c", never_sent) is None
    assert backend.counter_get("c") == 2
    assert backend.delete("c")
    assert backend.keys("") == []
    backend.close()


def test_counter_add_lost_in_a_paused_server_has_a_known_outcome(outcome_server):
    """An add sent to a paused server times out (its request sent); once the server runs
    again, the outcome is known and agrees with the counter, whichever of the late add and
    the question the server ran first."""
    server = outcome_server
    key = f"c{uuid.uuid4().hex[:8]}"
    base, query = server.url.partition("?")[0], _query(server.url, "timeout=0.5")
    backend = _backend(base, query)
    ids = _ids()
    assert backend.counter_add(key, 1, call_id=next(ids)) == 1
    lost = next(ids)
    with paused(server.pids()):
        with pytest.raises(SharedStateError) as caught:
            backend.counter_add(key, 5, call_id=lost)
        assert request_sent(caught.value)
    outcome = backend.counter_outcome(key, lost)
    assert outcome in (6, None)
    time.sleep(0.2)  # a late add would have run by now
    assert backend.counter_get(key) == (6 if outcome == 6 else 1)
    assert backend.counter_add(key, 1, call_id=next(ids)) == backend.counter_get(key)
    backend.close()


def test_redis_counter_outcome_is_unknown_once_the_id_may_have_been_trimmed(redis_url):
    from sharedstate.backends.base import UNKNOWN
    from sharedstate.backends.redis_calls import CALLS_KEPT

    backend = _backend(redis_url)
    key = f"t{uuid.uuid4().hex[:8]}"
    ids = _ids()
    first = next(ids)
    backend.counter_add(key, 1, call_id=first)
    later = 2 * CALLS_KEPT + 5  # two generations later: the first id is dropped
    for _ in range(later):
        backend.counter_add(key, 1, call_id=next(ids))
    assert backend.counter_outcome(key, first) is UNKNOWN  # not None: it did run
    recent = next(ids)
    assert backend.counter_add(key, 1, call_id=recent) == later + 2
    assert backend.counter_outcome(key, recent) == later + 2
    backend.delete(key)
    backend.close()


# -- item: PostgreSQL keeps ?timeout= when the server hangs -----------------------------------
class Ticket:
    def __init__(self, start: int) -> None:
        self.param = start

    def query(self) -> int:
        self.param += 1
        return self.param


@pytest.mark.slow
def test_paused_server_calls_error_within_the_timeout_then_work_again(paused_server):
    """Every call on a paused server ends within ?timeout= + 10% (PostgreSQL waited for the
    server's own statement_timeout, which a paused server never sends), a new connection's
    handshake included; once the server runs again, calls work again."""
    import sharedstate

    url = with_query(paused_server.url, f"timeout=2&prefix=p{uuid.uuid4().hex[:8]}-")
    with sharedstate.connect(url) as store:
        obj, counter = store.object("ticket", Ticket, 0), store.counter("hits")
        assert obj.query() == 1
        assert counter.incr() == 1
        with paused(paused_server.pids()):
            # the second increment opens a new connection (the first one's was discarded)
            for call in (obj.query, counter.incr, counter.incr):
                started = time.monotonic()
                with pytest.raises(SharedStateError):
                    call()
                took = time.monotonic() - started
                assert took < 2.2, f"{call.__name__} raised after {took:.2f} s (?timeout=2)"
        deadline = time.monotonic() + 10
        while True:  # working again, at once or within a few seconds
            try:
                value = counter.incr()
                break
            except SharedStateError:
                assert time.monotonic() < deadline, "no recovery after SIGCONT"
                time.sleep(0.1)
        assert value in (2, 3, 4)  # each timed-out add ran or not; none twice
        assert obj.query() in (2, 3)


def with_query(url: str, extra: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}{extra}"


def test_postgres_call_log_is_trimmed_and_an_old_lost_add_is_unknown(postgres_url):
    from sharedstate.backends.base import UNKNOWN
    from sharedstate.backends.postgres_sql import CALLS_KEPT_SECONDS, TRIM_EVERY

    table = f"t{uuid.uuid4().hex[:8]}"
    backend = _backend(postgres_url, f"table={table}")
    ids = _ids()
    old, recent = next(ids), next(ids)
    backend.counter_add("c", 1, call_id=old)
    backend._run(  # as if logged long ago
        lambda c: c.execute(
            f"UPDATE {table}_calls SET at = at - make_interval(secs => %s) WHERE id = %s",
            (CALLS_KEPT_SECONDS + 60, old),
        )
    )
    for _ in range(TRIM_EVERY):
        backend.counter_add("c", 1, call_id=next(ids))
    backend.counter_add("c", 1, call_id=recent)
    logged = backend._run(lambda c: c.execute(f"SELECT id FROM {table}_calls").fetchall())
    assert (old,) not in logged and (recent,) in logged
    # a lost add sent longer ago than the log keeps: fenced, but its outcome is unknown
    backend._in_doubt.lost(old, time.monotonic() - CALLS_KEPT_SECONDS - 1)
    assert backend.counter_outcome("c", old) is UNKNOWN
    assert backend.counter_outcome("c", recent) == TRIM_EVERY + 2
    backend._run(
        lambda c: c.execute(f"DROP TABLE {table}_records, {table}_counters, {table}_calls")
    )
    backend.close()


# -- item: SQLite, threads and fork -----------------------------------------------------------
@pytest.mark.slow
def test_sqlite_fork_while_threads_run_sqlite_never_hangs_the_child(tmp_path):
    """Threads hammer SQLite while the main thread forks 200 times; every child opens its
    own connection and makes a call at once. A fork made while a thread was inside SQLite
    used to copy its mutexes locked, and the child hung in ``sqlite3.connect``."""
    import threading

    import sharedstate

    url = f"sqlite:///{tmp_path}/state.db"
    store = sharedstate.connect(url)
    counter, other = store.counter("hits"), store.counter("busy")
    counter.incr()
    stop = threading.Event()

    def hammer() -> None:
        mine = sharedstate.connect(url)  # connections of their own, opened and closed often
        while not stop.is_set():
            mine.counter("busy").incr()
            mine.counter("busy").get()
            mine.close()

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for thread in threads:
        thread.start()
    hung = failed = 0
    try:
        for _ in range(200):
            if hung >= 3:  # failed already: stay bounded in time
                break
            pid = os.fork()
            if pid == 0:  # the child: one call, then leave without any cleanup
                try:
                    counter.incr()
                    os._exit(0)
                except BaseException:
                    os._exit(1)
            deadline = time.monotonic() + 3
            while True:
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    failed += os.waitstatus_to_exitcode(status) != 0
                    break
                if time.monotonic() > deadline:
                    os.kill(pid, signal.SIGKILL)
                    os.waitpid(pid, 0)
                    hung += 1
                    break
                time.sleep(0.001)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert (hung, failed) == (0, 0), f"{hung} children hung, {failed} failed"
    assert counter.get() == 201
    assert other.get() > 0
    store.close()


def test_fork_from_user_code_run_inside_a_sqlite_call_does_not_wait_for_itself():
    """User code (a method in SQLite's locked path) runs outside the gate: a fork from it
    neither waits for its own thread nor leaves the gate closed."""
    from sharedstate.backends.forkgate import FORK_WAIT, GATE

    with GATE:
        with GATE.outside:
            started = time.monotonic()
            pid = os.fork()
            if pid == 0:
                with GATE:  # the child's gate is open
                    pass
                os._exit(0)
            assert time.monotonic() - started < FORK_WAIT / 5
            assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
    assert not GATE.inside and not GATE.forking


# -- item: Redis persistence -----------------------------------------------------------------
def test_redis_without_aof_warns_once_per_process(monkeypatch):
    import warnings

    from sharedstate.backends import redis_calls as redis_backend

    without = _started(lambda: redis_server(free_port(), "--appendonly", "no"))
    with_aof = _started(lambda: redis_server(free_port()))  # appendonly yes
    try:
        monkeypatch.setattr(redis_backend, "persistence_checked", False)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            backend = _redis_backend(with_aof.port)
            assert backend.counter_add("c", 1) == 1
            backend.close()
        assert not [w for w in caught if w.category is redis_backend.RedisPersistenceWarning]
        monkeypatch.setattr(redis_backend, "persistence_checked", False)
        with pytest.warns(redis_backend.RedisPersistenceWarning, match="appendonly"):
            first = _redis_backend(without.port)
            assert first.counter_add("c", 1) == 1
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a second warning would raise here
            second = _redis_backend(without.port)
            assert second.counter_add("c", 1) == 2
        first.close()
        second.close()
    finally:
        without.stop()
        with_aof.stop()


@pytest.mark.parametrize("server", ["redis", "postgresql"])
def test_a_read_cut_short_by_the_deadline_names_what_the_call_waited_on(server, request):
    """A lock acquire whose read of the lock is still unanswered at its deadline (the
    server's replies held back) raises the step's timeout, naming the lock and saying
    that nothing happened, not the store's bare 'did not answer'. Seen on PostgreSQL when
    a contender's last poll of a held lock started a moment before its deadline."""
    import sharedstate
    from sharedstate.errors import StoreTimeoutError

    from .proxies import HoldingProxy, proxy_in_front

    target = request.getfixturevalue("redis_url" if server == "redis" else "postgres_url")
    with proxy_in_front(target, HoldingProxy, default_port=6379 if server == "redis" else 5432) as (url, proxy):
        url = with_query(url, f"prefix=d{uuid.uuid4().hex[:8]}-")
        with sharedstate.connect(url) as store:
            assert store.counter("warm").incr() == 1  # connected, schema made
            timer = proxy.hold_for(1.5)
            try:
                started = time.monotonic()
                with pytest.raises(StoreTimeoutError) as raised:
                    store.lock("nightly-job", ttl=5).acquire(timeout=0.3)
                took = time.monotonic() - started
            finally:
                timer.join()
    assert took < 0.3 * 1.1 + 0.05, f"the acquire raised after {took:.2f} s (timeout 0.3 s)"
    message = str(raised.value)
    assert "nightly-job" in message, message
    assert "did not take effect" in message, message
