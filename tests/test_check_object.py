"""The ``object:`` model: what it reads from a class's source, and that its shortcuts
never change a verdict (against the built-in kv model and against itself without them)."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given

from sharedstate.check import Operation, check_history
from sharedstate.check.models import KVModel
from sharedstate.check.models.classify import APPEND, PURE, READ, WRITE, Role, classify
from sharedstate.check.models.object import ObjectModel
from sharedstate.check.search import linearize

from .test_check_search import bench, property_settings, simulated_histories


class Str:
    """Porcupine's kv semantics for one key, as a user would write it."""

    def __init__(self) -> None:
        self.value = None

    def get(self):
        return self.value

    def put(self, value):
        self.value = value

    def append(self, value):
        self.value = (self.value or "") + value


class Shapes:
    """Methods the reader must and must not take for pure."""

    def __init__(self) -> None:
        self.items: list = []
        self.d: dict = {}
        self.n = 0

    def size(self):
        v = len(self.items)
        return v

    def peek(self, k):
        return self.d.get(k)

    def alias(self, x):
        items = self.items
        items.append(x)

    def inner(self, k):
        self.d.get(k).append(1)

    def helper(self):
        return _touch(self)

    def bump(self):
        self.n += 1
        return self.n

    def add(self, x):
        self.items.append(x)

    def extend(self, xs):
        self.items += xs


class Shapes2(Shapes):
    def bump(self):
        return super().bump()

    def loop(self):
        for row in self.d.values():
            row.append(0)

    def peek2(self, k):
        return super().peek(k)


def _touch(obj):
    obj.n = 7
    return obj.n


def test_classify_reads_the_roles_from_the_source():
    assert classify(Str) == {
        "get": Role(READ, "value", arity=0), "put": Role(WRITE, "value", 0, arity=1),
        "append": Role(APPEND, "value", 0, "or-str", arity=1),
    }
    roles = classify(Shapes)
    assert roles["size"].kind == PURE and roles["peek"].kind == PURE
    for impure in ("alias", "inner", "helper", "bump"):
        assert impure not in roles or roles[impure].kind not in (PURE, READ), impure
    assert roles["add"] == Role(APPEND, "items", 0, "append", arity=1)
    more = classify(Shapes2)
    assert "bump" not in more and "loop" not in more  # through super() and a loop variable
    assert "peek2" not in more  # super().peek() is a call on the object: not known read-only
    assert roles["extend"] == Role(APPEND, "items", 0, "add", arity=1)


STR = "object:tests.test_check_object:Str"


def test_object_model_agrees_with_kv_on_the_benchmark_histories():
    for clients in (10, 50):
        for bad in (False, True):
            ops = bench.kv_history(clients, seed=2, bad=bad)
            kv = check_history(ops, "kv", explain_failure=False).verdict
            assert check_history(ops, STR, explain_failure=False).verdict == kv


@property_settings(300)
@given(simulated_histories("kv", most=10))
def test_object_model_with_and_without_shortcuts_agrees_with_kv(ops):
    expected = linearize(ops, KVModel()).ok
    assert linearize(ops, ObjectModel(Str)).ok == expected
    assert linearize(ops, ObjectModel(Str, hints=False)).ok == expected


class Sneaky(list):
    """A list whose len() appends: a pure-looking reader that is not."""

    def __len__(self):
        self.append(0)
        return super().__len__()


class Tricky:
    def __init__(self) -> None:
        self.items = Sneaky()

    def size(self):
        return len(self.items)

    def snap(self):
        return self.items[:]


def test_a_wrong_shortcut_is_caught_and_the_key_searched_again():
    # size() looks pure but grows the list. Taken as pure, it is forced first (it is
    # legal at once) and snap() can then no longer see []: a false violation. The
    # audit sees size() change the state, and the key is searched again without it.
    ops = [
        Operation(1, 0.0, 2.0, "size", (), 1),
        Operation(2, 0.0, 2.0, "snap", (), []),
    ]
    model = ObjectModel(Tricky)
    assert model.roles["size"].kind == PURE
    assert linearize(ops, ObjectModel(Tricky)).ok is False  # the shortcut alone is wrong
    result = check_history(ops, model)
    assert not model.hints_held()
    assert result.verdict == "linearizable"  # snap() -> [] then size() -> 1
    assert linearize(ops, ObjectModel(Tricky, hints=False)).ok is True


class ListBag:
    """A list that grows by append and by +=, and is replaced whole."""

    def __init__(self) -> None:
        self.items = []

    def add(self, item):
        self.items.append(item)

    def add_all(self, items):
        self.items += items

    def reset(self, items):
        self.items = items

    def show(self):
        return list(self.items)


def _as_list_bag(ops: list[Operation]) -> list[Operation]:
    """A kv history's operations as ListBag calls (values spelled as lists of letters)."""
    out = []
    for op in ops:
        if op.op == "get":
            result = None if op.pending else list(op.result or "")
            out.append(replace(op, op="show", result=result))
        elif op.op == "append":
            out.append(replace(op, op="add" if op.index % 2 else "add_all",
                               args=(op.args[0] if op.index % 2 else list(op.args[0]),)))
        else:
            out.append(replace(op, op="reset", args=(list(op.args[0]),)))
    return out


@property_settings(300)
@given(simulated_histories("kv", most=10))
def test_list_shortcuts_never_change_a_verdict(ops):
    bag = _as_list_bag(ops)
    assert linearize(bag, ObjectModel(ListBag)).ok == linearize(bag, ObjectModel(ListBag, hints=False)).ok


class Unset:
    """A reader of an attribute that ``__init__`` never sets: it raises until ``put``."""

    def get(self):
        return self.value

    def put(self, value):
        self.value = value


def test_a_reader_of_a_missing_attribute_is_run_not_assumed():
    ops = [Operation(1, 0.0, 1.0, "get", (), None)]
    assert check_history(ops, ObjectModel(Unset)).verdict == "violation"  # it raised
    raised = [Operation(1, 0.0, 1.0, "get", (), None, error="AttributeError")]
    assert check_history(raised, ObjectModel(Unset)).verdict == "linearizable"
