"""Bad input and bad luck: each gets a clear SharedStateError and loses nothing."""

from __future__ import annotations

import multiprocessing
import os
import pickle
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

import sharedstate
from sharedstate import (
    BackendUnavailableError,
    ConfigurationError,
    CorruptStoreError,
    InvalidURLError,
    SharedStateError,
    SignatureError,
)

from .models import Holder, SomeObj, YieldingObj

ROOT = Path(__file__).resolve().parent.parent


# -- killed processes ------------------------------------------------------------------


def _hammer(url: str, log_path: str) -> None:
    """Calls query() forever, logging each value that returned (flushed at once)."""
    obj = sharedstate.connect(url).object("global_obj", YieldingObj, 0)
    with open(log_path, "a", buffering=1) as log:
        while True:
            log.write(f"{obj.query()}\n")


def test_sigkill_mid_calls_loses_nothing_and_blocks_nothing(multiprocess_url, tmp_path):
    context = multiprocessing.get_context("fork")
    logs = [tmp_path / f"worker{i}.log" for i in range(4)]
    workers = [context.Process(target=_hammer, args=(multiprocess_url, str(log))) for log in logs]
    for worker in workers:
        worker.start()
    deadline = time.monotonic() + 20
    while sum(log.stat().st_size if log.exists() else 0 for log in logs) < 4000:
        assert time.monotonic() < deadline, "workers made no progress"
        time.sleep(0.05)
    for worker in workers:  # killed wherever they are: inside a call, mid-commit, ...
        os.kill(worker.pid, signal.SIGKILL)
    for worker in workers:
        worker.join()

    returned = [int(line) for log in logs for line in log.read_text().split()]
    assert len(returned) == len(set(returned)), "a value was handed out twice"
    with sharedstate.connect(multiprocess_url) as store:
        obj = store.object("global_obj", YieldingObj, 0)
        started = time.monotonic()
        final = obj.query()  # usable at once: no stuck lock, no torn state
        assert time.monotonic() - started < 2
        # every call that returned is kept; calls killed mid-way may or may not count
        assert final >= max(returned) + 1
        assert final <= len(returned) + len(workers) + 1


def _hold_lock_then_die(url: str, ready) -> None:
    store = sharedstate.connect(url)
    store.lock("job", ttl=1.0).acquire()
    ready.set()
    time.sleep(60)


def test_lock_of_a_killed_holder_is_released_when_its_lease_ends(multiprocess_url):
    context = multiprocessing.get_context("fork")
    ready = context.Event()
    holder = context.Process(target=_hold_lock_then_die, args=(multiprocess_url, ready))
    holder.start()
    assert ready.wait(20)
    os.kill(holder.pid, signal.SIGKILL)
    holder.join()
    with sharedstate.connect(multiprocess_url) as store:
        started = time.monotonic()
        lease = store.lock("job", ttl=5).acquire(timeout=5)
        assert 0.3 < time.monotonic() - started < 3
        assert lease.token == 2
        lease.release()


# -- bad URLs and options ---------------------------------------------------------------


@pytest.mark.parametrize(
    "url, message",
    [
        ("state.db", "not a store URL"),
        ("ftp://host/x", "unknown store URL scheme 'ftp'"),
        ("sqlite://host/x.db", "host part"),
        ("sqlite:///", "names no file"),
        ("sqlite:///:memory:", "use memory://"),
        ("sqlite:///x.db?bogus=1", "unknown query parameter"),
        ("sqlite:///x.db?timeout=soon", "timeout"),
        ("sqlite:///x.db?synchronous=sometimes", "synchronous"),
        ("memory://?timeout=1&timeout=2", "given twice"),
    ],
)
def test_bad_urls_are_refused_at_once(url, message):
    with pytest.raises(InvalidURLError, match=message):
        sharedstate.connect(url)


def test_pickle_needs_a_key():
    with pytest.raises(ConfigurationError, match="secret_key"):
        sharedstate.connect("memory://", codec="pickle")
    with pytest.raises(ConfigurationError, match="unknown codec"):
        sharedstate.connect("memory://", codec="yaml")


@pytest.mark.parametrize("path", ["/proc/sharedstate/state.db", "/etc/hostname/state.db"])
def test_unwritable_path(path):
    store = sharedstate.connect(f"sqlite:///{path}")  # lazy: nothing opened yet
    with pytest.raises(BackendUnavailableError, match="cannot open the SQLite database"):
        store.object("o", SomeObj, 0).query()


def test_corrupt_database_file_is_reported_and_left_alone(tmp_path):
    path = tmp_path / "state.db"
    garbage = b"this is not a database, but somebody's data" * 100
    path.write_bytes(garbage)
    store = sharedstate.connect(f"sqlite:///{path}")
    with pytest.raises(CorruptStoreError, match="damaged or is not a SQLite database"):
        store.object("o", SomeObj, 0).query()
    assert path.read_bytes() == garbage


def _overwrite_record(db: Path, name: str, data: bytes) -> None:
    with sqlite3.connect(db) as connection:
        connection.execute(
            "UPDATE sharedstate_records SET data = ?, version = version + 1 WHERE key = ?",
            (data, f"o:{name}"),
        )


def test_corrupt_record_is_a_clear_error(tmp_path):
    db = tmp_path / "state.db"
    store = sharedstate.connect(f"sqlite:///{db}")
    obj = store.object("o", SomeObj, 0)
    obj.query()
    _overwrite_record(db, "o", b"{not json")
    with pytest.raises(CorruptStoreError, match="not valid JSON"):
        obj.query()
    with pytest.raises(CorruptStoreError):
        sharedstate.connect(f"sqlite:///{db}").object("o", SomeObj, 0).param  # noqa: B018


class _Exploit:
    """Unpickling this would create a file: the proof that a forged entry ran code."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_tampered_pickle_entry_is_refused_not_unpickled(tmp_path):
    db, marker = tmp_path / "state.db", tmp_path / "pwned"
    store = sharedstate.connect(f"sqlite:///{db}", codec="pickle", secret_key="s3cret")
    holder = store.object("h", Holder)
    holder.put(object.__new__(SomeObj))  # pickle stores what JSON cannot
    assert isinstance(holder.value, SomeObj)

    forged = pickle.dumps({"c": "tests.models:Holder", "s": {"value": _Exploit(str(marker))}})
    from sharedstate.codecs import PICKLE_MAGIC

    _overwrite_record(db, "h", PICKLE_MAGIC + b"\x00" * 32 + forged)
    fresh = sharedstate.connect(f"sqlite:///{db}", codec="pickle", secret_key="s3cret")
    with pytest.raises(SignatureError, match="refused, not unpickled"):
        fresh.object("h", Holder).value  # noqa: B018
    wrong_key = sharedstate.connect(f"sqlite:///{db}", codec="pickle", secret_key="other")
    with pytest.raises(SignatureError):
        wrong_key.object("h", Holder).put(1)
    assert not marker.exists()


def test_json_store_refuses_pickle_entries(tmp_path):
    db = tmp_path / "state.db"
    signed = sharedstate.connect(f"sqlite:///{db}", codec="pickle", secret_key=b"k")
    signed.object("h", Holder).put(5)
    with pytest.raises(ConfigurationError, match="pickle codec"):
        sharedstate.connect(f"sqlite:///{db}").object("h", Holder).value  # noqa: B018
    # the pickle codec reads JSON entries, so a store can move to it
    plain = sharedstate.connect(f"sqlite:///{db}")
    plain.object("j", Holder).put(7)
    assert signed.object("j", Holder).value == 7


def test_every_error_is_a_sharedstate_error():
    for name in sharedstate.errors.__all__:
        assert issubclass(getattr(sharedstate, name), SharedStateError)


def test_credentials_never_appear_in_messages():
    from sharedstate.backends import redact_url

    assert redact_url("redis://user:hunter2@host:6379/0") == "redis://user:***@host:6379/0"
    assert "hunter2" not in redact_url("manager://h:1?authkey=hunter2")
    with pytest.raises(InvalidURLError) as caught:
        sharedstate.connect("nosuch://user:hunter2@host/")
    assert "hunter2" not in str(caught.value)


# -- many processes starting at once (diskcache #85) ------------------------------------

STARTER = """
import sys, sharedstate
sys.path.insert(0, {root!r})
from tests.models import SomeObj
store = sharedstate.connect(sys.argv[1])
print(store.counter("started").incr())
"""


def test_many_processes_create_a_fresh_database_at_once(tmp_path):
    url = f"sqlite:///{tmp_path}/fresh.db"
    script = STARTER.format(root=str(ROOT))
    starters = [
        subprocess.Popen([sys.executable, "-c", script, url], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(24)
    ]
    outputs = [starter.communicate(timeout=120) for starter in starters]
    errors = [err.decode() for _, err in outputs if err.strip()]
    assert errors == []
    assert sorted(int(out) for out, _ in outputs) == list(range(1, 25))
