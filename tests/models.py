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
