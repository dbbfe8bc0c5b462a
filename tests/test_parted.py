"""Large objects stored as a head and parts (``parted.py``), on every backend that keeps
parts: what each call writes, what a stale process reads, and that every guarantee of a
one-record object holds (exceptions change nothing, reads are copies, transactions,
concurrency across processes, lost replies)."""

from __future__ import annotations

import json
import time

import pytest

import sharedstate
from sharedstate.parted import PART_FROM, is_parted

from .concurrency import assert_exact_and_linearizable, run_processes, run_threads
from .conftest import with_prefix
from .proxies import dropping_proxy

ENTRIES = 600  # ~20 KB of entries: well past PART_FROM


class Table:
    """A rate-limit table: a large dict of ints, a counter, a small list."""

    def __init__(self, entries: int = ENTRIES) -> None:
        self.count = 0
        self.hits = {f"ip{i:05d}": i for i in range(entries)}
        self.log: list[str] = []

    def bump(self) -> int:
        self.count += 1
        return self.count

    def hit(self, key: str) -> int:
        time.sleep(0)  # yields between the read and the write
        self.hits[key] = self.hits.get(key, 0) + 1
        self.count += 1
        return self.count

    def forget(self, key: str) -> None:
        del self.hits[key]

    def hit_below(self, key: str, limit: int) -> None:
        """Changes the dict or nothing, depending on the state it runs on."""
        if self.count < limit:
            self.hit(key)

    def several_then_fail(self, keys: list[str]) -> None:
        for key in keys:
            self.hits[key] = -1
        self.hits.pop("ip00000", None)
        self.hits["brand-new"] = 5
        self.count += 1000
        self.log.append("never")
        raise ValueError("refused")

    def replace(self, entries: int) -> None:
        self.hits = {f"new{i:05d}": i for i in range(entries)}

    def clear(self) -> None:
        self.hits.clear()

    def put_list(self, key: str) -> None:
        self.hits[key] = []

    def append_to(self, key: str, value: int) -> None:
        self.hits[key].append(value)

    def list_at_count(self) -> None:
        """Which key it spoils the dict with depends on the state it runs on."""
        self.hits[f"x{self.count}"] = []

    def mark_and_grow(self) -> None:
        """A key that depends on the state, and a new layout (the log grows large)."""
        self.hits[f"x{self.count}"] = 1
        self.log = ["y" * 100] * 100

    def remember(self, items: list[str]) -> list[str]:
        self.log = items
        return self.log

    def get(self, key: str) -> object:
        return self.hits.get(key)

    def summary(self) -> tuple[int, int, int]:
        return len(self.hits), sum(v for v in self.hits.values() if isinstance(v, int)), self.count


@pytest.fixture
def store(parts_base_url):
    url = with_prefix(parts_base_url, f"p{time.monotonic_ns() % 10**9}-")
    with sharedstate.connect(url) as opened:
        yield opened


def _stored(store, name):
    key = store.prefix + "o:" + name
    return key, store.backend.load(key, 0)


def test_a_large_object_is_a_head_and_parts_and_a_small_one_is_one_record(store):
    small = store.object("small", Table, 3)
    big = store.object("big", Table)
    small.bump(), big.bump()
    _, record = _stored(store, "small")
    assert not is_parted(_payload(record.data))
    _, record = _stored(store, "big")
    assert is_parted(_payload(record.data)) and len(record.data) < PART_FROM
    assert list(record.parts.changed) == ["bhits"]  # the dict's base: one part


def _payload(data: bytes) -> bytes:
    """A record's payload without its frame of call ids (``frames.py``)."""
    return data.split(b"\n", 1)[1] if data.startswith(b"\x00S") else data


def test_a_call_writes_only_what_it_changed(store):
    big = store.object("big", Table)
    big.bump()
    key, before = _stored(store, "big")
    assert big.hit("ip00007") == 2
    changed = store.backend.load(key, before.version).parts
    assert changed.changed.keys() == {"ehits\x1fsip00007"} and changed.removed == ()
    big.bump()  # only the small counter: the head alone
    after = store.backend.load(key, before.version + 1)
    assert after.parts.changed == {} and after.version == before.version + 2
    big.forget("ip00003")
    assert store.backend.load(key, after.version).parts.changed == {"ehits\x1fsip00003": b""}


def test_the_instance_is_kept_between_calls(store):
    """Kept, a call costs what it changes; dropped, every call would read every part."""
    big = store.object("big", Table)
    big.bump()
    kept = store._objects.parting.states
    key = store.prefix + "o:big"
    first = kept[key]
    big.hit("ip00001")
    big.forget("ip00002")
    big.bump()
    assert kept[key] is first and list(kept) == [key]


def test_another_process_reads_the_changes_and_builds_on_them(store, parts_base_url):
    big = store.object("big", Table)
    big.bump()
    with sharedstate.connect(store.url) as other_store:
        other = other_store.object("big", Table)
        assert other.hit("ip00001") == 2
        other.forget("ip00002")
        assert big.hit("ip00001") == 3  # built on the other's writes
        assert big.get("ip00001") == 3 and big.get("ip00002") is None
        assert other.summary() == big.summary() == (ENTRIES - 1, sum(range(ENTRIES)) - 2 + 2, 3)


def test_the_dict_keeps_its_order_in_every_process(store):
    """A dict's order is state: new keys, and keys deleted and put in again, go to the
    end, in the order their calls put them in, as seen from any process."""
    big = store.object("big", Table)
    big.bump()
    with sharedstate.connect(store.url) as other_store:
        other = other_store.object("big", Table)
        other.hit("zz")
        big.hit("aa")
        other.forget("ip00005")
        other.hit("ip00005")
        big.hit("ip00007")  # in place
        with pytest.raises(ValueError):
            big.several_then_fail(["ip00002"])  # deletes ip00000, raises: undone, order too
        expected = [f"ip{i:05d}" for i in range(ENTRIES) if i != 5] + ["zz", "aa", "ip00005"]
        assert list(big.hits) == list(other.hits) == expected
        with sharedstate.connect(store.url) as fresh:
            assert list(fresh.object("big", Table).hits) == expected


def test_a_call_that_raises_changes_nothing(store):
    big = store.object("big", Table)
    big.bump()
    with pytest.raises(ValueError):
        big.several_then_fail(["ip00001", "ip00002"])
    assert big.summary() == (ENTRIES, sum(range(ENTRIES)), 1)
    assert big.get("ip00001") == 1 and big.get("brand-new") is None and big.log == []
    assert big.hit("ip00001") == 2  # and the kept instance is the undone one
    with sharedstate.connect(store.url) as fresh:
        assert fresh.object("big", Table).summary() == (ENTRIES, sum(range(ENTRIES)) + 1, 2)


def test_replacing_the_dict_rewrites_it_and_later_calls_write_one_entry_again(store):
    big = store.object("big", Table)
    big.bump()
    big.replace(800)
    assert big.summary() == (800, sum(range(800)), 1)
    key, record = _stored(store, "big")
    assert set(record.parts.changed) == {"bhits"}  # the old overrides are gone
    big.hit("new00005")
    assert store.backend.load(key, record.version).parts.changed.keys() == {"ehits\x1fsnew00005"}
    big.clear()
    assert big.summary() == (0, 0, 2)
    _, record = _stored(store, "big")
    assert not is_parted(_payload(record.data)) and record.parts.changed == {}


def test_overrides_are_folded_into_the_base_before_they_outgrow_it(store, monkeypatch):
    monkeypatch.setattr("sharedstate.parting.COMPACT_FROM", 10)
    big = store.object("big", Table, 40)
    big.replace(700)  # large: a base and overrides
    key, record = _stored(store, "big")
    for i in range(350):
        big.hit(f"new{i:05d}")
    _, record = _stored(store, "big")
    assert len(record.parts.changed) <= 1 + 350  # the base, and at most half the keys
    assert big.summary() == (700, sum(range(700)) + 350, 350)
    with sharedstate.connect(store.url) as fresh:
        assert fresh.object("big", Table).summary() == (700, sum(range(700)) + 350, 350)


def test_a_mutable_value_in_the_dict_is_never_lost(store):
    """A list in the dict could change without the dict seeing it: the dict is then
    stored whole, and a change through it is kept."""
    big = store.object("big", Table)
    big.bump()
    big.put_list("ip00001")
    big.append_to("ip00001", 7)
    big.append_to("ip00001", 8)
    assert big.get("ip00001") == [7, 8]
    with sharedstate.connect(store.url) as fresh:
        assert fresh.object("big", Table).get("ip00001") == [7, 8]


def test_an_attempt_that_rewrote_the_layout_and_lost_a_race_is_undone(store):
    big = store.object("big", Table)
    big.bump()
    with sharedstate.connect(store.url) as other_store:
        other_store.object("big", Table).bump()  # big's next write conflicts, and runs again
        big.list_at_count()
    assert big.get("x2") == [] and big.get("x1") is None
    with sharedstate.connect(store.url) as fresh:
        assert fresh.object("big", Table).summary()[0] == ENTRIES + 1
    grown = store.object("grown", Table)
    grown.bump()
    with sharedstate.connect(store.url) as other_store:
        other_store.object("grown", Table).bump()
        grown.mark_and_grow()
    assert grown.get("x2") == 1 and grown.get("x1") is None
    with sharedstate.connect(store.url) as fresh:
        assert fresh.object("grown", Table).get("x1") is None


def test_reads_are_copies(store):
    big = store.object("big", Table)
    big.bump()
    hits = big.hits
    assert type(hits) is dict and len(hits) == ENTRIES
    hits["ip00001"] = 999
    assert big.count == 1 and big.get("ip00001") == 1
    items = ["a"]
    returned = big.remember(items)
    items.append("b")
    returned.append("c")
    assert big.log == ["a"]
    assert json.loads(json.dumps(big.hits))["ip00002"] == 2


def test_a_transaction_on_a_large_object(store):
    big = store.object("big", Table)
    big.bump()
    with store.transaction("big") as table:
        table.hits["ip00001"] = 100
        table.count = 50
    assert big.get("ip00001") == 100 and big.bump() == 51
    with sharedstate.connect(store.url) as fresh:
        assert fresh.object("big", Table).summary()[2] == 51


def test_delete_removes_the_parts(store):
    big = store.object("big", Table)
    big.bump()
    assert store.delete("big")
    again = store.object("big", Table, 2)
    assert again.summary() == (2, 1, 0)
    assert store.inspect("big") is None or store.inspect("big")["state"]["count"] == 0


def test_inspect_shows_the_whole_state(store):
    big = store.object("big", Table)
    big.hit("ip00004")
    found = store.inspect("big")
    assert found["state"]["count"] == 1 and found["state"]["hits"]["ip00004"] == 5
    assert len(found["state"]["hits"]) == ENTRIES


def test_threads_of_one_process(store):
    big = store.object("big", Table)
    big.bump()
    ops = run_threads(6, 40, lambda: big.hit(f"ip{time.monotonic_ns() % 50:05d}"))
    assert_exact_and_linearizable(ops, first=2)
    length, total, count = big.summary()
    assert (length, total, count) == (ENTRIES, sum(range(ENTRIES)) + 240, 241)


def test_many_processes_each_with_threads(parts_base_url):
    if parts_base_url.startswith("memory"):
        pytest.skip("memory:// is one process's")
    url = with_prefix(parts_base_url, f"mp{time.monotonic_ns() % 10**9}-")
    with sharedstate.connect(url) as store:
        store.object("big", Table).bump()

    def make():
        obj = sharedstate.connect(url).object("big", Table)
        return lambda: obj.hit(f"ip{time.monotonic_ns() % 97:05d}")

    ops = run_processes(3, 3, 30, make)
    assert_exact_and_linearizable(ops, first=2)
    with sharedstate.connect(url) as store:
        assert store.object("big", Table).summary() == (ENTRIES, sum(range(ENTRIES)) + 270, 271)


def test_lost_replies_of_parts_writes(parts_base_url):
    if parts_base_url.split(":")[0] in ("memory", "sqlite"):
        pytest.skip("an embedded store never loses a reply")
    url = with_prefix(parts_base_url, f"lost{time.monotonic_ns() % 10**9}-")
    direct = sharedstate.connect(url)
    other = direct.object("big", Table)
    values = [other.hit("ip00001")]
    with dropping_proxy(url) as (proxied, proxy):
        store = sharedstate.connect(proxied)
        obj = store.object("big", Table)
        for i in range(24):
            if i % 4 == 1:
                proxy.drop(meanwhile=lambda n=i % 3 + 1: values.extend(other.hit("ip00002") for _ in range(n)))
            try:
                values.append(obj.hit("ip00001"))
            except sharedstate.SharedStateError as exc:  # a lost read: "did not happen" (counted below)
                assert not isinstance(exc, sharedstate.OutcomeUnknownError), exc
        store.close()
    assert sorted(values) == list(range(1, len(values) + 1))
    length, total, count = other.summary()
    assert count == len(values) and total == sum(range(ENTRIES)) + len(values)
    direct.close()


@pytest.mark.anyio
async def test_the_async_api_on_a_large_object(store):
    async with sharedstate.connect_async(store.url) as astore:
        big = astore.object("big", Table)
        assert await big.bump() == 1
        assert await big.hit("ip00003") == 2
        assert await big.count == 2
        assert (await big.hits)["ip00003"] == 4
    assert store.object("big", Table).summary() == (ENTRIES, sum(range(ENTRIES)) + 1, 2)


def test_a_rerun_that_writes_nothing_keeps_no_override_of_the_undone_attempt(store):
    """An attempt that changed an entry lost its race to another process; its rerun on the
    newer state writes nothing. The undone attempt's override (the place it gave the
    entry) must not be recorded: the next write of that entry would put it back where the
    undone attempt had it, and every process reading the parts anew would see the dict in
    another order than the calls made."""
    model = Table()
    big = store.object("big", Table)
    big.bump(), model.bump()
    with sharedstate.connect(store.url) as other_store:
        other = other_store.object("big", Table)
        other.forget("ip00005"), model.forget("ip00005")  # and put in again: at the end
        other.hit("ip00005"), model.hit("ip00005")
        # big's kept state still has count 1: its first attempt changes ip00005 in place and
        # loses the race; on the newer state (count 2) the call changes nothing
        big.hit_below("ip00005", 2), model.hit_below("ip00005", 2)
        big.hit("ip00005"), model.hit("ip00005")
        expected = list(model.hits.items())
        assert expected[-1] == ("ip00005", 2)
        assert list(big.hits.items()) == list(other.hits.items()) == expected
    with sharedstate.connect(store.url) as fresh:
        again = fresh.object("big", Table)
        assert list(again.hits.items()) == expected and again.count == model.count == 3
