"""Classes the tests share as objects (importable by worker processes too)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from decimal import Decimal

from sharedstate.examples import SomeObj  # noqa: F401 - the global counter's class


class YieldingObj:
    """The global counter's class with a yield between its read and its write, as any I/O does.

    Without it CPython's GIL hides the race in a bare ``+= 1`` (threads switch only at calls and loop edges), and a
    concurrency test would prove nothing.
    """

    constructed = 0  # per process: how often the factory ran here

    def __init__(self, param=0):
        type(self).constructed += 1
        self.param = param

    def query(self):
        value = self.param
        time.sleep(0)
        self.param = value + 1
        return self.param

    def query_twice(self):
        return self.query(), self.query()


class Account:
    """A class with several methods, one of which refuses bad input after mutating."""

    def __init__(self, owner="alice", balance=0):
        self.owner = owner
        self.balance = balance
        self.history = []

    def deposit(self, amount):
        self.balance += amount
        self.history.append(("deposit", amount))
        return self.balance

    def withdraw(self, amount):
        self.balance -= amount
        self.history.append(("withdraw", amount))
        if self.balance < 0:
            raise ValueError(f"insufficient funds for {amount}")
        return self.balance

    def statement(self):
        return list(self.history)

    def total(self):
        return self.balance


class Other:
    def __init__(self):
        self.x = 1


@dataclasses.dataclass
class Point:
    x: int
    y: int


class Everything:
    """State holding every type the JSON codec promises to keep."""

    def __init__(self):
        self.d = {1: "one", (2, 3): "pair", "s": None}
        self.t = (1, "a", (2.5, True))
        self.s = {3, 1, 2}
        self.f = frozenset({"x"})
        self.when = dt.datetime(2026, 11, 25, 10, 30, tzinfo=dt.timezone.utc)
        self.day = dt.date(2026, 1, 2)
        self.span = dt.timedelta(days=1, seconds=5, microseconds=7)
        self.money = Decimal("10.25")
        self.point = Point(1, 2)
        self.blob = b"\x00\xff"
        self.nested = [{"__t": "not a tag"}, [1, [2, [3]]]]

    def touch(self):
        self.s.add(4)
        return sorted(self.s)


class Bag:
    """A container-like class for the proxy's dunder methods."""

    def __init__(self):
        self.items = []

    def add(self, item):
        self.items.append(item)

    def __len__(self):
        return len(self.items)

    def __getitem__(self, index):
        return self.items[index]

    def __contains__(self, item):
        return item in self.items

    def __iter__(self):
        return iter(self.items)

    async def fetch(self):  # refused: cannot be one atomic step
        return self.items


class Holder:
    def __init__(self):
        self.value = 0

    def put(self, value):
        self.value = value
        return True


def big_dict(size, tag="k"):
    """The deterministic dict of :class:`BigState`: ``size`` str keys, with int, short str
    and tuple values in turn."""
    values = (lambda i: i * 7, lambda i: f"v{i % 97}", lambda i: (i, f"t{i % 13}"))
    return {f"{tag}{i}": values[i % 3](i) for i in range(size)}


class BigState:
    """A large state (a dict of hundreds to thousands of entries, a set, a list) with
    methods that each change a little of it, or all of it, or raise after changing some."""

    def __init__(self, size=500):
        self.n = 0
        self.name = f"big{size}"
        self.d = big_dict(size)
        self.s = set(range(0, 2 * size, 3))
        self.items = [0, "one", (2, "two")]

    def set_key(self, key, value):
        self.d[key] = value
        return len(self.d)

    def delete(self, key):
        try:
            del self.d[key]
        except KeyError:
            raise ValueError(f"no key {key!r}") from None
        return len(self.d)

    def set_many(self, pairs):
        for key, value in pairs:
            self.d[key] = value
        return len(self.d)

    def set_range(self, start, count, value):
        for i in range(start, start + count):
            self.d[f"k{i}"] = value
        return len(self.d)

    def set_then_fail(self, pairs, missing):
        """Changes every attribute (a list held in the dict too), then deletes ``missing``:
        when that key is absent the call raises, and none of it may stay."""
        self.n += 1
        self.name += "!"
        for key, value in pairs:
            self.d[key] = value
        for value in self.d.values():
            if type(value) is list:
                value.append("half-done")
                break
        self.s.add(-1)
        self.items.append("half-done")
        return self.delete(missing)

    def add_member(self, member):
        self.s.add(member)
        return len(self.s)

    def discard_member(self, member):
        self.s.discard(member)
        return len(self.s)

    def append_item(self, item):
        self.items.append(item)
        return len(self.items)

    def pop_item(self):
        if not self.items:
            raise ValueError("pop from an empty list")
        return self.items.pop()

    def bump(self, by):
        self.n += by
        return self.n

    def rename(self, name):
        self.name = name
        return self.name

    def replace_dict(self, size, tag):
        self.d = big_dict(size, tag)
        return len(self.d)

    def clear_dict(self):
        self.d.clear()
        return 0

    def put_list(self, key, values):
        self.d[key] = values  # the caller's list itself: a shared object must keep a copy
        return len(self.d)

    def extend_at(self, key, value):
        """Appends to the list held at ``key``, in place (``self.d[key].append``)."""
        self.n += 1  # changed first: a refused call must not keep it
        try:
            self.d[key].append(value)
        except KeyError:
            raise ValueError(f"no key {key!r}") from None
        except AttributeError:
            raise ValueError(f"{key!r} holds no list") from None
        return len(self.d[key])

    def get(self, key):
        return self.d.get(key)

    def order(self):
        """The dict's first and last keys: its insertion order, as callers see it."""
        keys = list(self.d)
        return keys[:3] + keys[-3:]

    def summary(self):
        ints = [v for v in self.d.values() if type(v) is int]
        return {
            "n": self.n,
            "name": self.name,
            "keys": len(self.d),
            "int_sum": sum(ints),
            "lists": sum(len(v) for v in self.d.values() if type(v) is list),
            "members": (len(self.s), sum(self.s)),
            "items": len(self.items),
        }
