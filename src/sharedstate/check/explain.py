"""Words for a failure: which clients, which calls, what they would have returned.

The search records, with ``explain=True``, the deepest partial order it reached and
the states in which each operation was found illegal; this module turns that into
sentences about clients and values, through the model's own ``describe_*`` and
``expected``, so it needs no knowledge of any concrete model.
"""

from __future__ import annotations

import time

from .history import INF, Operation
from .model import UNKNOWN, Model, show
from .search import linearize


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


def explain(piece: list[Operation], model: Model, deadline: float = INF) -> list[str]:
    """Sentences naming, in terms of clients and values, why ``piece`` cannot be ordered."""
    small = len(piece) <= 30
    # without lookahead, every op is tried in every state it meets (better words); with
    # too many orders to try them all, a third of the budget, then with lookahead
    first = min(deadline, time.monotonic() + (deadline - time.monotonic()) / 3) if small else deadline
    result = linearize(piece, model, first, explain=True, lookahead=not small)
    if result.ok is None and small:
        result = linearize(piece, model, deadline, explain=True)
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
    # not None: when both are empty it returned above
    subject: int = max(result.tried_states, key=lambda i: (piece[i].call, i), default=result.blocked)  # type: ignore[assignment]
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
