"""The parts of a record (``backends/base.py``: ``Parts``, ``PartsWrite``), on every
backend that keeps them: written with the head in one atomic step, read back as the
changes after a version, in the same snapshot as the head.

Every scenario runs twice per backend: on the sync backend, and on its async twin
(``open_async_backend``) awaited on an event loop of the test's own (``OnLoop``)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

import sharedstate
from sharedstate.aio.backends import open_async_backend
from sharedstate.backends.base import KEEP_REMOVED, Parts, PartsWrite
from sharedstate.errors import SharedStateError, request_sent

from .conftest import KEEPS_PARTS
from .proxies import dropping_proxy


class OnLoop:
    """The async backend over ``sync``, its requests awaited one by one on a loop of its
    own: the scenarios below, written against the sync interface, run through it as they are."""

    def __init__(self, sync: Any) -> None:
        self.keeps_parts = sync.keeps_parts
        self._runner = asyncio.Runner()
        self._async = self._runner.run(self._open(sync))

    @staticmethod
    async def _open(sync: Any) -> Any:
        return open_async_backend(sync)  # made inside the loop it belongs to

    def load(self, *args: Any) -> Any:
        return self._runner.run(self._async.load(*args))

    def compare_and_set(self, *args: Any) -> Any:
        return self._runner.run(self._async.compare_and_set(*args))

    def delete(self, key: str) -> Any:
        return self._runner.run(self._async.delete(key))

    def keys(self, prefix: str) -> Any:
        return self._runner.run(self._async.keys(prefix))

    def close(self) -> None:
        self._runner.run(self._async.aclose())
        self._runner.close()


@pytest.fixture(params=["sync", "async"])
def backend(parts_base_url: str, request: pytest.FixtureRequest):
    with sharedstate.connect(parts_base_url) as store:
        assert store.backend.keeps_parts
        if request.param == "sync":
            yield store.backend
            return
        on_loop = OnLoop(store.backend)
        try:
            yield on_loop
        finally:
            on_loop.close()


def test_the_backends_that_keep_no_parts_say_so(backend_base_url):
    with sharedstate.connect(backend_base_url) as store:
        assert store.backend.keeps_parts == (backend_base_url.split("://")[0] in KEEPS_PARTS)


@pytest.fixture
def key() -> str:
    return f"parts-{uuid.uuid4().hex[:12]}"


def _write(backend, key, expected, head, changed, reset=False):
    ok, record = backend.compare_and_set(key, expected, head, PartsWrite(changed, reset))
    assert ok, record
    return record


def test_a_full_load_finds_every_live_part_and_no_removed_one(backend, key):
    _write(backend, key, None, b"h1", {"a": b"1", "b": b"2", "c": b"3"})
    _write(backend, key, 1, b"h2", {"b": None, "d": b"4"})
    record = backend.load(key, 0)
    assert (record.version, record.data) == (2, b"h2")
    assert record.parts == Parts(0, {"a": b"1", "c": b"3", "d": b"4"}, ())


def test_a_load_since_a_version_finds_what_changed_after_it(backend, key):
    _write(backend, key, None, b"h1", {"a": b"1", "b": b"2", "c": b"3"})
    _write(backend, key, 1, b"h2", {"a": b"10"})
    _write(backend, key, 2, b"h3", {"b": None, "e": b"5"})
    _write(backend, key, 3, b"h4", {})  # a head-only write
    since_1 = backend.load(key, 1).parts
    assert since_1.changed == {"a": b"10", "e": b"5"} and since_1.removed == ("b",)
    since_2 = backend.load(key, 2).parts
    assert since_2.changed == {"e": b"5"} and since_2.removed == ("b",)
    since_3 = backend.load(key, 3)
    assert since_3.parts == Parts(3, {}, ()) and since_3.data == b"h4"
    assert backend.load(key).parts is None  # not asked for


def test_a_part_written_again_after_its_removal_is_live(backend, key):
    _write(backend, key, None, b"h1", {"a": b"1"})
    _write(backend, key, 1, b"h2", {"a": None})
    _write(backend, key, 2, b"h3", {"a": b"again"})
    assert backend.load(key, 1).parts == Parts(1, {"a": b"again"}, ())
    assert backend.load(key, 0).parts.changed == {"a": b"again"}


def test_a_failed_compare_and_set_writes_neither_head_nor_parts(backend, key):
    _write(backend, key, None, b"h1", {"a": b"1"})
    ok, current = backend.compare_and_set(key, 7, b"other", PartsWrite({"a": b"x", "z": b"y"}))
    assert not ok and (current.version, current.data) == (1, b"h1")
    ok, current = backend.compare_and_set(key, None, b"other", PartsWrite({"z": b"y"}))
    assert not ok and current.version == 1
    assert backend.load(key, 0).parts.changed == {"a": b"1"}


def test_a_reset_replaces_every_part(backend, key):
    _write(backend, key, None, b"h1", {"a": b"1", "b": b"2"})
    _write(backend, key, 1, b"h2", {"c": b"3", "gone": None}, reset=True)
    assert backend.load(key, 0).parts == Parts(0, {"c": b"3"}, ())


def test_a_write_without_parts_leaves_them(backend, key):
    _write(backend, key, None, b"h1", {"a": b"1"})
    ok, _ = backend.compare_and_set(key, 1, b"h2")
    assert ok
    record = backend.load(key, 0)
    assert (record.version, record.data, record.parts.changed) == (2, b"h2", {"a": b"1"})


def test_delete_removes_the_parts_too(backend, key):
    _write(backend, key, None, b"h1", {"a": b"1", "b": b"2"})
    assert backend.delete(key)
    assert backend.load(key, 0) is None
    _write(backend, key, None, b"new", {"c": b"3"})
    assert backend.load(key, 0).parts.changed == {"c": b"3"}


def test_the_parts_are_no_keys_of_their_own(backend, key):
    _write(backend, key, None, b"h1", {"a": b"1", "b": b"2"})
    _write(backend, key, 1, b"h2", {"b": None})  # a tombstone too
    assert list(backend.keys(key)) == [key]


def test_part_names_and_data_of_any_kind_round_trip(backend, key):
    odd = {
        "k:\u00e9t\u00e9\n": bytes(range(256)),
        'k:["tuple",1]': b"",
        "k:" + "x" * 300: b"\x00\xff" * 5000,
        "a:with space,comma|bar": b"{}",
    }
    _write(backend, key, None, b"\x00S|\nhead", odd)
    assert backend.load(key, 0).parts.changed == odd


def test_many_parts_in_one_write(backend, key):
    many = {f"k:{i:06d}": f"value {i}".encode() for i in range(5000)}
    _write(backend, key, None, b"h1", many)
    _write(backend, key, 1, b"h2", {"k:000007": b"seven"})
    record = backend.load(key, 1)
    assert record.parts == Parts(1, {"k:000007": b"seven"}, ())
    assert len(backend.load(key, 0).parts.changed) == 5000


def test_the_head_is_framed_as_a_compare_and_set_frames_it(backend, key):
    """A server backend keeps a write's call ids in the head (``frames.py``) and sends only
    the new one; a write with parts must store the very bytes a plain one does."""
    plain, parted = f"{key}-plain", f"{key}-parted"
    ids: list[str] = []
    for version in range(20):
        ids = [*ids, f"id{version}"][-16:]
        data = b"\x00S" + ",".join(ids).encode() + b"|owner 5\npayload %d" % version
        expected = version or None
        assert backend.compare_and_set(plain, expected, data)[0]
        assert backend.compare_and_set(parted, expected, data, PartsWrite({"p": b"%d" % version}))[0]
        assert backend.load(parted, 0).data == backend.load(plain).data == data


def test_tombstones_are_purged_once_no_reader_needs_them(parts_base_url, key, monkeypatch):
    """Thousands of writes: on the sync backends only (the async twins send the same), and
    without PostgreSQL's flush per commit (its new connections read PGOPTIONS)."""
    monkeypatch.setenv("PGOPTIONS", "-c synchronous_commit=off")
    with sharedstate.connect(parts_base_url) as store:
        _purged_after_keep_removed(store.backend, key)


def _purged_after_keep_removed(backend, key):
    _write(backend, key, None, b"h1", {"a": b"1", "b": b"2"})
    _write(backend, key, 1, b"h2", {"b": None})
    version = 2
    purged_at = (2 + KEEP_REMOVED + 63) // 64 * 64  # the first purge past the tombstone's time
    while version < purged_at - 1:  # head-only writes, the cheapest, to move the version on
        assert backend.compare_and_set(key, version, b"h")[0]
        version += 1
    assert backend.load(key, 1).parts.removed == ("b",)
    _write(backend, key, version, b"last", {"c": b"3"})
    record = backend.load(key, 1)
    assert record.version == purged_at and record.parts == Parts(1, {"c": b"3"}, ())
    assert backend.load(key, 0).parts.changed == {"a": b"1", "c": b"3"}


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_parts_write_whose_reply_is_lost_is_reported_as_sent(parts_base_url, key, mode):
    """As a compare-and-set's: an error marked ``request_sent`` (the engine then asks the
    store what became of it, by the call id in the head)."""
    if parts_base_url.split("://")[0] in ("memory", "sqlite"):
        pytest.skip("an embedded store never loses a reply")
    with sharedstate.connect(parts_base_url) as direct, dropping_proxy(parts_base_url) as (url, proxy):
        _write(direct.backend, key, None, b"h1", {"a": b"1"})
        with sharedstate.connect(url) as store:
            backend = store.backend if mode == "sync" else OnLoop(store.backend)
            try:
                assert backend.load(key, 0).parts.changed == {"a": b"1"}  # connected by now
                proxy.drop()
                with pytest.raises(SharedStateError) as caught:
                    backend.compare_and_set(key, 1, b"h2", PartsWrite({"a": b"2", "b": None}))
                assert request_sent(caught.value) and proxy.dropped == 1
            finally:
                if isinstance(backend, OnLoop):
                    backend.close()
        record = direct.backend.load(key, 1)  # it took effect, all of it
        assert record.data == b"h2" and record.parts == Parts(1, {"a": b"2"}, ("b",))
