"""Bad input to one backend or command: the precise error, and never a secret in it.

Tampered Redis records, Redis URLs that redis-py would misread, memcached's item limit and
its authentication, ``sharedstate serve`` given the wrong URL or a public address. The last
test replays every bad input here with secrets in the URL and greps all that a user or a
log would see (messages, reprs, tracebacks with their causes, command output) for them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import Callable, Iterator

import pytest
from click.testing import CliRunner

import sharedstate
from sharedstate import (
    BackendUnavailableError,
    ConfigurationError,
    CorruptStoreError,
    InvalidURLError,
    SharedStateError,
    StateTooLargeError,
)
from sharedstate.cli import main

from .servers import ServerProcess, free_port, memcached_server, port_answers, unavailable

PASSWORD = "pw-" + uuid.uuid4().hex[:10]
SSL_PASSWORD = "sslpw-" + uuid.uuid4().hex[:10]
AUTHKEY = "ak-" + uuid.uuid4().hex[:10]
SECRETS = (PASSWORD, SSL_PASSWORD, AUTHKEY)


class Note:
    def __init__(self, text: str = "") -> None:
        self.text = text

    def write(self, text: str) -> int:
        self.text = text
        return len(text)


def _prefixed(url: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}prefix=b{uuid.uuid4().hex[:8]}-"


# -- Redis: tampered records and counters ------------------------------------------------------
@pytest.fixture
def tampered(redis_url: str) -> Iterator[tuple[sharedstate.Store, Callable[..., None]]]:
    import redis

    raw = redis.Redis.from_url(redis_url)
    with sharedstate.connect(_prefixed(redis_url)) as store:

        def tamper(name: str, *command: object) -> None:
            raw.execute_command(command[0], f"sharedstate:{store.prefix}{name}", *command[1:])

        yield store, tamper
        for key in raw.scan_iter(f"sharedstate:{store.prefix}*"):
            raw.delete(key)
    raw.close()


def test_redis_record_with_a_damaged_version_is_a_corrupt_store(tampered):
    store, tamper = tampered
    note = store.object("note", Note)
    note.write("hello")
    tamper("o:note", "HSET", "v", "not-a-number")
    with pytest.raises(CorruptStoreError, match=r"o:note'.*Redis.*version b'not-a-number'"):
        note.write("again")  # the cached version no longer matches: the script returns it
    with sharedstate.connect(store.url) as fresh:
        with pytest.raises(CorruptStoreError, match="not a whole number"):
            fresh.object("note", Note).text  # noqa: B018 - a plain read loads the record
        tamper("o:note", "DEL")  # as the message says (Store.delete reads the record first)
        assert fresh.object("note", Note).write("new") == 3


def test_redis_counter_that_is_not_a_number_is_a_corrupt_store(tampered):
    store, tamper = tampered
    hits = store.counter("hits")
    hits.incr()
    tamper("c:hits", "SET", "twelve")
    with pytest.raises(CorruptStoreError, match=r"counter '.*c:hits'.*b'twelve'"):
        hits.get()
    with pytest.raises(CorruptStoreError, match=r"counter '.*c:hits'.*not an integer"):
        hits.incr()
    tamper("c:hits", "SET", str(2**64))  # a number, but past what INCRBY takes
    with pytest.raises(CorruptStoreError):
        hits.incr()


# -- Redis URLs --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "url, message",
    [
        ("redis://127.0.0.1:6379/abc", "must be a number"),
        ("redis://127.0.0.1:6379/0/1", "must be a number"),
        ("redis://127.0.0.1:6379/0?ssl_cert_reqs=none", "use rediss://"),
        ("redis://127.0.0.1:6379/0?ssl_ca_certs=/tmp/ca.pem", "use rediss://"),
    ],
)
def test_redis_url_that_redis_py_would_misread_is_refused(url, message):
    with pytest.raises(InvalidURLError, match=message):
        sharedstate.connect(url)


def test_redis_url_with_a_database_number_uses_it():
    assert sharedstate.connect("redis://127.0.0.1:6379/3").backend._settings["db"] == 3


# -- memcached ---------------------------------------------------------------------------------
def test_memcached_state_above_its_item_limit_is_too_large_not_unavailable(memcached_url):
    with sharedstate.connect(_prefixed(memcached_url)) as store:
        note = store.object("note", Note)
        with pytest.raises(StateTooLargeError, match=r"o:note'.*bytes.*-I") as caught:
            note.write("x" * 1_100_000)
        assert not isinstance(caught.value, BackendUnavailableError)
        assert note.text == ""
        assert note.write("fits") == 4  # the connection is still good


def test_memcached_credentials_are_never_sent_to_a_server_without_auth(memcached_url):
    from pymemcache.client.base import Client

    user = "u" + uuid.uuid4().hex[:8]
    url = memcached_url.replace("://", f"://{user}:{PASSWORD}@")
    with sharedstate.connect(_prefixed(url)) as store:
        with pytest.raises(ConfigurationError, match="does not ask for authentication") as caught:
            store.counter("c").incr()
    assert PASSWORD not in str(caught.value)
    host, port = memcached_url.split("//")[1].split(":")
    client = Client((host, int(port)))
    try:
        assert client.get(user) is None  # before the fix: b"<user> <password>", for anyone
    finally:
        client.close()


@pytest.fixture(scope="module")
def memcached_with_auth() -> Iterator[ServerProcess]:
    # readable by memcached's own user (it drops root), so not under pytest's private tmp
    handle, authfile = tempfile.mkstemp(prefix="sharedstate-mc-auth-")
    with os.fdopen(handle, "w") as file:
        file.write(f"alice:{PASSWORD}\n")
    os.chmod(authfile, 0o644)
    try:
        server = memcached_server(free_port(), "-Y", authfile).start()
    except (FileNotFoundError, RuntimeError) as exc:
        os.unlink(authfile)
        unavailable(str(exc))
        raise
    yield server
    server.stop()
    os.unlink(authfile)


def test_memcached_with_auth_takes_the_right_password_only(memcached_with_auth):
    url = f"memcached://alice:{PASSWORD}@127.0.0.1:{memcached_with_auth.port}"
    with sharedstate.connect(_prefixed(url)) as store:
        assert store.counter("c").incr() == 1
    wrong = f"memcached://alice:wrong-{PASSWORD}@127.0.0.1:{memcached_with_auth.port}"
    with sharedstate.connect(wrong) as store:
        with pytest.raises(BackendUnavailableError, match="refused the credentials") as caught:
            store.counter("c").incr()
    assert PASSWORD not in str(caught.value)


# -- sharedstate serve -------------------------------------------------------------------------
@pytest.mark.parametrize(
    "url", [f"redis://:{PASSWORD}@127.0.0.1:6379/0", "postgresql://postgres@127.0.0.1/test"]
)
def test_serve_says_it_serves_only_manager_urls(url):
    result = CliRunner().invoke(main, ["serve", url])
    assert result.exit_code == 2
    assert "manager:// stores only" in result.output
    assert "has no authkey" not in result.output
    assert PASSWORD not in result.output


@pytest.mark.parametrize("host", ["0.0.0.0", "[::]"])
def test_serve_refuses_to_listen_beyond_loopback_unless_allowed(host):
    result = CliRunner().invoke(main, ["serve", f"manager://{host}:{free_port()}?authkey={AUTHKEY}"])
    assert result.exit_code == 2
    assert "--allow-remote" in result.output and "reachable from other hosts" in result.output
    assert AUTHKEY not in result.output


def test_serve_with_allow_remote_listens_everywhere_and_warns_loudly():
    port = free_port()
    url = f"manager://0.0.0.0:{port}?authkey={AUTHKEY}"
    command = [sys.executable, "-m", "sharedstate", "serve", "--allow-remote", url]
    server = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 15
        while not port_answers(port) and time.monotonic() < deadline:
            assert server.poll() is None, server.stderr.read() if server.stderr else ""
            time.sleep(0.05)
        with sharedstate.connect(f"manager://127.0.0.1:{port}?authkey={AUTHKEY}") as store:
            assert store.counter("c").incr() == 1
    finally:
        server.terminate()
        _, stderr = server.communicate(timeout=10)
    assert "WARNING: serving on every interface" in stderr
    assert AUTHKEY not in stderr


# -- no secret in anything a user or a log sees ------------------------------------------------
def _bad_inputs(closed: int, memcached_url: str) -> list[tuple[str, Callable[[sharedstate.Store], object]]]:
    """(URL with secrets, what to do with it) for each bad input of this module and more."""
    incr = lambda store: store.counter("c").incr()  # noqa: E731
    memcached = memcached_url.split("//")[1]
    pg = f"postgresql://postgres:{PASSWORD}@127.0.0.1"
    return [
        (f"redis://u:{PASSWORD}@127.0.0.1:{closed}/0", incr),
        (f"redis://:{PASSWORD}@127.0.0.1:6379/abc", incr),
        (f"redis://:{PASSWORD}@127.0.0.1:6379/0?ssl_keyfile=/k&ssl_certfile=/c", incr),
        (f"rediss://:{PASSWORD}@127.0.0.1:{closed}/0?ssl_cert_reqs=none", incr),
        (f"redis://:{PASSWORD}@127.0.0.1:6379/0?timeout=soon", incr),
        (f"{pg}:{closed}/test?sslpassword={SSL_PASSWORD}", incr),
        (f"{pg}:5432/test?sslmode=bogus&sslpassword={SSL_PASSWORD}", incr),
        (f"{pg}:5432/test?sslpassword={SSL_PASSWORD}&table=no-such-table!", incr),
        (f"{pg}:5432/test?sslpassword={SSL_PASSWORD}&unknown=1", incr),
        (f"memcached://alice:{PASSWORD}@{memcached}", incr),
        (f"memcached://alice:{PASSWORD}@127.0.0.1:{closed}", incr),
        (f"manager://127.0.0.1:{closed}?authkey={AUTHKEY}", incr),
        (f"manager://127.0.0.1?authkey={AUTHKEY}", incr),
        (f"sqlite://u:{PASSWORD}@host/x.db", incr),
        (f"redis//:{PASSWORD}@127.0.0.1:6379/0", incr),
    ]


def test_no_secret_in_any_message_repr_or_traceback(memcached_url):
    closed = free_port()
    seen: list[str] = []
    for url, action in _bad_inputs(closed, memcached_url):
        try:
            with sharedstate.connect(url, codec="pickle", secret_key=AUTHKEY) as store:
                seen.append(repr(store))
                action(store)
        except SharedStateError as exc:
            seen.append("".join(traceback.format_exception(exc)))
        else:
            pytest.fail(f"{url} did not fail")
    runner = CliRunner()
    outputs = [
        runner.invoke(main, ["serve", f"redis://:{PASSWORD}@127.0.0.1:6379/0"]),
        runner.invoke(main, ["serve", f"manager://0.0.0.0:{closed}?authkey={AUTHKEY}"]),
        runner.invoke(main, ["bench", "--url", f"postgresql://postgres:{PASSWORD}@127.0.0.1:{closed}/t"
                             f"?sslpassword={SSL_PASSWORD}", "--seconds", "0.1", "--rounds", "1",
                             "--processes", "1", "--threads", "1"]),
    ]  # fmt: skip
    for result in outputs:
        assert result.exit_code != 0
        seen.append(result.output + "".join(traceback.format_exception(result.exception)))
    leaks = [text for text in seen if any(secret in text for secret in SECRETS)]
    assert not leaks, leaks[0]
    assert len(seen) > len(outputs) + 10
