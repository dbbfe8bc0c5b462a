"""The linearizability search; it knows no concrete model, only :class:`Model`.

The search is Wing & Gong's, with Lowe's improvements, as in Porcupine and Knossos:

* Call and return events sit in one doubly linked list in time order. An operation
  can be linearized next when its call comes before every remaining return (it is
  in the list's prefix of calls). Linearizing it *lifts* its call and return out of
  the list; backtracking *unlifts* them, in O(1).
* Memoization: ``(bitset of linearized operations, model state)`` pairs already
  explored are never explored again. The bitset is a Python int.
* Lookahead: a model may give a *guard* for an operation that must still be
  linearized: a quick test that the current state can still lead to what it
  returned (a register read with no write left that could precede it must see the
  current value; with only appends left, a prefix of it). Checked at each new level
  for the earliest-returning guarded operation left, it cuts off orders the memo alone
  would enumerate (all the orders of appends a later put overwrites).
* Pure reads (an operation that never changes the state) that are legal now are
  linearized at once, with no branch point: if any linearization exists, one with
  the read first exists too (move it to the front; nothing after it sees a
  difference, and nothing had to precede it). This prunes most of the search on
  read-heavy histories.

Partitioning by key happens before the search (in ``check_history``): a history is
linearizable iff each key's sub-history is (Herlihy & Wing's locality).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .history import INF, Operation
from .model import ILLEGAL, Model

#: how many of the earliest-returning guarded operations still to come test each level
LOOKAHEAD = 3


@dataclass
class SearchResult:
    """``ok`` is True (linearizable), False (not), or None (the time budget ran out)."""

    ok: bool | None
    order: list[int] = field(default_factory=list)  # a linearization, when ok
    deepest: list[int] = field(default_factory=list)  # longest linearizable prefix seen
    blocked: int | None = None  # the op whose return was reached at the deepest point
    tried_states: dict[int, list[Any]] = field(default_factory=dict)  # op -> states it failed in
    steps: int = 0


def linearize(
    ops: list[Operation],
    model: Model,
    deadline: float = INF,
    explain: bool = False,
    compiled: list[tuple[Callable[[Any], Any], bool]] | None = None,
    lookahead: bool = True,
) -> SearchResult:
    """Decide whether ``ops`` (one partition) is linearizable with respect to ``model``.

    With ``explain``, also records the deepest partial linearization and the states
    in which each operation was found illegal, for the words of a report.
    ``lookahead=False`` turns the model's guards off.
    """
    n = len(ops)
    if n == 0:
        return SearchResult(True)
    if compiled is None:
        compiled = [model.compile(op) for op in ops]
    steps = [c[0] for c in compiled]
    pure = [c[1] for c in compiled]
    # to say what an op would have returned, explain wants every op tried in every state
    # it meets: lookahead=False then (affordable on small pieces only)
    guards = (model.guards(ops) if lookahead else None) or []
    gorder = sorted((i for i, g in enumerate(guards) if g is not None), key=lambda i: ops[i].end)
    gprefix = [0]
    for i in gorder:
        gprefix.append(gprefix[-1] | 1 << i)

    # Node 2i is op i's call, 2i+1 its return; node 2n is the head. Calls sort before
    # returns at equal times: intervals are closed, so touching operations overlap.
    events = [(op.call, 0, 2 * i) for i, op in enumerate(ops)]
    events += [(op.end, 1, 2 * i + 1) for i, op in enumerate(ops)]
    events.sort()
    head = 2 * n
    nxt = [-1] * (2 * n + 1)
    prv = [-1] * (2 * n + 1)
    last = head
    for _, _, node in events:
        nxt[last] = node
        prv[node] = last
        last = node

    bits = [1 << i for i in range(n)]
    cache: set[tuple[int, Any]] = set()
    stack: list[tuple[int, Any, int, bool]] = []  # (call node, state before, lin before, forced)
    state = model.init()
    lin = 0
    counter = 0
    best = -1
    result = SearchResult(False)
    tried: dict[int, list[Any]] = defaultdict(list)
    clock = time.monotonic

    level = True  # arrived at a new level: look for a legal pure read first
    entry = -1
    while True:
        counter += 1
        if counter & 1023 == 0 and clock() > deadline:
            result.ok = None
            break
        dead = False
        if level:
            level = False
            entry = nxt[head]
            if entry == -1:
                result.ok = True
                result.order = [s[0] >> 1 for s in stack]
                break
            node = entry
            while not node & 1:  # the calls before the first return
                i = node >> 1
                if pure[i]:
                    new = steps[i](state)
                    if new is not ILLEGAL:
                        key = (lin | bits[i], new)
                        if key in cache:
                            dead = True  # explored from here before, and it failed
                        else:
                            cache.add(key)
                            stack.append((node, state, lin, True))
                            state = new
                            lin |= bits[i]
                            _lift(node, nxt, prv)
                            level = True
                        break
                    if explain:
                        tried[i].append(state)
                node = nxt[node]
            if level:
                continue
            if gorder and not dead:
                # Lookahead: the earliest-returning read still to come constrains
                # this state (bisect for the first guarded op not yet linearized).
                unlin = ~lin
                lo, hi = 0, len(gorder)
                while lo < hi:
                    mid = (lo + hi + 1) >> 1
                    if gprefix[mid] & unlin:
                        hi = mid - 1
                    else:
                        lo = mid
                checked = 0
                while lo < len(gorder) and checked < LOOKAHEAD:
                    i = gorder[lo]
                    lo += 1
                    if not lin & bits[i]:
                        checked += 1
                        if not guards[i](state, lin):  # type: ignore[misc]  # gorder: set guards only
                            dead = True
                            break
        if not dead:
            if not entry & 1:
                i = entry >> 1
                if not pure[i]:  # pure reads were tried by the pass above
                    new = steps[i](state)
                    if new is not ILLEGAL:
                        nlin = lin | bits[i]
                        key = (nlin, new)
                        if key not in cache:
                            cache.add(key)
                            stack.append((entry, state, lin, False))
                            state = new
                            lin = nlin
                            _lift(entry, nxt, prv)
                            level = True
                            continue
                    elif explain:
                        tried[i].append(state)
                entry = nxt[entry]
                continue
            # A return reached: its operation had to be linearized before it, and wasn't.
            if explain and len(stack) > best:
                best = len(stack)
                result.deepest = [s[0] >> 1 for s in stack]
                result.blocked = entry >> 1
        forced = True
        while forced:
            if not stack:
                result.ok = False
                result.steps = counter
                result.tried_states = dict(tried)
                return result
            node, state, lin, forced = stack.pop()
            _unlift(node, nxt, prv)
        entry = nxt[node]
    result.steps = counter
    result.tried_states = dict(tried)
    return result


def _lift(call: int, nxt: list[int], prv: list[int]) -> None:
    p, q = prv[call], nxt[call]
    nxt[p] = q
    prv[q] = p  # a call's own return follows it, so q is never the end
    ret = call + 1
    p, q = prv[ret], nxt[ret]
    nxt[p] = q
    if q != -1:
        prv[q] = p


def _unlift(call: int, nxt: list[int], prv: list[int]) -> None:
    ret = call + 1
    p, q = prv[ret], nxt[ret]
    nxt[p] = ret
    if q != -1:
        prv[q] = ret
    p, q = prv[call], nxt[call]
    nxt[p] = call
    prv[q] = call
