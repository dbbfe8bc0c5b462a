"""Lost replies through the blocking store: the engine resolves them and builds on.

A proxy (``proxies.py``) loses the reply of one write that took effect; other clients
write after it before this client gets to ask. The call must return its own result, and
the next call must build on the latest state, not on the state its own lost write left:
that would write over the others' writes with a stale state (a lost update, first seen
under kill -9 of a Redis server in ``tests/faults``)."""

from __future__ import annotations

import pytest

import sharedstate

from .models import SomeObj
from .proxies import dropping_proxy


@pytest.fixture
def server_url(store_url: str, backend_name: str) -> str:
    if backend_name in ("memory", "sqlite"):
        pytest.skip("an embedded store never loses a reply")
    return store_url


def test_a_lost_write_found_under_later_writes_is_not_built_on_again(server_url):
    direct = sharedstate.connect(server_url)
    other = direct.object("lost_then_more", SomeObj, 0)
    with dropping_proxy(server_url) as (url, proxy):
        store = sharedstate.connect(url)
        obj = store.object("lost_then_more", SomeObj, 0)
        assert obj.query() == 1
        proxy.drop(meanwhile=lambda: [other.query() for _ in range(3)])
        assert obj.query() == 2  # its own write's result, found by its call id
        assert proxy.dropped == 1
        assert obj.query() == 6  # after the others' 3, 4 and 5
        assert other.query() == 7
        store.close()
    direct.close()


def test_lost_writes_with_others_writing_between_keep_every_value_once(server_url):
    """The same, many times over: every value handed out exactly once."""
    direct = sharedstate.connect(server_url)
    other = direct.object("lost_many", SomeObj, 0)
    values: list[int] = []
    with dropping_proxy(server_url) as (url, proxy):
        store = sharedstate.connect(url)
        obj = store.object("lost_many", SomeObj, 0)
        for i in range(40):
            if i % 4 == 1:
                proxy.drop(meanwhile=lambda n=i % 3 + 1: values.extend(other.query() for _ in range(n)))
            values.append(obj.query())
        store.close()
    assert sorted(values) == list(range(1, len(values) + 1))
    direct.close()
