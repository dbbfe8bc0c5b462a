"""The counter model: ``incr [n=1]`` returns the new value, ``get`` the value, ``set [v]``."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from ..history import HistoryError, Operation
from ..model import ILLEGAL, UNKNOWN, Model, Step
from .counter_direct import check_counter


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
        return check_counter(ops, self.initial)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
