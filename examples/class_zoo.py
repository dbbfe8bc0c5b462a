"""A zoo of the classes people keep in module globals, each made a shared object.

Every one either works (each call one atomic step, its state in the store) or is refused
when declared, with an UnsupportedClassError that says what to do instead. Run it twice:
the second run (``--second-run``) brings a new version of ``Profile``, as a deploy does,
and reads what the first run stored.

    python examples/class_zoo.py [--url sqlite:///zoo.db]
    python examples/class_zoo.py [--url sqlite:///zoo.db] --second-run

Exits 0 when every check holds.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import enum
import sys
import threading

import sharedstate

SECOND_RUN = "--second-run" in sys.argv


class Status(enum.Enum):
    OPEN = "open"
    SHIPPED = "shipped"


@dataclasses.dataclass
class Address:
    city: str
    zip_code: str = ""


@dataclasses.dataclass
class Order:
    """A dataclass holding a nested dataclass and an Enum member."""

    customer: str
    address: Address
    status: Status = Status.OPEN
    items: list = dataclasses.field(default_factory=list)

    def add(self, item: str) -> int:
        self.items.append(item)
        return len(self.items)

    def ship(self) -> Status:
        self.status = Status.SHIPPED
        return self.status


class Settings(dict):
    """A dict subclass: its items are its state, with an attribute of its own."""

    def __init__(self) -> None:
        super().__init__(theme="light")
        self.changes = 0

    def change(self, key: str, value: object) -> int:
        self[key] = value
        self.changes += 1
        return self.changes


class Log(list):
    def record(self, line: str) -> int:
        self.append(line)
        return len(self)


class WordCount(collections.Counter):
    def feed(self, text: str) -> list[tuple[str, int]]:
        self.update(text.split())
        return self.most_common(2)


class Point:
    """``__slots__`` and a property."""

    __slots__ = ("x", "y")

    def __init__(self) -> None:
        self.x = 0
        self.y = 0

    @property
    def norm1(self) -> int:
        return abs(self.x) + abs(self.y)

    def move(self, dx: int, dy: int) -> int:
        self.x += dx
        self.y += dy
        return self.norm1


class Cache:
    """``__getstate__``/``__setstate__`` keep a lock and a memo out of the store."""

    def __init__(self) -> None:
        self.hits = 0
        self._lock = threading.Lock()
        self._memo: dict[int, int] = {}

    def __getstate__(self) -> dict[str, int]:
        return {"hits": self.hits}

    def __setstate__(self, state: dict[str, int]) -> None:
        self.hits = state["hits"]
        self._lock = threading.Lock()
        self._memo = {}

    def square(self, n: int) -> int:
        with self._lock:
            self.hits += 1
            return self._memo.setdefault(n, n * n)


if not SECOND_RUN:

    class Profile:
        """Version 1."""

        def __init__(self, name: str) -> None:
            self.name = name
            self.visits = 0

        def visit(self) -> int:
            self.visits += 1
            return self.visits

else:

    class Profile:  # type: ignore[no-redef]
        """Version 2: a new attribute set only in ``__init__``; ``visits`` as before."""

        def __init__(self, name: str) -> None:
            self.name = name
            self.visits = 0
            self.badges: list[str] = []

        def visit(self) -> int:
            self.visits += 1
            if self.visits % 2 == 0:
                self.badges.append(f"visit-{self.visits}")
            return self.visits


class Queue(collections.deque):
    """Refused: a deque keeps its contents where sharedstate cannot store them."""


def check(label: str, got: object, expected: object) -> bool:
    ok = got == expected
    print(f"  {'ok ' if ok else 'BAD'} {label}: {got!r}" + ("" if ok else f" (expected {expected!r})"))
    return ok


def first_run(store: sharedstate.Store) -> list[bool]:
    order = store.object("order", Order, "ada", Address("Paris", "75001"))
    settings = store.object("settings", Settings)
    log = store.object("log", Log)
    words = store.object("words", WordCount)
    point = store.object("point", Point)
    cache = store.object("cache", Cache)
    profile = store.object("profile", Profile, "ada")
    return [
        check("dataclass with a nested dataclass: add", order.add("book"), 1),
        check("Enum member", order.ship(), Status.SHIPPED),
        check("nested dataclass read", order.address, Address("Paris", "75001")),
        check("dict subclass: item write", settings.change("theme", "dark"), 1),
        check("dict subclass: [] and len", (settings["theme"], len(settings)), ("dark", 1)),
        check("list subclass", (log.record("started"), list(log)), (1, ["started"])),
        check("Counter subclass", words.feed("a b a"), [("a", 2), ("b", 1)]),
        check("__slots__ and a property", (point.move(2, -3), point.norm1), (5, 5)),
        check("__getstate__/__setstate__", (cache.square(4), cache.square(4), cache.hits), (16, 16, 2)),
        check("Profile v1", profile.visit(), 1),
        refused(store),
    ]


def second_run(store: sharedstate.Store) -> list[bool]:
    order = store.object("order", Order, "ignored", Address("ignored"))
    settings = store.object("settings", Settings)
    words = store.object("words", WordCount)
    cache = store.object("cache", Cache)
    profile = store.object("profile", Profile, "ignored")
    return [
        check("order as stored", (order.status, order.items, order.address.city), (Status.SHIPPED, ["book"], "Paris")),
        check("settings as stored", (dict(settings.items()), settings.changes), ({"theme": "dark"}, 1)),
        check("words as stored", words["a"], 2),
        check("cache hits as stored", cache.hits, 2),
        check("Profile v2 reads v1's state", (profile.name, profile.visit()), ("ada", 2)),
        check("Profile v2's new attribute", profile.badges, ["visit-2"]),
        refused(store),
    ]


def refused(store: sharedstate.Store) -> bool:
    try:
        store.object("queue", Queue)
    except sharedstate.UnsupportedClassError as exc:
        print(f"  ok  refused when declared: {exc}")
        return "deque" in str(exc)
    print("  BAD a deque subclass was accepted")
    return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="sqlite:///class_zoo.db")
    parser.add_argument("--second-run", action="store_true", help="the next deploy's classes")
    args = parser.parse_args()
    with sharedstate.connect(args.url) as store:
        print(f"class zoo, {'second' if args.second_run else 'first'} run, on {store!r}")
        results = second_run(store) if args.second_run else first_run(store)
    sys.exit(0 if all(results) else 1)


if __name__ == "__main__":
    main()
