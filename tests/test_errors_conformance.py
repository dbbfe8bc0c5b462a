"""Bad input gets the right error on every backend: one family, precise, nothing changed.

Each case here once escaped as a driver's exception, a wrong error class, or worse a wrong
value (a counter past 2**63: SQLite turned to a float and returned one value twice,
memcached wrapped around to a negative number).
"""

from __future__ import annotations

import threading

import pytest

import sharedstate
from sharedstate import CounterOverflowError, InvalidNameError, SerializationError
from sharedstate.names import check_name


class Named:
    def __init__(self, name: str) -> None:
        self.name = name
        self.visits = 0

    def visit(self) -> int:
        self.visits += 1
        return self.visits

    def rename(self, name: str) -> None:
        self.name = name


class Tree:
    def __init__(self) -> None:
        self.children: list = []

    def grow(self) -> int:
        self.children.append(self.children)  # a list inside itself
        return len(self.children)

    def link(self) -> None:
        node: dict = {"id": 1}
        node["parent"] = {"child": node}
        self.children = [node]


# -- state the JSON codec cannot store: named, nothing stored ----------------------------------
def test_lone_surrogate_in_state_is_refused_naming_the_attribute(store):
    guest = store.object("guest", Named, "ann")
    assert guest.visit() == 1
    with pytest.raises(SerializationError, match=r"attribute 'name'.*lone surrogate") as caught:
        guest.rename("b\udcffob")  # as os.fsdecode makes of a non-UTF-8 file name
    assert caught.value.attribute == "name"
    assert guest.name == "ann" and guest.visit() == 2
    with pytest.raises(SerializationError) as first_write:
        store.object("ghost", Named, "\ud800").visit()
    assert first_write.value.attribute == "name"
    assert store.inspect("ghost") is None


@pytest.mark.parametrize("method, where", [("grow", r"\['children'\]\[0\]"), ("link", "parent")])
def test_self_referencing_state_is_refused_naming_the_attribute(store, method, where):
    tree = store.object("tree", Tree)
    assert tree.children == []
    with pytest.raises(SerializationError, match=f"attribute 'children'.*contains itself.*{where}") as caught:
        getattr(tree, method)()
    assert caught.value.attribute == "children"
    assert tree.children == []


def test_pickle_codec_stores_what_json_cannot(store_url):
    with sharedstate.connect(store_url, codec="pickle", secret_key="k" * 32) as store:
        tree = store.object("tree", Tree)
        assert tree.grow() == 1
        guest = store.object("guest", Named, "b\udcffob")
        assert guest.visit() == 1 and guest.name == "b\udcffob"


# -- names -------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["a\x00b", "b\udcffob", "", 7, None])
def test_check_name_refuses_what_some_store_cannot_hold(name):
    with pytest.raises(InvalidNameError) as caught:
        check_name(name)
    assert isinstance(caught.value, ValueError)  # as Store's own check of names raised
    assert check_name("any name, ünïcode, spaces: fine") == "any name, ünïcode, spaces: fine"


@pytest.mark.parametrize("name", ["a\x00b", "b\udcffob"])
def test_name_no_store_can_hold_is_refused_on_every_backend(store, name):
    """A lone surrogate escaped as a raw UnicodeEncodeError on four backends and worked on
    two; a NUL worked everywhere but PostgreSQL. One rule for all stores, refused at once."""
    with pytest.raises(InvalidNameError, match="NUL|surrogate"):
        store.counter(name).incr()
    with pytest.raises(InvalidNameError, match="NUL|surrogate"):
        store.object(name, Named, "x")


# -- counters stay exact or refuse -------------------------------------------------------------
def test_counter_refuses_to_leave_its_range(store):
    low, high = store.backend.counter_range
    counter = store.counter("c")
    counter.set(high - 1)
    assert counter.incr() == high
    with pytest.raises(CounterOverflowError, match=r"'.*c:c'.*out of range") as caught:
        counter.incr()
    assert str(high) in str(caught.value)
    assert counter.get() == high  # nothing changed
    with pytest.raises(CounterOverflowError):
        counter.incr(high)
    assert counter.decr() == high - 1
    counter.set(low + 1)
    assert counter.decr() == low
    with pytest.raises(CounterOverflowError):
        counter.decr()
    with pytest.raises(CounterOverflowError):
        counter.incr(low)
    assert counter.get() == low
    assert counter.incr(high) == low + high  # -1: a big amount that lands in range is fine


def test_counter_refuses_values_and_amounts_out_of_range(store):
    low, high = store.backend.counter_range
    counter = store.counter("c")
    for value in (high + 1, low - 1, 2**64, -(2**100)):
        with pytest.raises(CounterOverflowError):
            counter.set(value)
        with pytest.raises(CounterOverflowError):
            counter.incr(value)
    assert counter.get() == 0
    assert store.counter("fresh").incr(high) == high  # the first add creates it
    with pytest.raises(CounterOverflowError):
        store.counter("fresh").incr()
    assert store.counter("fresh").get() == high


def test_counter_never_returns_one_value_twice_near_its_limit(store):
    """SQLite's overflow to a float returned 2**63 again and again; memcached wrapped."""
    low, high = store.backend.counter_range
    counter = store.counter("c")
    counter.set(high - 3)
    seen = []
    for _ in range(6):
        try:
            seen.append(counter.incr())
        except CounterOverflowError:
            seen.append(None)
    assert seen == [high - 2, high - 1, high, None, None, None]
    assert counter.get() == high


def test_concurrent_increments_near_the_limit_succeed_exactly_as_far_as_they_fit(store):
    """Combined increments: a batch whose sum would leave the range used to fail every
    call in it, so fewer than the increments that fit succeeded."""
    low, high = store.backend.counter_range
    counter = store.counter("c")
    counter.set(high - 200)
    values: list[int] = []
    refused: list[int] = []

    def run() -> None:
        for _ in range(40):
            try:
                values.append(counter.incr())
            except CounterOverflowError:
                refused.append(1)

    threads = [threading.Thread(target=run) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(values) == list(range(high - 199, high + 1))
    assert len(refused) == 16 * 40 - 200
    assert counter.get() == high


def test_a_batch_mixing_signs_near_the_limit_hands_out_only_values_in_range(store):
    low, high = store.backend.counter_range
    counter = store.counter("c")
    counter.set(high - 5)
    values: list[int] = []
    added: list[int] = []
    barrier = threading.Barrier(8)

    def run(amount: int) -> None:
        barrier.wait()
        for _ in range(20):
            try:
                values.append(counter.incr(amount))
                added.append(amount)
            except CounterOverflowError:
                pass

    threads = [threading.Thread(target=run, args=(a,)) for a in (3, -2, 4, -1, 3, -2, 4, -1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert all(low <= v <= high for v in values)
    assert counter.get() == high - 5 + sum(added)
