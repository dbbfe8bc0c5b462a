"""Benchmark of ``sharedstate check``: the built-in models, and the user's own class.

Generates, deterministically from a seed, the histories the checker must decide fast,
and times it on each:

* key-value histories with 10, 50 and 200 clients (40 operations each: get, put and
  append; on 10 keys, the shape of Porcupine's ``c50`` test; 200 clients on 40 keys,
  the same clients per key, and on 20 keys, twice as many),
  checked with the built-in ``kv`` model and with the same semantics written as a
  plain class (:class:`Str`, through the ``object:`` model), with the ratio of the two;
* a 10,000-operation counter history (incr and get, 100 clients, a few timeouts);
* a "bad" copy of each, with one result made stale or duplicated, which must fail.

Usage::

    .venv/bin/python benchmarks/check_bench.py [--seed 1] [--repeat 3] [--porcupine DIR]

``--porcupine DIR`` also times Porcupine's ``test_data/kv`` histories (c01/c10/c50 ok and
bad, Jepsen EDN read as ``--format jepsen --model 'kv:""'``; not shipped with sharedstate). The generators are
imported by the test suite, which checks the verdicts (not the times) on the same
histories.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from sharedstate.check import Operation, check_history  # noqa: E402
from sharedstate.check.formats import read_jepsen  # noqa: E402
from sharedstate.check.models.object import ObjectModel  # noqa: E402


def _simulate(clients: int, ops_per_client: int, rng: random.Random):
    """Clients that call one at a time; each call takes effect at a random instant
    inside its interval. Returns the operations with their linearization points."""
    planned = []
    for c in range(clients):
        t = rng.uniform(0, 0.002)
        for seq in range(ops_per_client):
            call = t + rng.expovariate(1 / 0.0002)
            ret = call + rng.lognormvariate(-7.0, 0.6)  # ~1 ms, some much longer
            point = rng.uniform(call, ret)
            planned.append((point, c, seq, call, ret))
            t = ret
    planned.sort()
    return planned


def kv_history(clients: int = 50, ops_per_client: int = 40, keys: int = 10, seed: int = 1,
               bad: bool = False) -> list[Operation]:
    """A linearizable kv history (Porcupine's c50 shape); ``bad`` makes one get stale."""
    rng = random.Random(seed)
    state: dict[str, str | None] = {}
    ops: list[Operation] = []
    for _point, c, seq, call, ret in _simulate(clients, ops_per_client, rng):
        key = str(rng.randrange(keys))
        kind = rng.choices(["get", "put", "append"], weights=[4, 1, 5])[0]
        value = f"x {c} {seq} y"
        old = state.get(key)
        if kind == "get":
            op = Operation(c, call, ret, "get", (), old, key=key)
        elif kind == "put":
            state[key] = value
            op = Operation(c, call, ret, "put", (value,), None, key=key)
        else:
            state[key] = (old or "") + value
            op = Operation(c, call, ret, "append", (value,), None, key=key)
        ops.append(op)
    ops = [replace(op, index=i) for i, op in enumerate(sorted(ops, key=lambda o: o.call))]
    if bad:
        ops = _make_stale(ops, rng)
    return ops


def _make_stale(ops: list[Operation], rng: random.Random) -> list[Operation]:
    """Make one get return the value its key held before a write that had finished
    before the get began: a stale read, never linearizable (values never repeat)."""
    gets = [op for op in ops if op.op == "get"]
    rng.shuffle(gets)
    for g in gets:
        writes = [w for w in ops if w.key == g.key and w.op != "get" and w.end < g.call]
        if not writes:
            continue
        w = max(writes, key=lambda o: o.end)
        # a value a get saw before w began: w came after it, and g after w
        earlier = [r for r in ops if r.key == g.key and r.op == "get" and r.end < w.call]
        if not earlier:
            continue
        stale = max(earlier, key=lambda o: o.end).result
        if stale == g.result:
            continue
        ops[g.index] = replace(g, result=stale)
        return ops
    raise RuntimeError("no get could be made stale")


def counter_history(clients: int = 100, ops_per_client: int = 100, seed: int = 1,
                    get_share: float = 0.2, timeouts: int = 20, bad: bool = False
                    ) -> list[Operation]:
    """A linearizable counter history (incr returning the new value, get); ``timeouts``
    calls never return (half of them took effect); ``bad`` duplicates one result."""
    rng = random.Random(seed)
    value = 0
    ops: list[Operation] = []
    planned = _simulate(clients, ops_per_client, rng)
    lost = set(rng.sample(range(len(planned)), timeouts))
    for n, (_point, c, _seq, call, ret) in enumerate(planned):
        if rng.random() < get_share:
            if n in lost:
                ops.append(Operation(c, call, None, "get", (), None))
            else:
                ops.append(Operation(c, call, ret, "get", (), value))
            continue
        if n in lost:
            if rng.random() < 0.5:
                value += 1
            ops.append(Operation(c, call, None, "incr", (), None))
            continue
        value += 1
        ops.append(Operation(c, call, ret, "incr", (), value))
    ops = [replace(op, index=i) for i, op in enumerate(sorted(ops, key=lambda o: o.call))]
    if bad:
        incrs = [op for op in ops if op.op == "incr" and not op.pending]
        a, b = incrs[len(incrs) // 2], incrs[len(incrs) // 2 + 7]
        ops[b.index] = replace(b, result=a.result)
    return ops


class Str:
    """Porcupine's kv semantics for one key, written as a user would write a class."""

    def __init__(self) -> None:
        self.value = None

    def get(self):
        return self.value

    def put(self, value):
        self.value = value

    def append(self, value):
        self.value = (self.value or "") + value


class EmptyStr(Str):
    """The same, starting at "" as Porcupine's kv model does."""

    def __init__(self) -> None:
        self.value = ""


def _time(ops: list[Operation], model, repeat: int) -> tuple[str, float]:
    best = float("inf")
    verdict = ""
    for _ in range(repeat):
        if isinstance(model, type):
            model = ObjectModel(model)  # a fresh model: its transition memo starts empty
        t = time.perf_counter()
        result = check_history(ops, model, time_budget=300, explain_failure=False)
        best = min(best, time.perf_counter() - t)
        verdict = result.verdict
    return verdict, best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--porcupine", type=Path, help="Porcupine's test_data/kv directory")
    args = parser.parse_args()
    print(f"{'history':<40} {'ops':>6} {'verdict':<13} {'built-in':>9} {'object:':>11} {'ratio':>6}")
    # 10 keys as in Porcupine's c50; 200 clients on 40 keys keep c50's ~5 clients per key,
    # and on 20 keys (10 per key) the search has to backtrack a lot
    pairs = []
    for clients, keys in ((10, 10), (50, 10), (200, 40), (200, 20)):
        for bad in (False, True):
            name = f"kv, {clients} clients, {keys} keys" + (", stale get" if bad else "")
            pairs.append((name, kv_history(clients, keys=keys, seed=args.seed, bad=bad), "kv", Str))
    if args.porcupine:
        for name in ("c01-ok", "c01-bad", "c10-ok", "c10-bad", "c50-ok", "c50-bad"):
            path = args.porcupine / f"{name}.txt"
            if path.exists():
                pairs.append((f"Porcupine {name}", read_jepsen(path), 'kv:""', EmptyStr))
    for name, ops, builtin_model, cls in pairs:
        verdict, builtin = _time(ops, builtin_model, args.repeat)
        verdict2, own = _time(ops, cls, args.repeat)
        assert verdict == verdict2, (name, verdict, verdict2)
        print(f"{name:<40} {len(ops):>6} {verdict:<13} {builtin * 1000:>6.1f} ms "
              f"{own * 1000:>8.1f} ms {own / builtin:>5.2f}x")
    rows = [
        ("counter, 100 clients", counter_history(seed=args.seed), "counter"),
        ("counter, 100 clients, duplicate", counter_history(seed=args.seed, bad=True), "counter"),
    ]
    for name, ops, model in rows:
        verdict, seconds = _time(ops, model, args.repeat)
        print(f"{name:<40} {len(ops):>6} {verdict:<13} {seconds * 1000:>6.1f} ms")


if __name__ == "__main__":
    main()
