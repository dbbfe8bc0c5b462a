"""Sequential specifications: what each operation may return, one at a time.

A model turns each :class:`Operation` into a *step*: a function from a state to the
next state, or :data:`ILLEGAL` when the operation could not have returned what it
returned from that state. Steps are built once per operation ("compiled"), so the
search's inner loop is a plain call with no dispatch on the operation's name.

States must be hashable and compare by value: the search memoizes on
``(set of linearized operations, state)``, and two orders that reach the same state
are the same problem (Lowe's memoization). That is why registers store lists as
tuples and the ``object:`` model wraps the user's object in a :class:`Snapshot`
that hashes its attributes.

A pending operation (never returned) has an unknown result: its step takes effect
without checking the result. Linearizing it at the very end is the same as
dropping it, so "may or may not have taken effect" needs no second branch.
"""

from __future__ import annotations

import bisect
import copy
import dataclasses
import importlib
import inspect
import json
import os
import sys
from collections.abc import Callable, Hashable
from typing import Any

from .history import HistoryError, Operation

#: returned by a step when the operation could not have returned what it did
ILLEGAL: Any = object()
#: returned by Model.expected when a model cannot say what an operation would return
UNKNOWN: Any = object()

Step = Callable[[Any], Any]


def freeze(value: Any) -> Hashable:
    """A hashable, order-independent form of a JSON-like value (lists become tuples)."""
    if isinstance(value, (list, tuple)):
        return tuple(freeze(v) for v in value)
    if isinstance(value, dict):
        return ("__dict__", tuple(sorted(((repr(k), freeze(v)) for k, v in value.items()))))
    if isinstance(value, (set, frozenset)):
        return ("__set__", frozenset(freeze(v) for v in value))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return (type(value).__name__, freeze(dataclasses.asdict(value)))
    try:
        hash(value)
    except TypeError:
        return ("__repr__", repr(value))
    return value


def thaw(value: Any) -> Any:
    """The JSON-like form of a frozen value, for messages and reports."""
    if isinstance(value, tuple):
        if len(value) == 2 and value[0] == "__dict__":
            return {k: thaw(v) for k, v in value[1]}
        return [thaw(v) for v in value]
    return value


def show(value: Any) -> str:
    """A short JSON rendering of a value for sentences (``"x"``, ``42``, ``null``)."""
    try:
        text = json.dumps(thaw(value), default=str)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def normalize(value: Any) -> Any:
    """Results as they look after a JSON round trip, so recorded and modelled results compare."""

    def default(obj: Any) -> Any:
        if isinstance(obj, (set, frozenset)):
            try:
                return sorted(obj)
            except TypeError:
                return sorted(obj, key=repr)
        if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
            return dataclasses.asdict(obj)
        return str(obj)

    try:
        return json.loads(json.dumps(value, default=default, sort_keys=True))
    except (TypeError, ValueError):
        return repr(value)


class Model:
    """The interface every model implements; subclasses fill in :meth:`compile`."""

    name = "model"
    #: operation name -> (min args, max args); used to reject bad histories early
    operations: dict[str, tuple[int, int]] = {}

    def init(self) -> Hashable:
        """The state before any operation."""
        raise NotImplementedError

    def compile(self, op: Operation) -> tuple[Step, bool]:
        """The step for ``op``, and whether it never changes the state (a pure read).

        Pure reads let the search linearize them greedily, without a branch point.
        """
        raise NotImplementedError

    def validate(self, op: Operation) -> None:
        """Raise :class:`HistoryError` for an operation this model does not have."""
        if op.op not in self.operations:
            names = ", ".join(sorted(self.operations))
            raise HistoryError(
                f"operation {op.index + 1}: the {self.name} model has no operation "
                f"{op.op!r} (it has {names})"
            )
        low, high = self.operations[op.op]
        if not low <= len(op.args) <= high:
            want = str(low) if low == high else f"{low} to {high}"
            raise HistoryError(
                f"operation {op.index + 1}: {op.op} takes {want} argument(s), got {len(op.args)}"
            )

    def guards(self, ops: list[Operation]) -> list[Callable[[Any, int], bool] | None] | None:
        """Per operation, an optional quick test of a search state (state, bitset of
        linearized operations) while the operation is still to be linearized: False
        means no linearization can extend it. It must never reject a state that
        could succeed. None: the model has no guards."""
        return None

    def expected(self, op: Operation, state: Any) -> Any:
        """What ``op`` would have returned from ``state`` (for explanations), or UNKNOWN."""
        return UNKNOWN

    def describe_state(self, state: Any) -> str:
        return show(state)

    def describe_op(self, op: Operation) -> str:
        args = [show(a) for a in op.args]
        if op.key is not None:
            args.insert(0, show(op.key))
        return f"{op.op}({', '.join(args)})"

    def direct_check(self, ops: list[Operation]) -> Any:
        """A faster, complete check for special cases; None when it does not apply."""
        return None


class CounterModel(Model):
    """An integer counter: ``incr [n=1]`` returns the new value, ``get`` the value, ``set [v]``."""

    name = "counter"
    operations = {"incr": (0, 1), "get": (0, 0), "set": (1, 1)}

    def __init__(self, initial: int = 0) -> None:
        self.initial = initial

    def init(self) -> Hashable:
        return self.initial

    def validate(self, op: Operation) -> None:
        super().validate(op)
        if op.op == "incr" and op.args and not _is_int(op.args[0]):
            raise HistoryError(f"operation {op.index + 1}: incr takes an integer, got {op.args[0]!r}")

    def compile(self, op: Operation) -> tuple[Step, bool]:
        if op.error is not None:
            return (lambda s: s), True
        result = op.result
        pending = op.pending
        if op.op == "incr":
            n = op.args[0] if op.args else 1
            if pending:
                return (lambda s: s + n), False
            if not _is_int(result):
                return (lambda s: ILLEGAL), False
            return (lambda s: result if s + n == result else ILLEGAL), False
        if op.op == "get":
            if pending:
                return (lambda s: s), True
            return (lambda s: s if s == result else ILLEGAL), True
        value = op.args[0]  # set: the result is not checked
        return (lambda s: value), False

    def expected(self, op: Operation, state: Any) -> Any:
        if op.op == "incr":
            return state + (op.args[0] if op.args else 1)
        if op.op == "get":
            return state
        return UNKNOWN

    def describe_state(self, state: Any) -> str:
        return f"the counter was {state}"

    def direct_check(self, ops: list[Operation]) -> Any:
        from .linearizability import check_counter  # the direct check lives with the search

        return check_counter(ops, self.initial)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class RegisterModel(Model):
    """One value, starting at null: ``read``, ``write [v]``, ``cas [old, new] -> bool``.

    The kv model adds ``get``/``put``/``append`` names (Porcupine's and Jepsen's kv
    workloads) and is partitioned by the operation's ``key``: a register per key.
    """

    name = "register"
    operations = {"read": (0, 0), "write": (1, 1), "cas": (2, 2)}
    _reads = {"read", "get"}
    _writes = {"write", "put"}

    def init(self) -> Hashable:
        return None

    def compile(self, op: Operation) -> tuple[Step, bool]:
        if op.error is not None:
            return (lambda s: s), True
        name = op.op
        pending = op.pending
        if name in self._reads:
            if pending:
                return (lambda s: s), True
            result = freeze(op.result)
            return (lambda s: s if s == result else ILLEGAL), True
        if name in self._writes:
            value = freeze(op.args[0])
            return (lambda s: value), False
        if name == "append":
            tail = op.args[0]
            frozen_tail = freeze(tail)

            def append(s: Any) -> Any:
                if s is None:
                    return tail if isinstance(tail, str) else (frozen_tail,)
                if isinstance(s, str) and isinstance(tail, str):
                    return s + tail
                if isinstance(s, tuple):
                    return s + (frozen_tail,)
                return ILLEGAL

            return append, False
        old, new = freeze(op.args[0]), freeze(op.args[1])  # cas
        if pending:
            return (lambda s: new if s == old else s), False
        if op.result is True:
            return (lambda s: new if s == old else ILLEGAL), False
        if op.result is False:
            return (lambda s: s if s != old else ILLEGAL), True
        return (lambda s: ILLEGAL), False

    def guards(self, ops: list[Operation]) -> list[Callable[[Any, int], bool] | None] | None:
        """A completed read R returned ``target``. Between now and R the value changes
        only by the writes (write, put, successful cas) and appends that can precede R
        (those called before R returned). After the last write before R only appends
        follow, so that write's value must be a prefix of ``target``: writes with
        other values cannot precede R at all. If no usable write is left, the current
        value must be a prefix of ``target`` (with appends left) or equal to it."""
        order = sorted(range(len(ops)), key=lambda i: ops[i].call)
        calls = [ops[i].call for i in order]
        appends = [0]
        for i in order:
            is_append = ops[i].op == "append" and ops[i].error is None
            appends.append(appends[-1] | (1 << i if is_append else 0))
        writers = [
            (i, freeze(ops[i].args[-1]))
            for i in order
            if ops[i].op in ("write", "put", "cas") and ops[i].error is None
        ]
        result: list[Callable[[Any, int], bool] | None] = [None] * len(ops)
        for i, op in enumerate(ops):
            if op.op not in self._reads or op.pending or op.error is not None:
                continue
            target = freeze(op.result)
            usable = [
                (1 << j, value)
                for j, value in writers
                if ops[j].call <= op.end and _extends(value, target)
            ]
            k = bisect.bisect_right(calls, op.end)
            pieces: list[tuple[int, str]] = []
            if isinstance(target, str):  # the appends that could spell the rest of target
                for j in order[:k]:
                    tail = ops[j].args[0] if ops[j].op == "append" and ops[j].args else None
                    if isinstance(tail, str) and tail and tail in target and ops[j].error is None:
                        pieces.append((1 << j, tail))
            result[i] = _read_guard(usable, appends[k], target, pieces)
        return result

    def expected(self, op: Operation, state: Any) -> Any:
        if op.op in self._reads:
            return state
        if op.op == "cas":
            return state == freeze(op.args[0])
        return UNKNOWN

    def describe_state(self, state: Any) -> str:
        return f"the value was {show(state)}"


def _extends(value: Any, target: Any) -> bool:
    """Can appends turn ``value`` into ``target``?"""
    if value is None or value == target:
        return True
    if isinstance(value, str):
        return isinstance(target, str) and target.startswith(value)
    if isinstance(value, tuple):
        return isinstance(target, tuple) and target[: len(value)] == value
    return False


def _read_guard(
    writers: list[tuple[int, Any]], appends: int, target: Any, pieces: list[tuple[int, str]]
) -> Callable[[Any, int], bool]:
    """The test for one read; see RegisterModel.guards.

    Either the last write before the read is one still to come (its value then a
    prefix of ``target``, the rest spelled by appends still to come), or no write
    comes first and appends turn the current value into ``target``.
    """
    spelled = isinstance(target, str)

    def guard(state: Any, lin: int) -> bool:
        left = appends & ~lin
        tails = [tail for bit, tail in pieces if bit & left] if spelled else []
        for bit, value in writers:
            if not bit & lin:
                if not spelled or _spells(target[len(value or ""):], tails, [64]):
                    return True
        if not left:
            return state == target
        if not _extends(state, target):
            return False
        if spelled and (state is None or isinstance(state, str)):
            return _spells(target[len(state or ""):], tails, [64])
        return True

    return guard


def _spells(rest: str, tails: list[str], budget: list[int]) -> bool:
    """Can some of ``tails``, each used once, be concatenated into ``rest``?

    Gives up (answers yes, which never wrongly prunes) after ``budget`` tries.
    """
    if not rest:
        return True
    budget[0] -= 1
    if budget[0] < 0:
        return True
    seen: set[str] = set()
    for k, tail in enumerate(tails):
        if tail not in seen and rest.startswith(tail):
            seen.add(tail)
            if _spells(rest[len(tail):], tails[:k] + tails[k + 1:], budget):
                return True
    return False


class KVModel(RegisterModel):
    """A register per key (the history is partitioned by ``key`` before the search)."""

    name = "kv"
    operations = {
        "read": (0, 0), "get": (0, 0), "write": (1, 1), "put": (1, 1),
        "append": (1, 1), "cas": (2, 2),
    }

    def describe_state(self, state: Any) -> str:
        return f"the key held {show(state)}"


class Snapshot:
    """An object state the search can hash: the object plus a frozen copy of its attributes."""

    __slots__ = ("obj", "key", "_hash")

    def __init__(self, obj: Any) -> None:
        self.obj = obj
        self.key = freeze(attributes(obj))
        self._hash = hash(self.key)

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Snapshot) and self.key == other.key

    def __repr__(self) -> str:
        return f"Snapshot({show(self.key)})"


def attributes(obj: Any) -> dict[str, Any]:
    """An object's state: its ``__dict__`` plus any ``__slots__`` values."""
    state = dict(getattr(obj, "__dict__", {}))
    for cls in type(obj).__mro__:
        for name in getattr(cls, "__slots__", ()):
            if name not in ("__dict__", "__weakref__") and hasattr(obj, name):
                state[name] = getattr(obj, name)
    return state


class ObjectModel(Model):
    """The user's own class as the specification: ``CLASS()`` then its methods.

    Each step deep-copies the object before calling the method, so states stay
    immutable for the search. A recorded ``error`` must match the exception the
    method raises in that state, and (as in sharedstate) a call that raises leaves
    the state unchanged. Steps are memoized per (operation, state): the search
    asks the same question many times.
    """

    def __init__(self, cls: type) -> None:
        self.cls = cls
        self.name = f"object:{cls.__module__}:{cls.__qualname__}"
        self.operations = {}

    def init(self) -> Hashable:
        return Snapshot(self.cls())

    def validate(self, op: Operation) -> None:
        method = getattr(self.cls, op.op, None)
        if op.op.startswith("_") or not callable(method):
            raise HistoryError(
                f"operation {op.index + 1}: {self.cls.__qualname__} has no public method {op.op!r}"
            )

    def _run(self, op: Operation, state: Snapshot) -> tuple[Any, str | None, Any]:
        obj = copy.deepcopy(state.obj)
        try:
            result = getattr(obj, op.op)(*op.args)
        except Exception as exc:  # the specification raised: part of its behaviour
            return None, type(exc).__name__, state
        return result, None, obj

    def compile(self, op: Operation) -> tuple[Step, bool]:
        memo: dict[Snapshot, Any] = {}
        expected_result = normalize(op.result)

        def step(state: Snapshot) -> Any:
            known = memo.get(state)
            if known is not None:
                return known
            result, error, obj = self._run(op, state)
            if error is not None:
                outcome = state if (op.pending or error == op.error) else ILLEGAL
            elif op.error is not None:
                outcome = ILLEGAL
            elif op.pending or normalize(result) == expected_result:
                new = Snapshot(obj)
                outcome = state if new == state else new
            else:
                outcome = ILLEGAL
            memo[state] = outcome
            return outcome

        return step, False

    def expected(self, op: Operation, state: Any) -> Any:
        result, error, _ = self._run(op, state)
        return f"<raises {error}>" if error else normalize(result)

    def describe_state(self, state: Any) -> str:
        return f"the object held {show(state.key)}"


def load_class(spec: str) -> type:
    """Import ``MODULE:CLASS`` (the current directory is importable, as with ``python -m``)."""
    module_name, _, class_name = spec.partition(":")
    if not module_name or not class_name:
        raise HistoryError(f"expected MODULE:CLASS, got {spec!r}")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise HistoryError(f"cannot import module {module_name!r}: {exc}") from None
    cls: Any = module
    for part in class_name.split("."):
        cls = getattr(cls, part, None)
        if cls is None:
            raise HistoryError(f"module {module_name!r} has no class {class_name!r}")
    if not inspect.isclass(cls):
        raise HistoryError(f"{spec!r} is not a class")
    return cls


def model_from_spec(spec: str | Model) -> Model:
    """``counter``, ``counter:START``, ``register``, ``kv`` or ``object:MODULE:CLASS``."""
    if isinstance(spec, Model):
        return spec
    name, _, rest = spec.partition(":")
    if name == "counter":
        if not rest:
            return CounterModel()
        try:
            return CounterModel(int(rest))
        except ValueError:
            raise HistoryError(f"counter:START needs an integer start, got {rest!r}") from None
    if name == "register" and not rest:
        return RegisterModel()
    if name == "kv" and not rest:
        return KVModel()
    if name == "object" and rest:
        return ObjectModel(load_class(rest))
    raise HistoryError(
        f"unknown model {spec!r}: use counter, counter:START, register, kv or object:MODULE:CLASS"
    )
