"""The linearizability search, the counter's direct check, and shrinking a failure.

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

import bisect
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .history import INF, Operation
from .models import ILLEGAL, UNKNOWN, Model, show

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
                        if not guards[i](state, lin):
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


# --------------------------------------------------------------------------- words


def client(op: Operation) -> str:
    return f"client {op.process}"


def returned(op: Operation, model: Model) -> str:
    """``incr() returned 42`` / ``write(3)`` / ``incr() never returned``."""
    text = model.describe_op(op)
    if op.pending:
        return f"{text}, which never returned"
    if op.error is not None:
        return f"{text}, which raised {op.error}"
    if op.result is None and op.op in ("write", "put", "append", "set"):
        return text
    return f"{text} that returned {show(op.result)}"


# --------------------------------------------------------------- counter direct check


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


# -------------------------------------------------------------------- shrinking


def _fails(ops: list[Operation], model: Model, deadline: float) -> bool | None:
    return linearize(ops, model, deadline).ok is False if ops else False


def _timeless(ops: list[Operation], keep: Operation | None = None) -> list[Operation]:
    """The same operations, all concurrent. With ``keep``: every other operation becomes
    optional with any result (as if it never returned), ``keep`` keeps its result."""
    from dataclasses import replace

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


def explain(piece: list[Operation], model: Model, deadline: float = INF) -> list[str]:
    """Sentences naming, in terms of clients and values, why ``piece`` cannot be ordered."""
    result = linearize(piece, model, deadline, explain=True, lookahead=len(piece) > 30)
    if result.ok is not False:
        return ["The checker could not finish explaining this failure within its time budget."]
    clients = sorted({str(op.process) for op in piece}, key=lambda s: (len(s), s))
    these = "This operation" if len(piece) == 1 else f"These {len(piece)} operations"
    who = f"client {clients[0]}" if len(clients) == 1 else f"clients {', '.join(clients)}"
    sentences = [
        f"{these}, from {who}, cannot be put in any order that respects real time and "
        f"the {model.name} model."
    ]
    if result.blocked is None and not result.tried_states:
        return sentences
    # Speak of the latest-called operation found illegal somewhere (usually the read
    # that saw the impossible value), else of the one the search got stuck on.
    subject = max(result.tried_states, key=lambda i: (piece[i].call, i), default=result.blocked)
    x = piece[subject]
    before = [op for op in piece if op.end < x.call]
    text = f"{client(x)}'s {returned(x, model)}"
    if before:
        names = [f"{client(op)}'s {returned(op, model)}" for op in before[-3:]]
        if len(before) > 3:
            names.insert(0, f"{len(before) - 3} more")
        joined = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
        text += f", after {joined} had finished"
    states = result.tried_states.get(subject, [])
    expected: list[str] = []
    for state in states:
        value = model.expected(x, state)
        words = show(value) if value is not UNKNOWN else model.describe_state(state)
        if words not in expected:
            expected.append(words)
    if expected and all(model.expected(x, s) is not UNKNOWN for s in states[:1]):
        text += f"; wherever it could take effect it would have returned {' or '.join(expected[:4])}"
    elif expected:
        text += f"; wherever it could take effect {' or '.join(expected[:4])}"
    else:
        text += "; no order of the operations before it lets it take effect"
    sentences.append(text + ".")
    return sentences
