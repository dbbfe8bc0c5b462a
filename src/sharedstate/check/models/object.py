"""The ``object:`` model: the user's own class is the specification."""

from __future__ import annotations

import copy
import importlib
import inspect
import os
import sys
from collections.abc import Hashable
from typing import Any

from ..history import HistoryError, Operation
from ..model import ILLEGAL, Model, Step, freeze, normalize, show


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
