"""Histories: the operations a checker judges, and their JSON Lines form.

One operation a line::

    {"process": 3, "call": 1.0021, "return": 1.0043, "op": "incr", "args": [], "result": 17}

``call`` and ``return`` are seconds on one clock. An operation that never returned
(a timeout, a crash) has ``"return": null``: it may or may not have taken effect, so
the checker treats its return as +infinity and its result as unknown. ``key``
(optional) partitions the history; ``error`` (optional) names the exception a call
raised, for the ``object:`` model.

Bad lines raise :class:`HistoryError` with the line number, because a checker that
guesses at a malformed history gives verdicts nobody can trust.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

try:  # the core's error family, once it exists
    from sharedstate.errors import SharedStateError as _Base
except ImportError:  # pragma: no cover - before the core lands
    _Base = Exception  # type: ignore[misc,assignment]


class HistoryError(_Base, ValueError):  # type: ignore[misc,valid-type]
    """A history file or list that cannot be checked; says which line and why."""


INF = math.inf

_FIELDS = {"process", "call", "return", "op", "args", "result", "key", "error"}


@dataclass(frozen=True)
class Operation:
    """One call in a history, from its invocation to its response.

    ``ret`` is None for an operation that never returned (``"return": null`` in
    JSON). ``index`` is the operation's position in the history it came from, so
    reports can point back at the line.
    """

    process: Any
    call: float
    ret: float | None
    op: str
    args: tuple[Any, ...] = ()
    result: Any = None
    key: Any = None
    error: str | None = None
    index: int = field(default=0, compare=False)

    @property
    def pending(self) -> bool:
        """True when the call never returned: it may or may not have taken effect."""
        return self.ret is None

    @property
    def end(self) -> float:
        """The return time, +infinity for a pending operation."""
        return INF if self.ret is None else self.ret

    def to_json(self) -> dict[str, Any]:
        line: dict[str, Any] = {
            "process": self.process,
            "call": self.call,
            "return": self.ret,
            "op": self.op,
            "args": list(self.args),
            "result": self.result,
        }
        if self.key is not None:
            line["key"] = _unfreeze(self.key)
        if self.error is not None:
            line["error"] = self.error
        return line


def _freeze_key(value: Any) -> Any:
    """Keys must be hashable; JSON lists become tuples."""
    if isinstance(value, list):
        return tuple(_freeze_key(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _freeze_key(v)) for k, v in value.items()))
    return value


def _unfreeze(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_unfreeze(v) for v in value]
    return value


def _number(value: Any, name: str, where: str, allow_null: bool = False) -> float | None:
    if value is None and allow_null:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise HistoryError(f"{where}: {name!r} must be a finite number, got {value!r}")
    return float(value)


def operation_from_dict(data: Any, index: int = 0, where: str = "") -> Operation:
    """Validate one decoded JSON object and build its :class:`Operation`."""
    where = where or f"operation {index + 1}"
    if not isinstance(data, dict):
        raise HistoryError(f"{where}: expected a JSON object, got {type(data).__name__}")
    missing = [name for name in ("process", "call", "op") if name not in data]
    if missing:
        raise HistoryError(f"{where}: missing field(s) {', '.join(missing)}")
    unknown = set(data) - _FIELDS
    if unknown:
        raise HistoryError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    call = _number(data["call"], "call", where)
    ret = _number(data.get("return"), "return", where, allow_null=True)
    assert call is not None
    if ret is not None and ret < call:
        raise HistoryError(f"{where}: returns ({ret}) before it is called ({call})")
    op = data["op"]
    if not isinstance(op, str) or not op:
        raise HistoryError(f"{where}: 'op' must be a non-empty string, got {op!r}")
    args = data.get("args", [])
    if args is None:
        args = []
    if not isinstance(args, list):
        raise HistoryError(f"{where}: 'args' must be a list, got {args!r}")
    process = data["process"]
    if not isinstance(process, (int, str)) or isinstance(process, bool):
        raise HistoryError(f"{where}: 'process' must be an integer or a string, got {process!r}")
    error = data.get("error")
    if error is not None and not isinstance(error, str):
        raise HistoryError(f"{where}: 'error' must be a string (an exception name), got {error!r}")
    result = data.get("result")
    if ret is None and result is not None:
        raise HistoryError(f"{where}: an operation that never returned cannot have a result")
    return Operation(
        process=process,
        call=call,
        ret=ret,
        op=op,
        args=tuple(args),
        result=result,
        key=_freeze_key(data.get("key")),
        error=error,
        index=index,
    )


def parse_history(lines: Iterable[str], source: str = "history") -> list[Operation]:
    """Parse JSON Lines text; blank lines and lines starting with ``#`` are skipped."""
    ops: list[Operation] = []
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        where = f"{source}, line {number}"
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise HistoryError(f"{where}: not valid JSON ({exc.msg})") from None
        ops.append(operation_from_dict(data, index=len(ops), where=where))
    return ops


def read_history(path: str | Path) -> list[Operation]:
    """Read a JSON Lines history file."""
    path = Path(path)
    try:
        with path.open(encoding="utf-8") as f:
            return parse_history(f, source=str(path))
    except OSError as exc:
        raise HistoryError(f"cannot read history {path}: {exc.strerror}") from None


def write_history(ops: Iterable[Operation], dest: str | Path | IO[str]) -> None:
    """Write operations as JSON Lines, in call order."""
    text = "".join(json.dumps(op.to_json()) + "\n" for op in sorted(ops, key=lambda o: o.call))
    if isinstance(dest, (str, Path)):
        Path(dest).write_text(text, encoding="utf-8")
    else:
        dest.write(text)

