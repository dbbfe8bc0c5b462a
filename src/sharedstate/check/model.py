"""The model interface: what a sequential specification gives the search.

A model turns each :class:`Operation` into a *step*: a function from a state to the
next state, or :data:`ILLEGAL` when the operation could not have returned what it
returned from that state. Steps are built once per operation ("compiled"), so the
search's inner loop is a plain call with no dispatch on the operation's name.

States must be hashable and compare by value: the search memoizes on
``(set of linearized operations, state)``, and two orders that reach the same state
are the same problem (Lowe's memoization). That is why registers store lists as
tuples and the ``object:`` model keeps each state as a number standing for a
canonical encoding of the object's attributes.

This module knows no concrete model: the search (search.py) and the words
(explain.py, shrink.py) depend on it alone; the models live in ``models/``.

A pending operation (never returned) has an unknown result: its step takes effect
without checking the result. Linearizing it at the very end is the same as
dropping it, so "may or may not have taken effect" needs no second branch.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Hashable
from typing import Any

from .history import HistoryError, Operation

#: returned by a step when the operation could not have returned what it did
ILLEGAL: Any = object()
#: returned by Model.expected when a model cannot say what an operation would return
UNKNOWN: Any = object()

Step = Callable[[Any], Any]


_SCALARS = (str, int, float, bool, type(None))


def freeze(value: Any) -> Hashable:
    """A hashable, order-independent form of a JSON-like value (lists become tuples)."""
    if type(value) in _SCALARS:
        return value
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

    def hints_held(self) -> bool:
        """False when a shortcut the model took (a guard, a pure read) proved wrong on
        some state: its "not linearizable" can no longer be trusted."""
        return True

    def without_hints(self) -> Model:
        """The same semantics with no shortcuts that rest on assumptions."""
        return self

    def direct_check(self, ops: list[Operation]) -> Any:
        """A faster, complete check for special cases; None when it does not apply."""
        return None
