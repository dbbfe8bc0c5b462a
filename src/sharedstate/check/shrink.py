"""Shrinking a failing history to a small piece that still fails, for a person to read.

Delta debugging over the operations of one key, with two honesty rules (see
:func:`shrink`): the piece must still fail on its own, and every result in it must
still be explainable by the operations left in it.
"""

from __future__ import annotations

import time
from dataclasses import replace

from .history import Operation
from .model import Model
from .search import linearize


def _fails(ops: list[Operation], model: Model, deadline: float) -> bool | None:
    return linearize(ops, model, deadline).ok is False if ops else False


def _timeless(ops: list[Operation], keep: Operation | None = None) -> list[Operation]:
    """The same operations, all concurrent. With ``keep``: every other operation becomes
    optional with any result (as if it never returned), ``keep`` keeps its result."""
    if keep is None:
        return [replace(op, call=0.0, ret=None if op.pending else 1.0) for op in ops]
    return [
        replace(op, call=0.0, ret=1.0) if op is keep
        else replace(op, call=0.0, ret=None, result=None)
        for op in ops
    ]


def _legal_ignoring_time(ops: list[Operation], model: Model, deadline: float) -> bool:
    return linearize(_timeless(ops), model, deadline).ok is True


def _explainable(ops: list[Operation], model: Model, deadline: float) -> bool:
    """Could each result in ``ops`` have come from some of the other operations?

    Keeps shrinking honest: dropping the write a read saw leaves a piece that fails
    only because the read now "saw" a value nobody wrote.
    """
    for op in ops:
        if op.pending or op.result is None:
            continue
        if linearize(_timeless(ops, keep=op), model, deadline).ok is False:
            return False
    return True


def shrink(
    ops: list[Operation], model: Model, budget: float = 3.0, blocked: Operation | None = None
) -> list[Operation]:
    """A small sub-history that is still not linearizable (greedy, within ``budget`` s).

    First the prefix up to the operation the search got stuck on, then chunks and
    single operations are dropped while the rest still fails and every result in it
    can still be explained by the operations left (see :func:`_explainable`). When
    the failure is one of real-time order alone (some order is legal if time is
    ignored), smaller pieces must keep that property too.
    """
    deadline = time.monotonic() + budget
    piece = sorted(ops, key=lambda o: o.call)
    if blocked is not None:
        cut = [op for op in piece if op.call <= blocked.end]
        if len(cut) < len(piece) and _fails(cut, model, deadline):
            piece = cut
    # a window: the last few operations before the stuck one, if they fail on their own
    size = 4
    while size < len(piece) and time.monotonic() < deadline:
        window = piece[-size:]
        if _fails(window, model, deadline) and _explainable(window, model, deadline):
            piece = window
            break
        size *= 2
    # the shortest failing prefix, by bisection (good enough: failure need not be monotone)
    lo, hi = 1, len(piece)
    while lo < hi and time.monotonic() < deadline:
        mid = (lo + hi) // 2
        if _fails(piece[:mid], model, deadline) and _explainable(piece[:mid], model, deadline):
            hi = mid
        else:
            lo = mid + 1
    if hi < len(piece) and _fails(piece[:hi], model, deadline):
        piece = piece[:hi]
    small_deadline = min(deadline, time.monotonic() + budget / 4)
    keep_timeless = len(piece) <= 40 and _legal_ignoring_time(piece, model, small_deadline)

    def still_fails(candidate: list[Operation]) -> bool:
        if not _fails(candidate, model, deadline):
            return False
        if keep_timeless and not _legal_ignoring_time(candidate, model, deadline):
            return False
        return _explainable(candidate, model, deadline)

    chunk = max(1, len(piece) // 2)
    while time.monotonic() < deadline:
        start = 0
        changed = False
        while start < len(piece) and time.monotonic() < deadline:
            candidate = piece[:start] + piece[start + chunk:]
            if candidate and still_fails(candidate):
                piece = candidate
                changed = True
            else:
                start += chunk
        if chunk == 1 and not changed:
            break
        chunk = max(1, chunk // 2)
    return piece
