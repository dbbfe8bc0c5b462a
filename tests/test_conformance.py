"""The semantics every backend keeps (API.md), run once per backend URL."""

from __future__ import annotations

import contextvars
import threading
import time
import uuid

import pytest

import sharedstate
from sharedstate import (
    ClassMismatchError,
    LeaseExpiredError,
    SerializationError,
    StoreTimeoutError,
)

from .models import Account, Bag, Everything, Holder, Other, Point, SomeObj, YieldingObj


def test_global_counter_object_counts_and_reads(store):
    obj = store.object("global_obj", SomeObj, 0)
    assert [obj.query() for _ in range(5)] == [1, 2, 3, 4, 5]
    assert obj.param == 5


def test_factory_runs_only_when_nothing_is_stored(store_url):
    with sharedstate.connect(store_url) as first:
        first.object("o", SomeObj, 10).query()
    with sharedstate.connect(store_url) as second:
        # another factory argument: it must not run, the stored state wins
        assert second.object("o", SomeObj, 1000).query() == 12


def test_two_handles_see_one_object(store_url):
    with sharedstate.connect(store_url) as a, sharedstate.connect(store_url) as b:
        one, two = a.object("o", SomeObj, 0), b.object("o", SomeObj, 0)
        assert one.query() == 1
        assert two.query() == 2
        assert one.query() == 3
        assert two.param == 3


def test_exception_changes_nothing_and_reaches_caller_unchanged(store):
    account = store.object("acct", Account, "bob", 10)
    assert account.deposit(5) == 15
    with pytest.raises(ValueError, match="insufficient funds for 100") as caught:
        account.withdraw(100)
    assert type(caught.value) is ValueError
    assert account.balance == 15
    assert account.statement() == [("deposit", 5)]
    assert account.withdraw(5) == 10


def test_call_that_changes_nothing_writes_nothing(store):
    account = store.object("acct", Account)
    account.deposit(3)
    version = store.inspect("acct")["version"]
    assert account.total() == 3
    assert account.statement() == [("deposit", 3)]
    assert store.inspect("acct")["version"] == version
    account.deposit(1)
    assert store.inspect("acct")["version"] == version + 1


def test_stored_name_with_another_class_is_refused(store_url):
    with sharedstate.connect(store_url) as a:
        a.object("thing", SomeObj, 0).query()
        with pytest.raises(ClassMismatchError, match="already declared"):
            a.object("thing", Other)
    with sharedstate.connect(store_url) as b:
        other = b.object("thing", Other)
        with pytest.raises(ClassMismatchError, match="stored with class"):
            other.x  # noqa: B018 - the read itself must raise
    with sharedstate.connect(store_url) as c:
        assert c.object("thing", SomeObj, 0).query() == 2  # untouched


def test_unserializable_state_names_the_attribute_and_stores_nothing(store):
    holder = store.object("h", Holder)
    holder.put(41)
    version = store.inspect("h")["version"]
    with pytest.raises(SerializationError, match="'value'") as caught:
        holder.put(threading.Lock())
    assert caught.value.attribute == "value"
    assert holder.value == 41
    assert store.inspect("h")["version"] == version


def test_json_codec_keeps_the_common_types(store):
    everything = store.object("all", Everything)
    assert everything.touch() == [1, 2, 3, 4]
    fresh = Everything()
    fresh.s.add(4)
    for attribute, expected in vars(fresh).items():
        got = getattr(everything, attribute)
        assert got == expected and type(got) is type(expected), attribute
    assert everything.point == Point(1, 2)


def test_attribute_assignment_is_a_shared_write(store):
    obj = store.object("o", SomeObj, 0)
    obj.param = 41
    assert obj.query() == 42


def test_container_methods_go_through_the_store(store):
    bag = store.object("bag", Bag)
    bag.add("a")
    bag.add("b")
    assert len(bag) == 2
    assert bag[1] == "b"
    assert "a" in bag
    assert list(bag) == ["a", "b"]
    with pytest.raises(TypeError, match="async"):
        bag.fetch()


def test_delete_lets_the_factory_run_again(store):
    obj = store.object("o", SomeObj, 0)
    obj.query()
    obj.query()
    assert ("object", "o") in store.names()
    assert store.delete("o")
    assert ("object", "o") not in store.names()
    assert obj.query() == 1


def test_counter(store):
    hits = store.counter("hits")
    assert hits.get() == 0
    assert hits.incr() == 1
    assert hits.incr(5) == 6
    assert hits.decr(2) == 4
    hits.set(100)
    assert hits.get() == 100
    assert hits.incr() == 101
    with pytest.raises(TypeError):
        hits.incr(1.5)
    assert ("counter", "hits") in store.names()
    assert store.delete("hits")
    assert hits.get() == 0


def test_counter_and_object_names_do_not_collide(store):
    store.counter("n").incr(7)
    assert store.object("n", SomeObj, 0).query() == 1
    assert store.counter("n").get() == 7


def test_lock_tokens_strictly_increase(store):
    tokens = []
    for _ in range(3):
        with store.lock("report", ttl=5) as lease:
            tokens.append(lease.token)
            assert store.lock("report").locked()
    assert tokens == sorted(tokens) and len(set(tokens)) == 3
    assert not store.lock("report").locked()


def test_lock_is_exclusive_until_released(store):
    lock = store.lock("job", ttl=5)
    lease = lock.acquire()
    errors: list[BaseException] = []

    def contender() -> None:
        try:
            store.lock("job", ttl=5).acquire(timeout=0.2)
        except BaseException as exc:
            errors.append(exc)

    worker = threading.Thread(target=contender)
    worker.start()
    worker.join(5)
    assert len(errors) == 1 and isinstance(errors[0], StoreTimeoutError)
    assert "job" in str(errors[0])
    lease.release()
    assert store.lock("job", ttl=5).acquire(timeout=1).token == lease.token + 1


def test_expired_lease_is_taken_over_and_fenced(store):
    first = store.lock("cron", ttl=0.3).acquire()
    time.sleep(0.4)  # the holder "pauses" past its lease
    assert first.expired
    second = store.lock("cron", ttl=5).acquire(timeout=1)
    assert second.token > first.token
    with pytest.raises(LeaseExpiredError, match="granted again"):
        first.release()
    with pytest.raises(LeaseExpiredError):
        first.extend()
    second.release()


def test_lease_extend_and_release_after_unclaimed_expiry(store):
    lease = store.lock("x", ttl=0.3).acquire()
    lease.extend(5)
    time.sleep(0.4)
    assert not lease.expired and store.lock("x").locked()
    lease.release()
    short = store.lock("x", ttl=0.2).acquire()
    time.sleep(0.3)
    with pytest.raises(LeaseExpiredError, match="expired before"):
        short.extend()
    short.release()  # expired but nobody took it: releasing is harmless
    assert not store.lock("x").locked()


def test_with_lock_raises_when_lease_was_lost(store):
    with pytest.raises(LeaseExpiredError):
        with store.lock("slow", ttl=0.2):
            time.sleep(0.3)
            store.lock("slow", ttl=5).acquire(timeout=1)


def test_transaction_is_one_atomic_step(store):
    obj = store.object("global_obj", SomeObj, 0)
    with store.transaction("global_obj") as o:
        assert (o.query(), o.query()) == (1, 2)
    with store.transaction(obj) as o:
        o.query()
    assert obj.param == 3


def test_transaction_that_raises_writes_nothing(store):
    obj = store.object("o", SomeObj, 0)
    obj.query()
    with pytest.raises(RuntimeError):
        with store.transaction(obj) as o:
            o.query()
            raise RuntimeError("abort")
    assert obj.query() == 2


def test_calls_wait_for_a_transaction(store):
    obj = store.object("o", YieldingObj, 0)
    seen = []
    with store.transaction(obj) as o:
        worker = threading.Thread(target=lambda: seen.append(obj.query()))
        worker.start()
        time.sleep(0.2)
        assert seen == []  # waiting for the transaction
        o.query()
        o.query()
    worker.join(5)
    assert seen == [3]


def test_transaction_outliving_its_ttl_is_refused(store):
    obj = store.object("o", SomeObj, 0)
    with pytest.raises(LeaseExpiredError, match="outlived"):
        with store.transaction(obj, ttl=0.2) as o:
            o.query()
            time.sleep(0.3)
            obj.query()  # another caller takes the object over
    assert obj.param == 1


def test_unknown_transaction_name(store):
    with pytest.raises(sharedstate.ConfigurationError, match="store.object"):
        with store.transaction("never-declared"):
            pass


def test_prefixes_separate_apps(backend_base_url):
    sep = "&" if "?" in backend_base_url else "?"
    tag = uuid.uuid4().hex[:8]
    with sharedstate.connect(f"{backend_base_url}{sep}prefix=a{tag}-") as a, sharedstate.connect(
        f"{backend_base_url}{sep}prefix=b{tag}-"
    ) as b:
        a.object("o", SomeObj, 0).query()
        assert b.object("o", SomeObj, 0).query() == 1
        assert [n for _, n in b.names()] == ["o"]


REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("request_id")


class Echo:
    """Reads a context variable inside the method, as a Flask app reads ``g``/``request``."""

    def __init__(self):
        self.calls = 0

    def whoami(self):
        value = self.calls
        time.sleep(0)  # let other threads queue up behind this call
        self.calls = value + 1
        return REQUEST_ID.get()


def test_methods_run_in_their_callers_context(store):
    """Calls combined into another thread's batch still see their own context."""
    echo = store.object("echo", Echo)
    mismatches = []

    def caller(index):
        REQUEST_ID.set(f"request-{index}")
        for _ in range(50):
            got = echo.whoami()
            if got != f"request-{index}":
                mismatches.append((index, got))

    threads = [threading.Thread(target=caller, args=(i,)) for i in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert mismatches == []
    assert echo.calls == 12 * 50
