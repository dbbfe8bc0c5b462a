"""Judging a faulted run: what each call's outcome claims, against what the store holds.

Why two judges: ``sharedstate check`` (the counter model) says whether the history is
linearizable at all; the accounting here says *which* calls took effect. Every call of
the workload adds an amount no other call adds, so the values the acknowledged calls
returned, and the final value, chain up through exactly the unacknowledged calls that
were applied. From that chain:

* every acknowledged value is unique, and the chain through them ends at the final value
  (nothing acknowledged lost, nothing applied twice);
* a call that raised a did-not-happen error (any ``SharedStateError`` but
  ``OutcomeUnknownError``) is never part of it: its error would be a lie;
* the final value lies between the acknowledged sum and that plus the unknown calls' sum.

Beside these: every call ended within its ``?timeout=`` + 10%, and each
``OutcomeUnknownError`` came from a call whose deadline fell while the store was
unreachable (the fault window, plus ``SLACK`` seconds for the store to be reconnected).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sharedstate.check import check_history

from .harness import Run

OK, DID_NOT_HAPPEN, UNKNOWN, FOREIGN, HUNG = "ok", "did-not-happen", "unknown", "foreign", "hung"
MAYBE = {UNKNOWN, FOREIGN, HUNG}  # outcomes that leave open whether the call took effect
GRACE = 1.10  # a call must end within its timeout + 10%
SLACK = 1.0  # seconds after the heal the store may still count as unreachable


def kind(call: dict[str, Any]) -> str:
    if call["end"] is None:
        return HUNG
    if call["outcome"] == "ok":
        return OK
    if call["outcome"] == "OutcomeUnknownError":
        return UNKNOWN
    return DID_NOT_HAPPEN if call.get("family") else FOREIGN


def describe(call: dict[str, Any]) -> str:
    took = "never ended" if call["end"] is None else f"{call['end'] - call['start']:.2f} s"
    outcome = call["outcome"] if call["end"] is not None else "-"
    text = f"{call['process']} {call['key']}+{call['amount']} -> {outcome} ({took})"
    if call.get("message") and outcome != "ok":
        text += f": {call['message'][:120]}"
    return text


@dataclass
class Verdict:
    counts: Counter[str]
    problems: list[str] = field(default_factory=list)
    applied_unknown: int = 0
    applied_refused: int = 0  # did-not-happen errors whose call took effect: lies
    worst: float = 0.0  # the longest call, as a multiple of the timeout

    def summary(self) -> dict[str, Any]:
        return {**{k: self.counts.get(k, 0) for k in (OK, DID_NOT_HAPPEN, UNKNOWN, FOREIGN, HUNG)},
                "applied_unknown": self.applied_unknown, "applied_refused": self.applied_refused,
                "worst": round(self.worst, 2)}


def _subset(candidates: list[dict[str, Any]], total: int, budget: int = 200_000) -> list | None:
    """Some candidates whose amounts sum to ``total`` (amounts are distinct and random, so
    the subset found is, in practice, the one that was applied); None if there is none."""
    for call in candidates:  # most gaps are one call: found at once
        if call["amount"] == total:
            return [call]
    items = sorted(candidates, key=lambda c: -c["amount"])
    suffix = [0] * (len(items) + 1)
    for i in range(len(items) - 1, -1, -1):
        suffix[i] = suffix[i + 1] + items[i]["amount"]
    nodes = 0

    def search(i: int, left: int) -> list | None:
        nonlocal nodes
        nodes += 1
        if left == 0:
            return []
        if i == len(items) or suffix[i] < left or nodes > budget:
            return None
        if items[i]["amount"] <= left:
            rest = search(i + 1, left - items[i]["amount"])
            if rest is not None:
                return [items[i], *rest]
        return search(i + 1, left)

    return search(0, total)


def account(key: str, calls: list[dict[str, Any]], final: int | None,
            final_end: float) -> tuple[list[str], set[str]]:
    """The chain of one key; returns the problems and the ids of the unacknowledged calls
    that took effect (all those of unknown outcome when the final value was not read)."""
    problems: list[str] = []
    acked = sorted((c for c in calls if kind(c) == OK), key=lambda c: c["value"])
    seen = Counter(c["value"] for c in acked)
    twice = sorted(v for v, n in seen.items() if n > 1)
    if twice:
        problems.append(f"{key}: {len(twice)} values returned to more than one call, e.g. {twice[:3]}")
    maybe = [c for c in calls if kind(c) in MAYBE]
    low = sum(c["amount"] for c in acked)
    high = low + sum(c["amount"] for c in maybe)
    if final is None:
        return problems, {c["id"] for c in maybe}
    if not low <= final <= high:
        problems.append(f"{key}: final value {final} outside [acknowledged {low}, acknowledged + "
                        f"unknown {high}]: " + ("an acknowledged call was lost" if final < low
                                                else "something was applied that should not be"))
    pool = [c for c in calls if kind(c) in MAYBE or kind(c) == DID_NOT_HAPPEN]
    used: set[str] = set()
    applied: set[str] = set()
    value = 0
    steps = [(c["value"] - c["amount"], c) for c in acked if seen[c["value"]] == 1]
    for pre, call in [*steps, (final, None)]:
        if len(problems) > 20:
            problems.append(f"{key}: more problems not listed")
            break
        gap = pre - value
        if gap < 0:
            where = describe(call) if call else f"the final value {final}"
            problems.append(f"{key}: {where} starts from {pre}, below {value} that an earlier "
                            "call had reached: an update was lost or applied twice")
        elif gap > 0:
            # a call can only have been applied after it began; not "before it returned",
            # since a write that raised (truthfully or not) may land later
            limit = call["end"] if call else final_end
            fits = [c for c in pool if c["id"] not in used and c["start"] < limit]
            filled = _subset([c for c in fits if kind(c) in MAYBE], gap)
            if filled is None:
                filled = _subset(fits, gap)
                if filled is None:
                    problems.append(f"{key}: {gap} added between {value} and {pre} by no call "
                                    "that may have taken effect: a call was applied twice or "
                                    "the state was corrupted")
                    filled = []
                for liar in (c for c in filled if kind(c) == DID_NOT_HAPPEN):
                    problems.append(f"{key}: took effect although it raised a did-not-happen "
                                    f"error: {describe(liar)}")
            used.update(c["id"] for c in filled)
            applied.update(c["id"] for c in filled)
        if call is not None:
            value = call["value"]
    return problems, applied


def history(run: Run, dropped: Collection[str] = ()) -> list[dict[str, Any]]:
    """The run as a ``sharedstate check`` history (JSON Lines form, counter model): an
    acknowledged call has its result, a did-not-happen call its error (the model treats
    it as changing nothing), an unknown or unfinished call ``"return": null``; the calls
    in ``dropped`` are left out."""
    ops: list[dict[str, Any]] = []
    for call in run.calls:
        if call["id"] in dropped:
            continue
        what = kind(call)
        op = {"process": call["process"], "call": call["start"], "return": call["end"],
              "op": "incr", "args": [call["amount"]], "result": None, "key": call["key"]}
        if what == OK:
            op["result"] = call["value"]
        elif what == DID_NOT_HAPPEN:
            op["error"] = call["outcome"]
        else:
            op["return"] = None
        ops.append(op)
    for key, (start, end, value) in run.finals.items():
        if value is not None:
            ops.append({"process": "final", "call": start, "return": end, "op": "get",
                        "args": [], "result": value, "key": key})
    return ops


def judge(run: Run, directory: Path, check_budget: float = 30.0) -> Verdict:
    verdict = Verdict(Counter(kind(c) for c in run.calls))
    problems = verdict.problems
    limit = run.timeout * GRACE
    durations = [(c["end"] - c["start"], c) for c in run.calls if c["end"] is not None]
    verdict.worst = max((d for d, _ in durations), default=0.0) / run.timeout
    late = sorted((d for d in durations if d[0] > limit), key=lambda d: -d[0])
    if late:
        problems.append(f"{len(late)} calls ended after their timeout {run.timeout:g} s + 10%; "
                        "slowest: " + "; ".join(describe(c) for _, c in late[:3]))
    hung = [c for c in run.calls if kind(c) == HUNG]
    if hung:
        problems.append(f"{len(hung)} calls never ended (their processes were killed "
                        f"{run.timeout * GRACE + 5:g} s after the run): {describe(hung[0])}")
    foreign = Counter(c["outcome"] for c in run.calls if kind(c) == FOREIGN)
    if foreign:
        problems.append(f"errors outside the SharedStateError family: {dict(foreign)}")
    def unreachable_at_deadline(call: dict[str, Any]) -> bool:
        deadline = call["start"] + run.timeout
        return any(began <= call["start"] + limit and deadline <= healed + SLACK
                   for began, healed in run.windows)

    wrong = [c for c in run.calls if kind(c) == UNKNOWN and not unreachable_at_deadline(c)]
    if wrong:
        spans = ", ".join(f"{b:.2f}..{h:.2f}" for b, h in run.windows) or "never"
        problems.append(f"{len(wrong)} OutcomeUnknownError while the store was reachable at the "
                        f"deadline (store unreachable {spans}): {describe(wrong[0])}")
    healed = max((h for _, h in run.windows), default=-math.inf)
    problems.extend(run.final_errors)
    if run.killed_processes:
        problems.append(f"{run.killed_processes} client processes did not end within the "
                        "timeout + 10% + 5 s after the workload stopped, and were killed")
    resolved: set[str] = set()  # calls of unknown outcome that the chain shows did not apply
    for key in ("acct", "hits"):
        calls = [c for c in run.calls if c["key"] == key]
        if not any(kind(c) == OK and c["start"] > healed + limit for c in calls):
            problems.append(f"{key}: no call succeeded after the fault was healed")
        _, final_end, final = run.finals.get(key, (0.0, math.inf, None))
        found, applied = account(key, calls, final, final_end)
        problems.extend(found)
        verdict.applied_unknown += sum(kind(c) == UNKNOWN and c["id"] in applied for c in calls)
        verdict.applied_refused += sum(kind(c) == DID_NOT_HAPPEN and c["id"] in applied
                                       for c in calls)
        resolved |= {c["id"] for c in calls if kind(c) in MAYBE and c["id"] not in applied}
    problems.extend(linearizability(run, directory, resolved, check_budget))
    return verdict


def linearizability(run: Run, directory: Path, unapplied: set[str], budget: float) -> list[str]:
    """``sharedstate check`` on the history, counter model.

    A pending increment that did not apply costs the search a branch at every point after
    its call (20 of them took 27 s here), so the history is first checked with the calls
    the accounting found unapplied left out. That is sound: leaving a pending call out is
    one of the choices the full check may make, so a linearization of the smaller
    history is one of the full history. Only if it fails is the full history searched.
    """
    full = history(run)
    (directory / "history.jsonl").write_text("".join(json.dumps(op) + "\n" for op in full))
    if unapplied:
        result = check_history(history(run, unapplied), "counter", time_budget=budget)
        if result.ok:
            return []
    result = check_history(full, "counter", time_budget=budget)
    if result.ok:
        return []
    why = " ".join(result.violation.sentences) if result.violation else ""
    return [f"sharedstate check: {result.verdict} {why} (re-check: sharedstate check "
            f"--history {directory / 'history.jsonl'} --model counter)"]
