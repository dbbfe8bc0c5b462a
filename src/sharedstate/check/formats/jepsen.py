"""Jepsen and Knossos histories: EDN event maps, ``:invoke`` then ``:ok``/``:fail``/``:info``.

A Jepsen history is a sequence of events, one map each (a file of maps, one a line,
or one EDN vector of them)::

    {:process 0, :type :invoke, :f :write, :value 3}
    {:process 0, :type :ok,     :f :write, :value 3}

Each process has at most one call open at a time, so a completion belongs to the
last ``:invoke`` of its process. What the completion says:

* ``:ok``: the call returned; for a read (``:read``, ``:get``) its ``:value`` is
  the result, for a ``:cas`` the result is true;
* ``:fail``: the call certainly did not take effect (recorded as an error: it
  changed nothing, whatever it was);
* ``:info``, or no completion at all: the outcome is unknown, the call may or may
  not have taken effect (recorded as never returned).

Operations map to our models by ``:f``: ``:read``/``:write``/``:cas`` (value
``[old new]``) to ``register``, ``:get``/``:put``/``:append`` with a ``:key`` to
``kv`` (Porcupine's ``test_data/kv`` files are of this kind). Events of other
processes (``:nemesis``) are skipped. Times are the events' positions in the file:
Jepsen writes events in the order they happened, and a ``:time`` field is not
needed for that order. Jepsen's textual log (``INFO jepsen.util - 3 :invoke :read
nil``, as in Knossos's etcd test logs) is read the same way. The start value is
Knossos's: null.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence, Set
from typing import Any

from ..history import HistoryError, Operation

#: the model a Jepsen history is checked against unless the user names one
MODELS = {"register": "register", "kv": "kv"}

_LOG_LINE = re.compile(r"^\s*INFO\s+jepsen\.util\s+-\s+(\S+)\s+(:\S+)\s+(:\S+)\s*(.*?)\s*$")
_READS = {"read", "get"}


def _edn() -> Any:
    try:
        import edn_format
    except ImportError:  # pragma: no cover - the check extra installs it
        raise HistoryError(
            "reading Jepsen EDN histories needs the edn_format package: "
            "pip install 'sharedstate[check]'"
        ) from None
    return edn_format


def _plain(value: Any) -> Any:
    """EDN values as JSON-like Python: keywords become their names, maps dicts, vectors lists."""
    edn = _edn()
    if isinstance(value, edn.Keyword):
        return value.name
    if isinstance(value, edn.Symbol):
        return value.name
    if isinstance(value, (str, bytes)):
        return value
    if isinstance(value, Mapping):
        return {_plain(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (Sequence, Set)):
        return [_plain(v) for v in value]
    return value


def _events(text: str, source: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, event) pairs, from EDN maps or from Jepsen's textual log."""
    edn = _edn()
    lines = text.splitlines()
    if any(_LOG_LINE.match(line) for line in lines[:20]):
        for number, line in enumerate(lines, start=1):
            match = _LOG_LINE.match(line)
            if match is None:
                continue
            process, kind, f, value = match.groups()
            try:
                parsed = edn.loads(value) if value else None
            except Exception as exc:  # edn_format raises its own and ply's errors
                raise HistoryError(f"{source}, line {number}: cannot read {value!r} ({exc})") from None
            yield number, {"process": process, "type": kind[1:], "f": f[1:], "value": _plain(parsed)}
        return
    try:
        items = edn.loads_all(text)
    except Exception as exc:
        raise HistoryError(f"{source}: not a valid EDN history ({exc})") from None
    if len(items) == 1 and isinstance(items[0], Sequence) and not isinstance(items[0], str):
        items = list(items[0])  # one vector of events
    for number, item in enumerate(items, start=1):
        event = _plain(item)
        if not isinstance(event, dict):
            raise HistoryError(f"{source}, event {number}: expected a map, got {event!r}")
        yield number, event


def _process(value: Any) -> int | str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    return None  # :nemesis and other non-client processes


def parse_jepsen(text: str, source: str = "history") -> list[Operation]:
    """The operations of a Jepsen history (see the module doc for the mapping)."""
    open_calls: dict[Any, tuple[int, dict[str, Any]]] = {}
    done: list[tuple[int, Operation]] = []

    def operation(position: int, call: dict[str, Any], end: int | None, kind: str,
                  value: Any, where: str) -> Operation:
        f = call.get("f")
        if not isinstance(f, str):
            raise HistoryError(f"{where}: an event needs an :f keyword, got {f!r}")
        args: tuple[Any, ...] = ()
        result: Any = None
        if f in _READS:
            result = value if kind == "ok" else None
        elif f == "cas":
            pair = call.get("value")
            if not isinstance(pair, list) or len(pair) != 2:
                raise HistoryError(f"{where}: :cas takes [old new], got {pair!r}")
            args = tuple(pair)
            result = True if kind == "ok" else None
        else:
            args = (call.get("value"),)
        return Operation(
            process=call["process"], call=float(position), ret=None if end is None else float(end),
            op=f, args=args, result=result, key=call.get("key"),
            error="fail" if kind == "fail" else None,
        )

    position = 0
    for number, event in _events(text, source):
        where = f"{source}, event {number}"
        process = _process(event.get("process"))
        if process is None:
            continue
        event["process"] = process
        kind = event.get("type")
        position += 1
        if kind == "invoke":
            if process in open_calls:
                raise HistoryError(f"{where}: process {process} invokes again before its "
                                   f"call at event {open_calls[process][1]['_number']} completed")
            event["_number"] = number
            open_calls[process] = (position, event)
        elif kind in ("ok", "fail", "info"):
            if process not in open_calls:
                raise HistoryError(f"{where}: a :{kind} for process {process}, which has no open call")
            start, call = open_calls.pop(process)
            if event.get("f") != call.get("f"):
                raise HistoryError(f"{where}: completes :{event.get('f')} but process {process} "
                                   f"invoked :{call.get('f')}")
            end = None if kind == "info" else position
            done.append((start, operation(start, call, end, kind, event.get("value"), where)))
        else:
            raise HistoryError(f"{where}: unknown :type {kind!r} (expected invoke, ok, fail or info)")
    for start, call in open_calls.values():  # never completed: outcome unknown
        done.append((start, operation(start, call, None, "info", None, f"{source}, event "
                                      f"{call['_number']}")))
    done.sort(key=lambda pair: pair[0])
    return [_renumber(op, i) for i, (_, op) in enumerate(done)]


def _renumber(op: Operation, index: int) -> Operation:
    from dataclasses import replace

    return replace(op, index=index)


def suggested_model(ops: Iterable[Operation]) -> str:
    """``kv`` when the operations carry keys, else ``register`` (Knossos's cas-register)."""
    return "kv" if any(op.key is not None for op in ops) else "register"
