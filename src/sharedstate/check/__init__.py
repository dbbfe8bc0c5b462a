"""``sharedstate.check``: is this concurrent history linearizable?

Can something go wrong when many clients call a shared object at once? This package answers
it for a recorded history of calls, whatever produced it::

    from sharedstate.check import check_history, read_history

    result = check_history(read_history("calls.jsonl"), "counter", time_budget=10)
    result.verdict        # "linearizable", "violation" or "unknown"
    result.violation      # the smallest failing piece found, and why, in words

The parts, as in Porcupine's model / search / visualization split:

* model.py: the interface a sequential specification gives the search;
* models/: the specifications (counter and its direct check, register, kv, object:);
* search.py: Wing & Gong's search with Lowe's memoization; it knows no concrete model;
* shrink.py and explain.py: a failure made small, and said in words;
* history.py (JSON Lines) and formats/ (Jepsen EDN, Porcupine JSON): histories in;
* report.py: the HTML timeline; record.py: recording from HTTP or a shared object.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .explain import explain
from .history import HistoryError, Operation, operation_from_dict, read_history, write_history
from .model import Model
from .models import CounterStats, model_from_spec, model_spec
from .search import linearize
from .shrink import shrink

__all__ = [
    "CheckResult",
    "HistoryError",
    "Operation",
    "Violation",
    "check_history",
    "read_history",
    "write_history",
]

LINEARIZABLE = "linearizable"
VIOLATION = "violation"
UNKNOWN = "unknown"

EXIT_CODES = {LINEARIZABLE: 0, VIOLATION: 1, UNKNOWN: 2}


@dataclass
class Violation:
    """Where a history fails: the key, the smallest failing piece found, and why."""

    key: Any
    operations: list[Operation]
    sentences: list[str]


@dataclass
class CheckResult:
    """The verdict on a history, with what a person needs to act on it."""

    verdict: str
    model: str
    operations: list[Operation]
    elapsed: float
    partitions: int
    violation: Violation | None = None
    unknown_keys: list[Any] = field(default_factory=list)
    counter: CounterStats | None = None

    @property
    def ok(self) -> bool:
        return self.verdict == LINEARIZABLE

    @property
    def exit_code(self) -> int:
        """0 linearizable, 1 violation, 2 unknown within the time budget."""
        return EXIT_CODES[self.verdict]


def _partitions(ops: list[Operation]) -> list[tuple[Any, list[Operation]]]:
    groups: dict[Any, list[Operation]] = {}
    for op in ops:
        groups.setdefault(op.key, []).append(op)
    return sorted(groups.items(), key=lambda kv: (len(kv[1]), repr(kv[0])))


def check_history(
    history: Iterable[Operation | dict[str, Any]],
    model: str | Model = "counter",
    *,
    time_budget: float = 60.0,
    explain_failure: bool = True,
    shrink_budget: float = 3.0,
) -> CheckResult:
    """Check ``history`` against ``model`` within ``time_budget`` seconds.

    Each key is checked on its own (a history is linearizable iff every key's is).
    A model with a direct check (the counter) uses it and falls back to the search
    when it does not apply. On a violation, the failing key's history is shrunk to
    a small piece that still fails, and explained in words.
    """
    started = time.monotonic()
    deadline = started + time_budget
    spec = model_from_spec(model)
    ops = [
        h if isinstance(h, Operation) else operation_from_dict(h, index=i)
        for i, h in enumerate(history)
    ]
    for op in ops:
        spec.validate(op)
    parts = _partitions(ops)
    result = CheckResult(LINEARIZABLE, model_spec(spec), ops, 0.0, len(parts))
    for key, part in parts:
        direct = spec.direct_check(part)
        if direct is not None:
            if len(parts) == 1:
                result.counter = direct.stats
            if not direct.ok:
                result.verdict = VIOLATION
                result.violation = Violation(key, direct.witness, direct.sentences)
                break
            continue
        found = linearize(part, spec, deadline)
        if found.ok is not True and not spec.hints_held():
            spec = spec.without_hints()  # a shortcut proved wrong: decide without any
            found = linearize(part, spec, deadline)
        if found.ok is None:
            result.unknown_keys.append(key)
            continue
        if not found.ok:
            result.verdict = VIOLATION
            result.violation = _explain(part, spec, key, explain_failure, shrink_budget)
            break
    if result.verdict == LINEARIZABLE and result.unknown_keys:
        result.verdict = UNKNOWN
    result.elapsed = time.monotonic() - started
    return result


def _explain(
    part: list[Operation], model: Model, key: Any, wanted: bool, budget: float
) -> Violation:
    if not wanted:
        return Violation(key, [], ["The history is not linearizable."])
    first = linearize(part, model, time.monotonic() + budget, explain=True)
    blocked = part[first.blocked] if first.blocked is not None else None
    piece = shrink(part, model, budget, blocked=blocked)
    sentences = explain(piece, model, time.monotonic() + budget)
    if key is not None:
        sentences[0] = f"On key {key!r}: {sentences[0][0].lower()}{sentences[0][1:]}"
    return Violation(key, sorted(piece, key=lambda o: o.call), sentences)
