"""The ``object:`` model: the user's own class is the specification.

Why it is fast enough to be the default way to check one's own class:

* **A state is a small integer.** Each distinct object state is encoded once
  (a canonical, hashable form of its attributes) and interned; the search hashes
  and compares integers, as it does for a counter.
* **Each (operation, state) transition runs the user's method at most once.** The
  result is memoized per operation in a dict from state number to next state number;
  the copy the method needs (it mutates its object) happens only on that first run,
  never on the search's hot path. Where the source fixes the effect outright
  (``return self.a``, ``self.a = arg``, appends to a str or list attribute holding
  plain data), the step is computed without running the method at all.
* **The same pruning as the built-in models**, from what the class's source says
  (see classify.py): methods that cannot change the object are pure reads (taken
  greedily, as the built-in models' reads are), and when the methods used act as a
  register or a string/list that only grows (a reader, whole-value writers and
  appenders of one attribute), the search gets the kv model's lookahead.

The source is read conservatively, and what it claims is checked on every
transition the search computes: a method classified pure that changes the state,
or a writer or appender that does something else, makes the model drop every
claim (:meth:`ObjectModel.hints_held` turns False) and ``check_history`` searches
that key again without them.
"""

from __future__ import annotations

import copy
import functools
import importlib
import inspect
import os
import sys
from collections.abc import Callable, Hashable
from typing import Any

from ..history import HistoryError, Operation
from ..model import ILLEGAL, Model, Step, freeze, normalize, show
from .classify import APPEND, READ, WRITE, Role, classify
from .register import read_guards

_MISSING: Any = object()


def attributes(obj: Any) -> dict[str, Any]:
    """An object's state: its ``__dict__`` plus any ``__slots__`` values."""
    state = dict(getattr(obj, "__dict__", {}))
    for name in _slots(type(obj)):  # type: ignore[arg-type]  # a class is hashable
        if hasattr(obj, name):
            state[name] = getattr(obj, name)
    return state


@functools.cache
def _slots(cls: type) -> tuple[str, ...]:
    return tuple(
        name for klass in cls.__mro__ for name in getattr(klass, "__slots__", ())
        if name not in ("__dict__", "__weakref__")
    )


_ATOMIC = (str, int, float, bool, type(None), bytes)


def _copier(cls: type) -> Callable[[Any], Any]:
    """A copy for the method to mutate: a fresh instance sharing the attributes that
    cannot be mutated (str, int, None, ...) and deep-copying the rest. Classes with
    slots or their own copy/pickle hooks get ``copy.deepcopy``."""
    if not _is_plain_class(cls):
        return copy.deepcopy
    new = object.__new__
    deep = copy.deepcopy

    def clone(obj: Any) -> Any:
        other: Any = new(cls)
        other.__dict__.update(
            {k: v if type(v) in _ATOMIC else deep(v) for k, v in obj.__dict__.items()}
        )
        return other

    return clone


def _plain(value: Any, via: str) -> bool:
    """True when a reader returning ``value`` (through ``via``) returns exactly its frozen
    form after a JSON round trip: scalars, and lists or tuples of plain values."""
    if via:
        return isinstance(value, (list, tuple)) and all(_plain(v, "") for v in value)
    if value is None or type(value) in (str, int, bool):
        return True
    return isinstance(value, (list, tuple)) and all(_plain(v, "") for v in value)


def _is_plain_class(cls: type) -> bool:
    """An instance is its ``__dict__``: no slots, no custom construction or copying."""
    hooks = ("__deepcopy__", "__setstate__", "__getstate__", "__reduce_ex__", "__reduce__")
    return (
        cls.__new__ is object.__new__
        and not any("__slots__" in vars(k) for k in cls.__mro__[:-1])
        and all(getattr(cls, h, None) is getattr(object, h, None) for h in hooks)
    )


def _effect(role: Role, old: Any, arg: Any) -> Any:
    """The attribute's new value after a write or append whose effect the source fixes
    (``self.a = arg``, ``self.a += arg`` on str or list, ...), or _MISSING to run it."""
    if role.kind == WRITE:
        return arg
    via = role.via
    if old is _MISSING:
        return _MISSING
    if via == "append":
        return old + [arg] if type(old) is list else _MISSING
    if via == "or-str" or via == "or-list":
        old = old or ("" if via == "or-str" else [])
    if type(old) is str and type(arg) is str and via in ("add", "or-str", "or-list"):
        return old + arg
    if type(old) is list and type(arg) is list and via in ("add", "or-str", "or-list", "extend"):
        return old + arg
    return _MISSING


def _fast_normalize(value: Any) -> Any:
    """normalize(), skipping the JSON round trip for the scalars most methods return."""
    if value is None or type(value) in (str, int, bool):
        return value
    return normalize(value)


class ObjectModel(Model):
    """The user's own class as the specification: ``CLASS()`` then its methods.

    A recorded ``error`` must match the exception the method raises in that state,
    and (as in sharedstate) a call that raises leaves the state unchanged.
    """

    def __init__(self, cls: type, hints: bool = True) -> None:
        self.cls = cls
        self.name = f"object:{cls.__module__}:{cls.__qualname__}"
        self.operations = {}
        self.roles: dict[str, Role] = classify(cls) if hints else {}
        self._held = True
        self._plain_class = _is_plain_class(cls)
        self._ids: dict[Hashable, int] = {}
        self._codes: list[Hashable] = []  # state number -> canonical encoding
        self._attrs: list[dict[str, Any]] = []  # state number -> its attributes (never mutated)
        self._objects: list[Any] = []  # state number -> an object in that state, or None
        self._values: dict[str, list[Any]] = {}  # attribute -> per state number, its frozen value
        self._copy = _copier(cls)
        first = cls()
        self._init = self._intern(attributes(first), None, first)

    # -- states -------------------------------------------------------------------
    def _intern(self, attrs: dict[str, Any], code: Hashable, obj: Any = None) -> int:
        if code is None:
            code = freeze(attrs)
        number = self._ids.get(code)
        if number is None:
            number = len(self._codes)
            self._ids[code] = number
            self._codes.append(code)
            self._attrs.append(attrs)
            self._objects.append(obj)
            for name, values in self._values.items():
                values.append(freeze(attrs.get(name)))
        return number

    def _object(self, state: int) -> Any:
        """An object in ``state`` (built from its attributes when a shortcut made the state)."""
        obj = self._objects[state]
        if obj is None:
            obj = object.__new__(self.cls)
            obj.__dict__.update(self._attrs[state])
            self._objects[state] = obj
        return obj

    def _value(self, name: str) -> list[Any]:
        """The frozen value of attribute ``name`` in each state, grown as states appear."""
        values = self._values.get(name)
        if values is None:
            values = [freeze(attrs.get(name)) for attrs in self._attrs]
            self._values[name] = values
        return values

    def init(self) -> Hashable:
        return self._init

    def hints_held(self) -> bool:
        return self._held

    def without_hints(self) -> ObjectModel:
        return ObjectModel(self.cls, hints=False)

    # -- operations ---------------------------------------------------------------
    def validate(self, op: Operation) -> None:
        method = getattr(self.cls, op.op, None)
        if op.op.startswith("_") or not callable(method):
            raise HistoryError(
                f"operation {op.index + 1}: {self.cls.__qualname__} has no public method {op.op!r}"
            )

    def _run(self, op: Operation, state: int) -> tuple[Any, str | None, Any]:
        obj = self._copy(self._object(state))
        try:
            result = getattr(obj, op.op)(*op.args)
        except Exception as exc:  # the specification raised: part of its behaviour
            return None, type(exc).__name__, None
        return result, None, obj

    def compile(self, op: Operation) -> tuple[Step, bool]:
        memo: dict[int, Any] = {}
        expected_result = normalize(op.result)
        role = self.roles.get(op.op)
        pure = role is not None and role.kind != WRITE and role.kind != APPEND
        audit = self._auditor(op, role) if role is not None else None
        certain = (
            role is not None and role.attribute is not None and self._plain_class
            and role.arity == len(op.args) and op.error is None
        )
        name = role.attribute if role is not None else None
        reader = certain and role is not None and role.kind == READ
        changer = certain and role is not None and role.kind in (WRITE, APPEND)
        values = self._value(name) if reader and name is not None else []
        target = freeze(expected_result)
        arg = op.args[role.arg] if changer and role is not None else None
        returns_none = op.pending or expected_result is None

        def step(state: int) -> Any:
            known = memo.get(state, _MISSING)
            if known is not _MISSING:
                return known
            # (``reader`` and ``changer`` say that ``role`` and ``name`` are not None)
            if reader and _plain(self._attrs[state].get(name, _MISSING), role.via):  # type: ignore[arg-type,union-attr]
                # ``return self.a`` on plain data: the result is the attribute, no need to run
                outcome = state if (op.pending or values[state] == target) else ILLEGAL
                memo[state] = outcome
                return outcome
            if changer:
                before = self._attrs[state]
                new = _effect(role, before.get(name, _MISSING), arg)  # type: ignore[arg-type]
                if new is not _MISSING:  # the source fixes the effect on str and list values
                    after = dict(before)
                    after[name] = new  # type: ignore[index]
                    outcome = self._intern(after, None) if returns_none else ILLEGAL
                    memo[state] = outcome
                    return outcome
            result, error, obj = self._run(op, state)
            if error is not None:
                outcome = state if (op.pending or error == op.error) else ILLEGAL
            elif op.error is not None:
                outcome = ILLEGAL
            else:
                attrs = attributes(obj)
                code = freeze(attrs)
                if audit is not None and not audit(state, attrs, code, result):
                    self._held = False
                if op.pending or _fast_normalize(result) == expected_result:
                    outcome = self._intern(attrs, code, obj)
                else:
                    outcome = ILLEGAL
            memo[state] = outcome
            return outcome

        return step, pure

    def _auditor(self, op: Operation, role: Role) -> Callable[[int, dict, Any, Any], bool]:
        """A check, on each transition computed by running the method, that it did what
        its source was read to say: a pure method left the state alone (a reader
        returned its attribute, as the lookahead compares them), a writer or appender
        changed only its attribute, as said."""
        name = role.attribute
        if role.kind not in (WRITE, APPEND):

            def unchanged(state: int, after: dict, code: Any, result: Any) -> bool:
                if code != self._codes[state]:
                    return False
                return name is None or freeze(_fast_normalize(result)) == self._value(name)[state]

            return unchanged
        arg = op.args[role.arg] if role.arg < len(op.args) else _MISSING

        def audit(state: int, after: dict, code: Any, result: Any) -> bool:
            before = self._attrs[state]
            if set(before) - {name} != set(after) - {name} or any(
                after[k] is not before[k] and freeze(after[k]) != freeze(before[k])
                for k in after if k != name
            ):
                return False
            new = after.get(name)
            if role.kind == WRITE:
                return freeze(new) == freeze(arg)
            old = before.get(name)  # type: ignore[arg-type]  # a writer's or appender's role names it
            if isinstance(new, str):
                return new == (old or "") + arg if isinstance(arg, str) else False
            if isinstance(new, list):
                base = list(old or [])
                return new in (base + [arg], base + list(arg) if isinstance(arg, list) else None)
            return False

        return audit

    def guards(self, ops: list[Operation]) -> list[Callable[[Any, int], bool] | None] | None:
        """The kv model's lookahead, when the methods used act on one attribute as
        reads, whole writes and appends (see classify.py); None otherwise."""
        roles = [self.roles.get(op.op) for op in ops]
        attrs = {r.attribute for r in roles if r is not None and r.attribute is not None}
        if len(attrs) != 1 or any(r is None for r in roles):
            return None
        (name,) = attrs
        kinds: list[str | None] = []
        for op, role in zip(ops, roles, strict=True):
            assert role is not None
            if role.attribute is None:  # pure, reads another attribute or computes: no guard
                kinds.append(None)
            elif role.kind in (WRITE, APPEND):
                if role.arg >= len(op.args):
                    return None
                kinds.append(role.kind)
            else:
                kinds.append("read")
        args = [op.args[r.arg] if r is not None and r.kind in (WRITE, APPEND) else None
                for op, r in zip(ops, roles, strict=True)]
        results = [freeze(normalize(op.result)) for op in ops]
        found = read_guards(ops, kinds, args, results)
        values = self._value(name)
        return [None if g is None else _on_attribute(g, values) for g in found]

    # -- words --------------------------------------------------------------------
    def expected(self, op: Operation, state: Any) -> Any:
        result, error, _ = self._run(op, state)
        return f"<raises {error}>" if error else normalize(result)

    def describe_state(self, state: Any) -> str:
        return f"the object held {show(self._codes[state])}"


def _on_attribute(
    guard: Callable[[Any, int], bool], values: list[Any]
) -> Callable[[Any, int], bool]:
    return lambda state, lin: guard(values[state], lin)


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
