"""Registers and key-value stores: ``read``/``get``, ``write``/``put``, ``append``, ``cas``.

Their lookahead (guards) reasons about the last write before a read and the appends
that can follow it: see :meth:`RegisterModel.guards`.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Hashable
from typing import Any

from ..history import Operation
from ..model import ILLEGAL, UNKNOWN, Model, Step, freeze, show


class RegisterModel(Model):
    """One value, starting at null (or ``initial``): ``read``, ``write [v]``, ``cas [old, new] -> bool``.

    The kv model adds ``get``/``put``/``append`` names (Porcupine's and Jepsen's kv
    workloads) and is partitioned by the operation's ``key``: a register per key.
    """

    name = "register"
    operations = {"read": (0, 0), "write": (1, 1), "cas": (2, 2)}
    _reads = {"read", "get"}
    _writes = {"write", "put"}

    def __init__(self, initial: Any = None) -> None:
        self.initial = initial

    def init(self) -> Hashable:
        return freeze(self.initial)

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
        kinds: list[str | None] = []
        for op in ops:
            if op.op in self._reads:
                kinds.append("read")
            elif op.op in ("write", "put", "cas"):
                kinds.append("write")
            else:
                kinds.append("append" if op.op == "append" else None)
        values = [op.args[-1] if op.args else None for op in ops]
        values = [op.args[0] if k == "append" else v for op, k, v in zip(ops, kinds, values, strict=True)]
        return read_guards(ops, kinds, values, [freeze(op.result) for op in ops])

    def expected(self, op: Operation, state: Any) -> Any:
        if op.op in self._reads:
            return state
        if op.op == "cas":
            return state == freeze(op.args[0])
        return UNKNOWN

    def describe_state(self, state: Any) -> str:
        return f"the value was {show(state)}"


def read_guards(
    ops: list[Operation], kinds: list[str | None], values: list[Any], targets: list[Any]
) -> list[Callable[[Any, int], bool] | None]:
    """The guards of RegisterModel.guards, for any model whose operations act on one
    value as ``kinds[i]``: "read" (returned ``targets[i]``), "write" (of ``values[i]``;
    a cas counts as a possible write of its new value), "append" (of ``values[i]``) or
    None (no effect on the value). The object model uses it too."""
    order = sorted(range(len(ops)), key=lambda i: ops[i].call)
    calls = [ops[i].call for i in order]
    appends = [0]
    for i in order:
        is_append = kinds[i] == "append" and ops[i].error is None
        appends.append(appends[-1] | (1 << i if is_append else 0))
    writers = [
        (i, freeze(values[i]))
        for i in order
        if kinds[i] == "write" and ops[i].error is None
    ]
    result: list[Callable[[Any, int], bool] | None] = [None] * len(ops)
    for i, op in enumerate(ops):
        if kinds[i] != "read" or op.pending or op.error is not None:
            continue
        target = targets[i]
        usable = [
            (1 << j, value)
            for j, value in writers
            if ops[j].call <= op.end and _extends(value, target)
        ]
        k = bisect.bisect_right(calls, op.end)
        pieces: list[tuple[int, str]] = []
        if isinstance(target, str):  # the appends that could spell the rest of target
            for j in order[:k]:
                tail = values[j] if kinds[j] == "append" else None
                if isinstance(tail, str) and tail and tail in target and ops[j].error is None:
                    pieces.append((1 << j, tail))
        result[i] = _read_guard(usable, appends[k], target, pieces)
    return result


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
