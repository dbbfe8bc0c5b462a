"""Porcupine's operation log: the ``[]porcupine.Operation`` a Go test hands the checker.

Written with Go's ``encoding/json``, each operation is an object with Porcupine's
field names (a JSON array of them, or one a line)::

    {"ClientId": 3, "Input": {"Op": "append", "Key": "k", "Value": "x"},
     "Call": 1042, "Output": {"Value": ""}, "Return": 1097}

``Input`` holds the call: ``Op`` is the operation's name (``get``, ``put``,
``append``, ``read``, ``write``, ``cas``) or the number Porcupine's own kv test
uses (0 get, 1 put, 2 append); ``Key`` (optional) partitions the history; ``Value``
is the argument (``Arg1``, ``Arg2`` for a cas). ``Output`` holds the result:
``Value`` for a read, ``Ok`` for a cas; ``"Unknown": true`` marks a call whose
outcome is unknown (it may or may not have taken effect). Keys are matched without
regard to case. ``Call`` and ``Return`` are timestamps on one clock.

Porcupine's kv model starts every key at ``""`` (ours at null), so its histories
are checked with ``kv:""`` unless the user names another model.
"""

from __future__ import annotations

import json
from typing import Any

from ..history import HistoryError, Operation

_KV_NUMBERS = {0: "get", 1: "put", 2: "append"}
_READS = {"get", "read"}


def _fields(value: Any, where: str, name: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise HistoryError(f"{where}: {name} must be an object, got {value!r}")
    return {str(k).lower(): v for k, v in value.items()}


def _time(value: Any, where: str, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise HistoryError(f"{where}: {name} must be a number, got {value!r}")
    return float(value)


def operation_from_porcupine(data: Any, index: int, where: str) -> Operation:
    record = _fields(data, where, "an operation")
    for name in ("input", "call", "return"):
        if name not in record:
            raise HistoryError(f"{where}: missing {name.capitalize()}")
    inp = _fields(record["input"], where, "Input")
    out = _fields(record.get("output"), where, "Output")
    op = inp.get("op")
    if isinstance(op, int) and not isinstance(op, bool):
        op = _KV_NUMBERS.get(op, op)
    if not isinstance(op, str) or not op:
        raise HistoryError(f"{where}: Input.Op must name the operation, got {inp.get('op')!r}")
    op = op.lower()
    call = _time(record["call"], where, "Call")
    ret: float | None = _time(record["return"], where, "Return")
    if ret is not None and ret < call:
        raise HistoryError(f"{where}: returns ({ret}) before it is called ({call})")
    if out.get("unknown") is True:
        ret = None
    if op == "cas":
        args: tuple[Any, ...] = (inp.get("arg1"), inp.get("arg2"))
        result = out.get("ok") if ret is not None else None
    elif op in _READS:
        args = ()
        result = out.get("value") if ret is not None else None
    else:
        args = (inp.get("value"),) if "value" in inp else ()
        result = None
    client = record.get("clientid", 0)
    if not isinstance(client, (int, str)) or isinstance(client, bool):
        raise HistoryError(f"{where}: ClientId must be an integer, got {client!r}")
    key = inp.get("key")
    return Operation(client, call, ret, op, args, result, key=key, index=index)


def parse_porcupine(text: str, source: str = "history") -> list[Operation]:
    """The operations of a Porcupine log: one JSON array, or one object a line."""
    stripped = text.lstrip()
    records: list[tuple[str, Any]] = []
    if stripped.startswith("["):
        try:
            items = json.loads(text)
        except json.JSONDecodeError as exc:
            raise HistoryError(f"{source}: not valid JSON ({exc.msg}, line {exc.lineno})") from None
        records = [(f"{source}, operation {i + 1}", item) for i, item in enumerate(items)]
    else:
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                records.append((f"{source}, line {number}", json.loads(line)))
            except json.JSONDecodeError as exc:
                raise HistoryError(f"{source}, line {number}: not valid JSON ({exc.msg})") from None
    ops = [operation_from_porcupine(item, i, where) for i, (where, item) in enumerate(records)]
    return ops


def suggested_model(ops: list[Operation]) -> str:
    """Porcupine's kv model starts each key at the empty string."""
    names = {op.op for op in ops}
    if names <= {"read", "write", "cas"}:
        return "register"
    return 'kv:""'
