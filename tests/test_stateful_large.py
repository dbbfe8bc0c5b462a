"""Hypothesis drives a shared object with a LARGE state and a plain one with the same calls.

The state (``models.BigState``): an int, a str, a dict of hundreds to thousands of entries
(str keys; int, str, tuple and list values), a set and a list. Each call changes one key,
many keys, the whole dict, or changes several things and then raises (a call that raises
must leave nothing behind); a list kept in the dict is changed in place by later calls.
Every result must equal the plain object's, with the same types, and after every step the
attributes read through a shared handle must equal the plain object's, the dict in the
same order (a dict's insertion order is what a method iterating it sees: ``order()``).

Two handles take turns, so each one's cached state goes stale while the other writes:
two stores of one process on every backend, and a store in this process with one in a
child process (spawned, so it shares nothing with this one) on the backends that
processes share.
"""

from __future__ import annotations

import copy
import multiprocessing
import traceback
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

import sharedstate

from .conftest import with_prefix
from .models import BigState

ATTRIBUTES = ("n", "name", "d", "s", "items")
#: methods that never raise, so a transaction may run them (a raise inside a transaction
#: is plain Python on a private instance: what it changed before raising would stay)
SAFE_IN_TRANSACTION = ("set_key", "bump", "add_member", "append_item", "put_list", "summary")
ANSWER_TIMEOUT = 60.0

# -- values -------------------------------------------------------------------------------
keys = st.one_of(
    st.integers(0, 4500).map(lambda i: f"k{i}"),
    st.integers(0, 300).map(lambda i: f"r{i}"),
    # "__t" is the JSON codec's tag key: a dict holding it is stored escaped
    st.sampled_from(["__t", "", "é", "k-1", "a key"]),
)
scalars = st.one_of(
    st.integers(-(2**70), 2**70),
    st.text(max_size=6),
)
values = st.one_of(scalars, st.tuples(st.integers(-5, 10**9), st.text(max_size=3)))
pairs = st.lists(st.tuples(keys, values), max_size=25)
members = st.integers(-5, 6000)
items = st.one_of(scalars, st.tuples(st.integers(0, 9), st.text(max_size=2)))


def typed(value: Any) -> Any:
    """``value`` with every type spelled out, so that comparing two of them is exact:
    ``1 == 1.0 == True`` and ``(1,) != [1]`` are told apart; a dict keeps its order."""
    kind = type(value)
    if kind is dict:
        return ("dict", [(typed(k), typed(v)) for k, v in value.items()])
    if kind is list or kind is tuple:
        return (kind.__name__, [typed(item) for item in value])
    if kind is set or kind is frozenset:
        return (kind.__name__, sorted((typed(item) for item in value), key=repr))
    return (kind.__name__, value)


def short(value: Any, limit: int = 300) -> str:
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def difference(got: Any, want: Any) -> str:
    """What tells two ``typed`` values apart, in a few lines (pytest's own diff of two
    dicts of thousands of entries takes seconds, at every failing try of the shrinker)."""
    if got[0] != "dict" or want[0] != "dict":
        return f"got {short(got)}, want {short(want)}"
    got_items, want_items = dict(got[1]), dict(want[1])
    missing = [k for k in want_items if k not in got_items]
    extra = [k for k in got_items if k not in want_items]
    changed = [
        (k, got_items[k], want_items[k])
        for k in want_items
        if k in got_items and got_items[k] != want_items[k]
    ]
    lines = [f"{len(got_items)} entries, want {len(want_items)}"]
    if missing:
        lines.append(f"{len(missing)} keys missing, e.g. {short(missing[:5])}")
    if extra:
        lines.append(f"{len(extra)} keys not wanted, e.g. {short(extra[:5])}")
    for key, got_value, want_value in changed[:5]:
        lines.append(f"at {key!r}: got {short(got_value)}, want {short(want_value)}")
    if len(changed) > 5:
        lines.append(f"... {len(changed)} values differ")
    if not (missing or extra or changed):
        got_keys, want_keys = [k for k, _ in got[1]], [k for k, _ in want[1]]
        first = next(i for i, (a, b) in enumerate(zip(got_keys, want_keys, strict=True)) if a != b)
        lines.append(
            f"the same entries in another order: from position {first}, the keys are "
            f"{short(got_keys[first : first + 5])}, want {short(want_keys[first : first + 5])}"
        )
    return "\n".join(lines)


def outcome(action) -> tuple[str, Any]:
    try:
        return ("ok", typed(action()))
    except ValueError as exc:
        return ("raised", str(exc))


def state_of(instance: Any) -> dict[str, Any]:
    return {attribute: typed(getattr(instance, attribute)) for attribute in ATTRIBUTES}


class Reference:
    """The plain object, with the rules sharedstate adds: a call that raises changes
    nothing (``set_then_fail`` and ``extend_at`` change state before they raise), and
    arguments and results are copies (the caller keeps no handle into the state)."""

    def __init__(self, size: int) -> None:
        self.obj = BigState(size)

    def call(self, method: str, *args: Any) -> Any:
        trial = copy.deepcopy(self.obj)
        result = getattr(trial, method)(*copy.deepcopy(args))  # raises before anything is kept
        self.obj = trial
        return copy.deepcopy(result)


# -- handles: one in this process, or one in a child process -------------------------------
class LocalHandle:
    def __init__(self, url: str, name: str, size: int) -> None:
        self.store = sharedstate.connect(url)
        self.obj = self.store.object(name, BigState, size)

    def call(self, method: str, *args: Any) -> tuple[str, Any]:
        return outcome(lambda: getattr(self.obj, method)(*args))

    def transaction(self, calls: list[tuple[str, tuple[Any, ...]]]) -> list[Any]:
        with self.store.transaction(self.obj) as obj:
            return [typed(getattr(obj, method)(*args)) for method, args in calls]

    def state(self) -> dict[str, Any]:
        return state_of(self.obj)

    def close(self) -> None:
        self.store.close()


def _serve(connection) -> None:
    """The child process: runs the parent's commands on a handle of its own, one at a time."""
    handle: LocalHandle | None = None
    while True:
        command, *args = connection.recv()
        try:
            if command == "stop":
                if handle is not None:
                    handle.close()
                connection.send(("ok", None))
                return
            if command == "open":
                if handle is not None:
                    handle.close()
                handle = LocalHandle(*args)
                answer: Any = None
            else:
                assert handle is not None, "no handle open"
                answer = getattr(handle, command)(*args)
            connection.send(("ok", answer))
        except BaseException:
            connection.send(("error", traceback.format_exc()))


class Child:
    """A spawned process serving one handle at a time (see ``_serve``)."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        self.connection, theirs = context.Pipe()
        self.process = context.Process(target=_serve, args=(theirs,), daemon=True)
        self.process.start()
        theirs.close()

    def ask(self, command: str, *args: Any) -> Any:
        self.connection.send((command, *args))
        if not self.connection.poll(ANSWER_TIMEOUT):
            raise AssertionError(f"the child process did not answer {command!r} in time")
        status, answer = self.connection.recv()
        if status != "ok":
            raise AssertionError(f"the child process failed on {command!r}:\n{answer}")
        return answer

    def stop(self) -> None:
        try:
            self.ask("stop")
        finally:
            self.process.join(10)
            if self.process.is_alive():
                self.process.kill()
                self.process.join(5)


class RemoteHandle:
    """A handle in the child process, used like a :class:`LocalHandle`."""

    def __init__(self, child: Child, url: str, name: str, size: int) -> None:
        self.child = child
        child.ask("open", url, name, size)

    def call(self, method: str, *args: Any) -> tuple[str, Any]:
        return self.child.ask("call", method, *args)

    def transaction(self, calls: list[tuple[str, tuple[Any, ...]]]) -> list[Any]:
        return self.child.ask("transaction", calls)

    def state(self) -> dict[str, Any]:
        return self.child.ask("state")

    def close(self) -> None:
        pass  # the child closes it at its next "open", or at "stop"


# -- the machine --------------------------------------------------------------------------
def make_machine(base_url: str, child: Child | None = None) -> type[RuleBasedStateMachine]:
    class LargeSharedAgainstPlain(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.handles: list[Any] = []
            self.transactions = 0
            self.steps = 0

        @initialize(size=st.sampled_from([250, 600, 2000]))
        def open_handles(self, size):
            url = with_prefix(base_url, f"h{uuid.uuid4().hex[:10]}-")
            name = f"big-{size}"
            self.handles.append(LocalHandle(url, name, size))
            if child is None:
                self.handles.append(LocalHandle(url, name, size))
            else:
                self.handles.append(RemoteHandle(child, url, name, size))
            self.plain = Reference(size)

        def both(self, which: int, method: str, *args: Any) -> Any:
            """Calls ``method`` on the shared object through handle ``which`` and on the
            plain one: the same result, or the same refusal."""
            shared = self.handles[which].call(method, *args)
            plain = outcome(lambda: self.plain.call(method, *args))
            if shared != plain:
                raise AssertionError(
                    f"handle {which}: {method}{short(args)}: got {short(shared)}, "
                    f"want {short(plain)}"
                )
            return shared

        @rule(which=st.integers(0, 1), key=keys, value=values)
        def set_key(self, which, key, value):
            self.both(which, "set_key", key, value)

        @rule(which=st.integers(0, 1), key=keys)
        def delete(self, which, key):
            self.both(which, "delete", key)

        @rule(which=st.integers(0, 1), data=st.data())
        def delete_present(self, which, data):
            present = list(self.plain.obj.d)
            if present:
                self.both(which, "delete", data.draw(st.sampled_from(present), label="key"))

        @rule(which=st.integers(0, 1), pairs=pairs)
        def set_many(self, which, pairs):
            self.both(which, "set_many", pairs)

        @rule(
            which=st.integers(0, 1),
            start=st.integers(0, 4000),
            count=st.integers(0, 400),
            value=scalars,
        )
        def set_range(self, which, start, count, value):
            self.both(which, "set_range", start, count, value)

        @rule(which=st.integers(0, 1), pairs=pairs, missing=keys)
        def set_then_fail(self, which, pairs, missing):
            self.both(which, "set_then_fail", pairs, missing)

        @rule(which=st.integers(0, 1), member=members)
        def add_member(self, which, member):
            self.both(which, "add_member", member)

        @rule(which=st.integers(0, 1), member=members)
        def discard_member(self, which, member):
            self.both(which, "discard_member", member)

        @rule(which=st.integers(0, 1), item=items)
        def append_item(self, which, item):
            self.both(which, "append_item", item)

        @rule(which=st.integers(0, 1))
        def pop_item(self, which):
            self.both(which, "pop_item")

        @rule(which=st.integers(0, 1), by=st.integers(-3, 10**12))
        def bump(self, which, by):
            self.both(which, "bump", by)

        @rule(which=st.integers(0, 1), name=st.text(max_size=8))
        def rename(self, which, name):
            self.both(which, "rename", name)

        @rule(
            which=st.integers(0, 1),
            size=st.sampled_from([0, 1, 40, 700, 2500, 4000]),
            tag=st.sampled_from(["k", "r"]),
        )
        def replace_dict(self, which, size, tag):
            self.both(which, "replace_dict", size, tag)

        @rule(which=st.integers(0, 1))
        def clear_dict(self, which):
            self.both(which, "clear_dict")

        @rule(which=st.integers(0, 1), key=keys, values=st.lists(scalars, max_size=4))
        def put_list(self, which, key, values):
            mine = list(values)
            self.both(which, "put_list", key, mine)
            mine.append("the caller's own")  # the stored list is not this one

        @rule(which=st.integers(0, 1), data=st.data(), value=items)
        def extend_at(self, which, data, value):
            lists = [k for k, v in self.plain.obj.d.items() if type(v) is list]
            key = data.draw(st.sampled_from(lists) if lists else keys, label="key")
            self.both(which, "extend_at", key, value)

        @rule(which=st.integers(0, 1), key=keys, value=items)
        def extend_any(self, which, key, value):
            self.both(which, "extend_at", key, value)

        @rule(which=st.integers(0, 1), key=keys)
        def get(self, which, key):
            self.both(which, "get", key)

        @rule(which=st.integers(0, 1), data=st.data(), lists_only=st.booleans())
        def get_present(self, which, data, lists_only):
            present = [k for k, v in self.plain.obj.d.items() if type(v) is list or not lists_only]
            if present:
                key = data.draw(st.sampled_from(present), label="key")
                self.both(which, "get", key)
                if isinstance(self.handles[which], LocalHandle):
                    got = self.handles[which].obj.get(key)
                    if type(got) is list:
                        got.append("the caller's own")  # a copy: the stored list stays

        @rule(which=st.integers(0, 1))
        def order(self, which):
            self.both(which, "order")

        @rule(which=st.integers(0, 1))
        def summary(self, which):
            self.both(which, "summary")

        @precondition(lambda self: self.transactions < 3)
        @rule(
            which=st.integers(0, 1),
            calls=st.lists(
                st.one_of(
                    st.tuples(st.just("set_key"), st.tuples(keys, values)),
                    st.tuples(st.just("bump"), st.tuples(st.integers(0, 9))),
                    st.tuples(st.just("add_member"), st.tuples(members)),
                    st.tuples(st.just("append_item"), st.tuples(items)),
                    st.tuples(st.just("put_list"), st.tuples(keys, st.lists(scalars, max_size=3))),
                    st.tuples(st.just("summary"), st.just(())),
                ),
                max_size=4,
            ),
        )
        def transaction(self, which, calls):
            assert all(method in SAFE_IN_TRANSACTION for method, _ in calls)
            self.transactions += 1
            shared = self.handles[which].transaction(calls)
            plain = [typed(self.plain.call(method, *args)) for method, args in calls]
            if shared != plain:
                raise AssertionError(
                    f"handle {which}: transaction {short(calls)}: got {short(shared)}, "
                    f"want {short(plain)}"
                )

        @invariant()
        def same_state(self):
            if not self.handles:
                return
            self.steps += 1
            which = self.steps % 2  # each handle reads in turn, its cache stale or not
            expected = state_of(self.plain.obj)
            shared = self.handles[which].state()
            for attribute in ATTRIBUTES:
                if shared[attribute] != expected[attribute]:
                    raise AssertionError(
                        f"handle {which}: attribute {attribute!r} read back: "
                        + difference(shared[attribute], expected[attribute])
                    )

        def teardown(self) -> None:
            for handle in self.handles:
                handle.close()

    return LargeSharedAgainstPlain


def run(machine: type[RuleBasedStateMachine], examples: int, steps: int) -> None:
    machine.TestCase.settings = settings(
        settings.default, max_examples=examples, stateful_step_count=steps, deadline=None
    )
    machine.TestCase().runTest()


# A passing run takes seconds per backend; on a failure Hypothesis shrinks for up to five
# minutes (every try rebuilds a large state), and its report must not be lost to the
# suite's 300 s timeout.
SHRINKING_TIMEOUT = pytest.mark.timeout(900)


@SHRINKING_TIMEOUT
def test_large_shared_object_behaves_like_the_plain_object(backend_base_url):
    run(make_machine(backend_base_url), examples=10, steps=20)


@pytest.fixture
def child() -> Iterator[Child]:
    started = Child()
    try:
        yield started
    finally:
        started.stop()


@pytest.mark.slow
@SHRINKING_TIMEOUT
def test_large_shared_object_across_two_processes(multiprocess_base_url, child):
    run(make_machine(multiprocess_base_url, child), examples=10, steps=20)
