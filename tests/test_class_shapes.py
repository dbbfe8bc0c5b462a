"""Class shapes that used to lose writes silently, on every backend: dict, list and set
subclasses (their items are their state), methods that are not plain functions, generator
methods, mutable class attributes, cached properties, and user attributes whose names the
proxies use. Each works, or is refused at ``store.object(...)`` with UnsupportedClassError."""

from __future__ import annotations

import collections
import functools
import threading

import pytest

import sharedstate
from sharedstate import SharedStateError, UnsupportedClassError


class Registry(dict):
    """A dict subclass with an attribute of its own besides its items."""

    def __init__(self, owner="ops"):
        super().__init__()
        self.owner = owner

    def register(self, key, value):
        self[key] = value
        return len(self)


class History(list):
    def __init__(self):
        super().__init__()
        self.pushes = 0

    def push(self, item):
        self.append(item)
        self.pushes += 1
        return self.pushes


class Tally(collections.defaultdict):
    def __init__(self):
        super().__init__(int)

    def hit(self, key):
        self[key] += 1
        return self[key]


class Recent(collections.OrderedDict):
    def touch(self, key):
        self[key] = self.get(key, 0) + 1
        self.move_to_end(key, last=False)


class Increments:
    """A counter whose methods are everything but plain functions."""

    def __init__(self):
        self.n = 0

    def inc(self, by=1):
        self.n += by
        return self.n

    inc_two = functools.partialmethod(inc, 2)

    @functools.lru_cache  # noqa: B019 - the point: sharedstate must not serve a cached result
    def inc_cached(self):
        self.n += 1
        return self.n

    @functools.cache  # noqa: B019
    def inc_cache(self):
        self.n += 1
        return self.n

    def steps(self, count):
        for _ in range(count):
            self.n += 1
            yield self.n

    @functools.cached_property
    def doubled(self):
        return self.n * 2


class bound_decorator:  # noqa: N801 - a decorator class, named as decorators are
    """A class-based decorator that binds like a function (it has ``__get__``)."""

    def __init__(self, func):
        self.func = func
        functools.update_wrapper(self, func)

    def __get__(self, instance, owner=None):
        return self if instance is None else functools.partial(self.func, instance)

    def __call__(self, *args, **kwargs):
        return self.func(*args, **kwargs)


class Decorated:
    def __init__(self):
        self.n = 0

    @bound_decorator
    def inc(self):
        self.n += 1
        return self.n


class WithClassList:
    """``items`` is a class attribute: mutated through ``self`` it would be the class's."""

    items: list = []  # noqa: RUF012 - exactly the shape under test
    seen = {}  # noqa: RUF012

    def add(self, item):
        self.items.append(item)
        self.seen[item] = True
        return list(self.items)


class Shadowing:
    """Attributes named like the proxies' own fields."""

    def __init__(self):
        self._store = "mine"
        self._spec = 1
        self._dunder = [1]
        self._name = "user's name"

    def bump(self):
        self._spec += 1
        return self._spec


class Slotted:
    __slots__ = ("x", "y")

    def __init__(self):
        self.x = 0
        self.y = 0

    @property
    def total(self):
        return self.x + self.y

    def move(self, dx, dy):
        self.x += dx
        self.y += dy
        return self.total


class QueueLike(collections.deque):
    pass


class SlottedWithClassList:
    __slots__ = ("n",)
    log: list = []  # noqa: RUF012

    def __init__(self):
        self.n = 0


def reopen(store: sharedstate.Store) -> sharedstate.Store:
    """Another handle on the same store: its own cache, so reads come from the store."""
    return sharedstate.connect(store.url)


def test_dict_subclass_items_and_attributes_are_shared(store):
    registry = store.object("reg", Registry, "web")
    registry["a"] = 1
    assert registry.register("b", 2) == 2
    assert len(registry) == 2
    assert "a" in registry and "z" not in registry
    assert list(registry) == ["a", "b"]
    assert registry["b"] == 2
    assert registry.get("a") == 1
    assert registry.setdefault("c", 3) == 3
    registry.update({"d": 4})
    assert registry.pop("d") == 4
    del registry["c"]
    assert registry.owner == "web"
    with reopen(store) as other:
        again = other.object("reg", Registry, "ignored")
        assert dict(again.items()) == {"a": 1, "b": 2}
        assert again.owner == "web"
        assert bool(again) is True


@pytest.mark.parametrize(
    ("cls", "args", "fill", "expected"),
    [
        (dict, (), lambda o: o.update(x=1), {"x": 1}),
        (list, (), lambda o: o.extend([1, 2]), [1, 2]),
        (set, (), lambda o: o.add(3), {3}),
        (collections.Counter, (), lambda o: o.update("aab"), {"a": 2, "b": 1}),
        (collections.defaultdict, (list,), lambda o: o.update(k=[1]), {"k": [1]}),
    ],
)
def test_builtin_containers_as_shared_objects(store, cls, args, fill, expected):
    shared = store.object("c", cls, *args)
    fill(shared)
    with reopen(store) as other:
        again = other.object("c", cls, *args)
        got = dict(again.items()) if hasattr(cls, "items") else (set(again) if cls is set else list(again))
        assert got == expected
        assert len(again) == len(expected)


def test_defaultdict_subclass_keeps_its_default_factory(store):
    tally = store.object("tally", Tally)
    assert tally.hit("x") == 1
    with reopen(store) as other:
        again = other.object("tally", Tally)
        assert again.hit("x") == 2
        assert again["never"] == 0  # the factory's default_factory, not a KeyError


def test_ordered_dict_keeps_its_order(store):
    recent = store.object("recent", Recent)
    for key in "abc":
        recent.touch(key)
    recent.touch("a")
    with reopen(store) as other:
        assert list(other.object("recent", Recent)) == ["a", "c", "b"]


def test_counter_most_common_and_list_subclass(store):
    counter = store.object("words", collections.Counter)
    counter.update(["x", "y", "x"])
    assert counter.most_common(1) == [("x", 2)]
    history = store.object("hist", History)
    assert history.push("a") == 1
    history.append("b")
    assert history.push("c") == 2
    assert list(history) == ["a", "b", "c"]
    assert list(reversed(history)) == ["c", "b", "a"]
    assert history[-1] == "c"
    assert history.pushes == 2


def test_dunder_operations_are_atomic_under_threads_and_handles(store):
    """Every ``counter.update`` and ``d[k] = d.get(k, 0) + 1``-free item write, from threads
    of two handles (two caches, so real conflicts), lands exactly once."""
    words = store.object("words", collections.Counter)
    registry = store.object("reg", Registry)
    with reopen(store) as other:
        handles = [words, other.object("words", collections.Counter)]
        registries = [registry, other.object("reg", Registry)]

        def work(index: int) -> None:
            for round_ in range(25):
                handles[index % 2].update(["hit"])
                registries[index % 2][f"{index}-{round_}"] = round_

        threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert words["hit"] == 200
        assert len(registries[1]) == 200


def test_methods_that_are_not_plain_functions_change_the_state(store):
    obj = store.object("inc", Increments)
    assert obj.inc() == 1
    assert obj.inc_two() == 3
    assert obj.inc_cached() == 4
    assert obj.inc_cached() == 5  # never a cached result: the state changed
    assert obj.inc_cache() == 6
    assert obj.inc_cache() == 7
    assert obj.n == 7
    decorated = store.object("dec", Decorated)
    assert [decorated.inc() for _ in range(3)] == [1, 2, 3]


def test_generator_method_runs_to_completion_in_one_step(store):
    obj = store.object("inc", Increments)
    assert obj.steps(3) == [1, 2, 3]
    assert obj.steps(2) == [4, 5]
    assert obj.n == 5


def test_cached_property_is_computed_from_the_state_never_stored(store):
    obj = store.object("inc", Increments)
    obj.inc()
    assert obj.doubled == 2
    obj.inc()
    assert obj.doubled == 4
    assert "doubled" not in store.inspect("inc")["state"]


def test_mutable_class_attribute_is_the_objects_own_state(store):
    obj = store.object("cl", WithClassList)
    assert obj.add("a") == ["a"]
    assert obj.add("b") == ["a", "b"]
    with reopen(store) as other:
        assert other.object("cl", WithClassList).items == ["a", "b"]
        assert other.object("cl", WithClassList).seen == {"a": True, "b": True}
    assert WithClassList.items == [] and WithClassList.seen == {}  # the class is untouched


def test_unchanged_class_constant_is_not_stored(store):
    obj = store.object("cl", WithClassList)
    obj.add("a")
    state = store.inspect("cl")["state"]
    assert state == {"items": ["a"], "seen": {"a": True}}
    fresh = store.object("fresh", WithClassList)
    assert fresh.items == []
    assert store.inspect("fresh") is None or store.inspect("fresh")["state"] == {}


def test_user_attributes_named_like_the_proxys_own_fields(store):
    obj = store.object("sh", Shadowing)
    assert obj._store == "mine"
    assert obj._spec == 1
    assert obj._dunder == [1]
    assert obj.bump() == 2
    obj._store = "changed"
    obj._spec = 10
    with reopen(store) as other:
        again = other.object("sh", Shadowing)
        assert again._store == "changed"
        assert again._spec == 10
    assert obj.bump() == 11  # the proxy still works: its own fields were never touched


def test_flask_app_object_never_shadows_name(store_url, tmp_path):
    flask = pytest.importorskip("flask")
    from sharedstate.flask import SharedState

    app = flask.Flask("shadow", instance_path=str(tmp_path))
    app.config["SHAREDSTATE_URL"] = store_url
    state = SharedState(app)
    obj = state.object("sh", Shadowing)
    try:
        with app.app_context():
            assert obj._name == "user's name"
            obj._name = "renamed"
            assert obj._name == "renamed"
            assert obj.bump() == 2  # still the same shared object
            assert state.store.inspect("sh")["state"]["_name"] == "renamed"
    finally:  # no connection of this process left open for a later test's fork to inherit
        app.extensions["sharedstate"].close()


def test_slots_and_properties(store):
    obj = store.object("slots", Slotted)
    assert obj.move(1, 2) == 3
    assert obj.total == 3
    with reopen(store) as other:
        assert other.object("slots", Slotted).x == 1


def test_unsupported_shapes_are_refused_when_declared(store):
    with pytest.raises(UnsupportedClassError, match=r"QueueLike.*deque.*plain class") as caught:
        store.object("q", QueueLike)
    assert isinstance(caught.value, SharedStateError) and isinstance(caught.value, TypeError)
    with pytest.raises(UnsupportedClassError, match=r"SlottedWithClassList.*'log'.*__slots__"):
        store.object("s", SlottedWithClassList)
    assert store.names() == []  # nothing was stored


def test_unstorable_item_is_named_and_nothing_is_stored(store):
    registry = store.object("reg", Registry)
    registry["ok"] = 1
    with pytest.raises(sharedstate.SerializationError, match=r"item 'lock'"):
        registry["lock"] = threading.Lock()
    assert dict(registry.items()) == {"ok": 1}


def test_flask_refuses_an_unsupported_class_when_declared():
    pytest.importorskip("flask")
    from sharedstate.flask import SharedState

    with pytest.raises(UnsupportedClassError, match="deque"):
        SharedState().object("q", QueueLike)


def test_async_method_is_refused_clearly(store):
    class Fetcher:
        async def fetch(self):
            return 1

    with pytest.raises(UnsupportedClassError, match=r"Fetcher\.fetch is async"):
        store.object("f", Fetcher).fetch()
