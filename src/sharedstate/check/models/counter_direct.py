"""The counter's direct check: a counter history decided in O(n log n), without search.

When every operation is ``incr n`` (n >= 1) or ``get``, the counter only grows, so
each completed call's result fixes its place in the order; what is left is
arithmetic on those places (see :func:`check_counter`). It also counts what a person
hammering a counter endpoint asks about (duplicates, skipped numbers, calls out of
real-time order), which is why ``sharedstate demo`` uses it too.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from ..explain import client, returned
from ..history import INF, Operation
from ..model import Model, show


@dataclass
class CounterStats:
    """What a hammered counter endpoint did, in the numbers a person asks about."""

    requests: int = 0
    completed: int = 0
    pending: int = 0
    unique: int = 0
    duplicated_values: int = 0  # numbers returned more than once
    duplicate_responses: int = 0  # responses beyond the first for those numbers
    skipped: int = 0  # numbers in the observed range no completed call returned
    order_violations: int = 0  # calls that got a lower number than one already finished
    lowest: int | None = None
    highest: int | None = None


@dataclass
class DirectVerdict:
    ok: bool
    witness: list[Operation] = field(default_factory=list)
    sentences: list[str] = field(default_factory=list)
    stats: CounterStats | None = None


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_counter(ops: list[Operation], initial: int = 0) -> DirectVerdict | None:
    """Decide a counter history directly, in O(n log n); None when it does not apply.

    Applies when every operation is ``incr n`` (n >= 1) or ``get``, and pending
    increments (if any) all add 1. Then the state only grows, so each completed
    call's result fixes its place in the order: ``incr`` returning v is the step to v,
    ``get`` returning v sits between that step and the next. The history is
    linearizable iff (1) no two increments share a result, (2) the results chain
    (each ``incr n`` returned v found the counter at v-n, which a completed or pending
    increment produced), and (3) that order never puts a call before one that had
    finished before it began. Numbers no completed call returned ("gaps") need a
    pending increment each, one that began before every later-placed call finished:
    with nested deadlines, Hall's condition reduces to matching sorted call times to
    sorted gap deadlines.
    """
    done_incr: list[Operation] = []
    pending_incr: list[Operation] = []
    gets: list[Operation] = []
    unit = True
    for op in ops:
        if op.error is not None:
            continue  # a call that raised changed nothing
        if op.op == "incr":
            amount = op.args[0] if op.args else 1
            if not _int(amount) or amount < 1:
                return None
            unit = unit and amount == 1
            (pending_incr if op.pending else done_incr).append(op)
        elif op.op == "get":
            if not op.pending:
                gets.append(op)
        else:
            return None
    if pending_incr and not unit:
        return None
    for op in done_incr + gets:
        if not _int(op.result):
            return DirectVerdict(
                False, [op], [f"{client(op)}'s {op.op}() returned {show(op.result)}, not a number."]
            )
    if unit:
        return _check_unit_counter(done_incr, pending_incr, gets, initial)
    return _check_chain_counter(done_incr, gets, initial)


def _check_unit_counter(
    done: list[Operation], pending: list[Operation], gets: list[Operation], initial: int
) -> DirectVerdict:
    stats = CounterStats(
        requests=len(done) + len(pending) + len(gets),
        completed=len(done) + len(gets),
        pending=len(pending),
    )
    by_value: dict[int, list[Operation]] = defaultdict(list)
    for op in done:
        by_value[op.result].append(op)
    stats.unique = len(by_value)
    if by_value:
        stats.lowest, stats.highest = min(by_value), max(by_value)
    dups = sorted(v for v, group in by_value.items() if len(group) > 1)
    stats.duplicated_values = len(dups)
    stats.duplicate_responses = sum(len(by_value[v]) - 1 for v in dups)
    top = max([initial, *by_value, *(g.result for g in gets)])
    in_range = sum(1 for v in by_value if initial < v <= top)
    gap_count = (top - initial) - in_range
    stats.skipped = gap_count

    failures: list[DirectVerdict] = []
    # Positions: the step to value v is at 2(v-initial)-1; reads of v at 2(v-initial).
    placed = [(2 * (op.result - initial) - 1, op) for op in done]
    placed += [(2 * (op.result - initial), op) for op in gets]
    order_failure, stats.order_violations = _order_violations(placed)

    low = [op for op in done if op.result <= initial] + [g for g in gets if g.result < initial]
    if low:
        op = min(low, key=lambda o: o.call)
        failures.append(DirectVerdict(False, [op], [
            f"{client(op)}'s {op.op}() returned {op.result}, but the counter starts at "
            f"{initial} and only grows{'; every incr adds 1' if op.op == 'incr' else ''}."
        ]))
    if dups:
        group = sorted(by_value[dups[0]], key=lambda o: o.call)
        a, b = group[0], group[1]
        if a.end < b.call:
            text = (
                f"{client(b)} got {b.result} from incr() after {client(a)}'s call that "
                f"returned {a.result} had finished: each number can be returned only once."
            )
        else:
            text = (
                f"{client(a)} and {client(b)} both got {a.result} from incr(), in overlapping "
                f"calls: each number can be returned only once."
            )
        if len(dups) > 1:
            text += f" ({len(dups)} numbers were returned more than once.)"
        failures.append(DirectVerdict(False, [a, b], [text]))
    if gap_count > len(pending):
        hi = max([*done, *gets], key=lambda o: (o.result, -o.call))
        made = len(done) + len(pending)
        gaps = _first_gaps(by_value, initial, top, 5)
        never = f" ({len(pending)} of them never returned)" if pending else ""
        text = (
            f"{client(hi)}'s {hi.op}() returned {hi.result}, but only {_n(made, 'increment')} "
            f"were made{never}, so the counter cannot have passed {initial + made}: "
            f"{_n(gap_count, 'number')} skipped, no call returned "
            f"{', '.join(map(str, gaps))}{' ...' if gap_count > len(gaps) else ''}."
        )
        failures.append(DirectVerdict(False, [hi], [text]))
    if order_failure is not None:
        failures.append(order_failure)
    if not failures and gap_count:
        gap_failure = _match_gaps(by_value, placed, pending, initial, top)
        if gap_failure is not None:
            failures.append(gap_failure)
    if failures:
        first = failures[0]
        first.stats = stats
        return first
    return DirectVerdict(True, stats=stats)


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _first_gaps(by_value: dict[int, Any], initial: int, top: int, limit: int) -> list[int]:
    gaps: list[int] = []
    for v in range(initial + 1, top + 1):
        if v not in by_value:
            gaps.append(v)
            if len(gaps) == limit:
                break
    return gaps


def _order_violations(placed: list[tuple[int, Operation]]) -> tuple[DirectVerdict | None, int]:
    """Calls placed before a call that had finished before they began.

    Scans positions from the top, keeping the earliest return among calls placed
    strictly later; a call that began after that return is out of real-time order.
    """
    placed = sorted(placed, key=lambda p: -p[0])
    earliest: Operation | None = None
    count = 0
    witness: tuple[Operation, Operation] | None = None
    i = 0
    while i < len(placed):
        j = i
        while j < len(placed) and placed[j][0] == placed[i][0]:
            j += 1
        group = [op for _, op in placed[i:j]]
        if earliest is not None:
            for op in group:
                if earliest.end < op.call:
                    count += 1
                    if witness is None or op.call < witness[0].call:
                        witness = (op, earliest)
        for op in group:
            if earliest is None or op.end < earliest.end:
                earliest = op
        i = j
    if witness is None:
        return None, count
    a, b = witness
    if a.op == "get" and b.op == "incr":
        why = "a read cannot see an older value once a newer one was returned"
    elif a.op == "incr" and b.op == "get":
        why = f"the counter was already at {b.result}, so incr() had to return more"
    elif a.op == "get":
        why = "the counter never goes down"
    else:
        why = "a later call cannot get a smaller number"
    text = (
        f"{client(a)} got {a.result} from {a.op}() after {client(b)}'s {b.op}() that "
        f"returned {b.result} had finished: {why}."
    )
    if count > 1:
        text += f" ({count} calls were out of real-time order.)"
    return DirectVerdict(False, [b, a], [text]), count


def _match_gaps(
    by_value: dict[int, list[Operation]],
    placed: list[tuple[int, Operation]],
    pending: list[Operation],
    initial: int,
    top: int,
) -> DirectVerdict | None:
    """Each skipped number needs its own pending increment that began in time."""
    # suffix minimum of return times over positions, to get each gap's deadline
    placed = sorted(placed, key=lambda p: p[0])
    suffix: list[tuple[float, Operation | None]] = [(INF, None)] * (len(placed) + 1)
    for k in range(len(placed) - 1, -1, -1):
        op = placed[k][1]
        suffix[k] = min(suffix[k + 1], (op.end, op), key=lambda t: t[0])
    positions = [p for p, _ in placed]
    calls = sorted(op.call for op in pending)

    k = 0
    for v in range(initial + 1, top + 1):
        if v in by_value:
            continue
        pos = 2 * (v - initial) - 1
        deadline, by = suffix[bisect.bisect_right(positions, pos)]
        if calls[k] > deadline:
            assert by is not None
            return DirectVerdict(False, [by], [
                f"No call returned {v}, yet {client(by)}'s {by.op}() returned {by.result}; "
                f"of the {_n(len(pending), 'call')} that never returned (and so might have "
                f"taken {v}), too few began before {client(by)}'s call had finished."
            ])
        k += 1
    return None


def _check_chain_counter(done: list[Operation], gets: list[Operation], initial: int) -> DirectVerdict:
    """Increments of various sizes, none pending: the results must chain from the start."""
    stats = CounterStats(requests=len(done) + len(gets), completed=len(done) + len(gets))
    chain = sorted(done, key=lambda o: o.result)
    level = {initial: 0}
    before = initial
    prev: Operation | None = None
    for index, op in enumerate(chain, start=1):
        amount = op.args[0] if op.args else 1
        start = op.result - amount
        if prev is not None and op.result == prev.result:
            return DirectVerdict(False, [prev, op], [
                f"{client(prev)} and {client(op)} both got {op.result} from incr(): "
                f"each number can be returned only once."
            ], stats)
        if start != before:
            what = (
                f"but {client(prev)}'s {returned(prev, Model())} left it at {before}"
                if prev is not None else f"but the counter starts at {initial}"
            )
            return DirectVerdict(False, [o for o in (prev, op) if o is not None], [
                f"{client(op)}'s incr({amount}) returned {op.result}, so the counter was "
                f"{start} before it, {what}, and no other increment lies between."
            ], stats)
        level[op.result] = index
        before = op.result
        prev = op
    for g in gets:
        if g.result not in level:
            return DirectVerdict(False, [g], [
                f"{client(g)}'s get() returned {g.result}, a value the counter never held "
                f"(its increments went through {', '.join(map(str, list(level)[:8]))}"
                f"{' ...' if len(level) > 8 else ''})."
            ], stats)
    placed = [(2 * level[op.result] - 1, op) for op in done]
    placed += [(2 * level[g.result], g) for g in gets]
    failure, stats.order_violations = _order_violations(placed)
    if failure is not None:
        failure.stats = stats
        return failure
    return DirectVerdict(True, stats=stats)
