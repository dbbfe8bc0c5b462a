"""Recording histories: hammer an HTTP endpoint, or run a workload on a shared object.

All times come from ``time.monotonic()``: on Linux that is CLOCK_MONOTONIC, one clock
for every process on the host, so operations from several processes can be ordered
against each other. A call whose outcome is unknown (a timeout, a connection error, a
5xx, a store error) is recorded as never returned: it may or may not have taken
effect, and the checker treats it so.
"""

from __future__ import annotations

import inspect
import itertools
import json
import multiprocessing
import random
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .history import HistoryError, Operation
from .model import normalize
from .models import load_class

# ----------------------------------------------------------------------------- HTTP

Extractor = Callable[[str], int]


def regex_extractor(pattern: str = r"-?\d+") -> Extractor:
    """The number is the regex's first group (or whole match) in the response body."""
    compiled = re.compile(pattern)

    def extract(body: str) -> int:
        match = compiled.search(body)
        if match is None:
            raise ValueError(f"no match for {pattern!r}")
        return int(match.group(1) if compiled.groups else match.group(0))

    return extract


def json_path_extractor(path: str) -> Extractor:
    """The number at a simple JSON path: ``$.data.count``, ``items[0].n`` or ``a.b.0``."""
    parts: list[str | int] = []
    for piece in re.findall(r"[^.\[\]]+|\[\d+\]", path.removeprefix("$").lstrip(".")):
        parts.append(int(piece[1:-1]) if piece.startswith("[") else piece)

    def extract(body: str) -> int:
        value: Any = json.loads(body)
        for part in parts:
            if isinstance(value, list):
                value = value[int(part)]
            elif isinstance(value, dict):
                value = value[str(part)]
            else:
                raise ValueError(f"{path!r} does not lead to a number")
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ValueError(f"{path!r} is {value!r}, not a number")
        return int(value)

    return extract


@dataclass
class HammerStats:
    """What went wrong on the wire, beside what the history says."""

    requests: int = 0
    errors: int = 0  # timeouts, connection errors, 5xx: recorded as never returned
    unreadable: int = 0  # answered, but no number found in the body
    seconds: float = 0.0
    first_error: str = ""
    problems: list[str] = field(default_factory=list)  # every error and unreadable answer
    #: with ``header=``: that response header of each operation returned (None: no answer)
    headers: list[str | None] = field(default_factory=list)


def hammer(
    url: str,
    clients: int = 20,
    requests: int = 200,
    extract: Extractor | None = None,
    timeout: float = 10.0,
    method: str = "GET",
    progress: Callable[[], None] | None = None,
    header: str | None = None,
    burst: bool = False,
) -> tuple[list[Operation], HammerStats]:
    """Send ``requests`` requests from ``clients`` concurrent clients (threads, each its own
    connection), all starting together, and record each as an ``incr`` of a counter.

    ``burst``: each client sends exactly one request (``requests`` is ``clients``), the
    simultaneous burst ``sharedstate demo`` fires. ``header``: also keep that response
    header of each call (the demo's server pid), in ``stats.headers``.
    """
    import httpx

    if burst:
        requests = clients

    extract = extract or regex_extractor()
    stats = HammerStats(requests=requests)
    ops: list[Operation] = []
    seen_headers: dict[int, str | None] = {}
    lock = threading.Lock()
    tickets = itertools.count()
    start = threading.Barrier(clients)

    def client(number: int) -> None:
        with httpx.Client(timeout=timeout) as session:
            try:
                start.wait(timeout=30)
            except threading.BrokenBarrierError:
                pass
            sent = 0
            while True:
                with lock:
                    ticket = number if burst else next(tickets)
                if ticket >= requests or (burst and sent):
                    return
                sent += 1
                answer: str | None = None
                call = time.monotonic()
                ret: float | None = None
                value: int | None = None
                problem = ""
                try:
                    response = session.request(method, url)
                    answer = response.headers.get(header) if header else None
                    if response.status_code >= 500:
                        problem = f"HTTP {response.status_code}"
                    else:
                        ret = time.monotonic()
                        try:
                            value = extract(response.text)
                        except (ValueError, KeyError, IndexError) as exc:
                            problem = f"unreadable body ({exc}): {response.text[:80]!r}"
                            ret = None
                except httpx.HTTPError as exc:
                    problem = f"{type(exc).__name__}: {exc}"
                op = Operation(number, call, ret, "incr", (), value)
                with lock:
                    ops.append(op)
                    seen_headers[id(op)] = answer
                    if problem:
                        stats.problems.append(problem)
                        if problem.startswith("unreadable"):
                            stats.unreadable += 1
                        else:
                            stats.errors += 1
                        stats.first_error = stats.first_error or problem
                if progress is not None:
                    progress()

    began = time.monotonic()
    threads = [
        threading.Thread(target=client, args=(n,), daemon=True, name=f"check-client-{n}")
        for n in range(clients)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stats.seconds = time.monotonic() - began
    ops.sort(key=lambda o: o.call)
    stats.headers = [seen_headers[id(op)] for op in ops]
    return [_renumber(op, i) for i, op in enumerate(ops)], stats


def _renumber(op: Operation, index: int) -> Operation:
    from dataclasses import replace

    return replace(op, index=index)


# --------------------------------------------------------------------- shared objects

ArgGen = Callable[[random.Random], list[Any]]


def workload_plan(cls: type) -> dict[str, ArgGen]:
    """The methods to call and how to make their arguments.

    A class opts in with ``__sharedstate_check__``: a dict (or a classmethod returning
    one) from method name to None (no arguments), a list of argument lists to pick
    from, or a function of a ``random.Random`` returning the arguments. Otherwise the
    public methods that need no arguments are called.
    """
    spec = getattr(cls, "__sharedstate_check__", None)
    if callable(spec):
        spec = spec()
    plan: dict[str, ArgGen] = {}
    if spec is not None:
        if not isinstance(spec, dict) or not spec:
            raise HistoryError(f"{cls.__qualname__}.__sharedstate_check__ must be a non-empty dict")
        for name, gen in spec.items():
            if not callable(getattr(cls, name, None)):
                raise HistoryError(f"{cls.__qualname__} has no method {name!r} to check")
            plan[name] = _arg_gen(gen)
        return plan
    for name, member in inspect.getmembers(cls, inspect.isfunction):
        if name.startswith("_"):
            continue
        params = list(inspect.signature(member).parameters.values())[1:]
        if all(
            p.default is not p.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
            for p in params
        ):
            plan[name] = _arg_gen(None)
    if not plan:
        raise HistoryError(
            f"{cls.__qualname__} has no public method callable without arguments; "
            f"say what to call with a __sharedstate_check__ dict"
        )
    return plan


def _arg_gen(gen: Any) -> ArgGen:
    if gen is None:
        return lambda rng: []
    if isinstance(gen, list):
        choices = [list(a) if isinstance(a, (list, tuple)) else [a] for a in gen]
        return lambda rng: list(rng.choice(choices))
    return lambda rng: list(gen(rng))


def run_object_workload(
    url: str,
    class_spec: str,
    processes: int = 2,
    threads: int = 4,
    calls: int = 25,
    seed: int = 0,
    name: str | None = None,
) -> list[Operation]:
    """Call random methods of a fresh shared object from ``processes`` x ``threads``
    clients, ``calls`` each, and return the history (clients numbered from 0)."""
    load_class(class_spec)  # fail here, with a clear message, not in a child
    name = name or f"check-{uuid.uuid4().hex[:12]}"
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    workers = [
        ctx.Process(
            target=_worker,
            args=(url, class_spec, name, p, threads, calls, seed, queue),
            daemon=True,
        )
        for p in range(processes)
    ]
    for w in workers:
        w.start()
    records: list[dict[str, Any]] = []
    failures: list[str] = []
    for _ in workers:
        kind, payload = queue.get(timeout=300)
        if kind == "ok":
            records.extend(payload)
        else:
            failures.append(payload)
    for w in workers:
        w.join(timeout=30)
    if failures:
        raise HistoryError(f"a workload process failed: {failures[0]}")
    from .history import operation_from_dict

    records.sort(key=lambda r: r["call"])
    return [operation_from_dict(r, index=i) for i, r in enumerate(records)]


def _worker(
    url: str, class_spec: str, name: str, number: int, threads: int, calls: int,
    seed: int, queue: Any,
) -> None:
    try:
        import sharedstate
        from sharedstate.errors import SharedStateError

        cls = load_class(class_spec)
        plan = workload_plan(cls)
        methods = sorted(plan)
        store = sharedstate.connect(url)
        obj: Any = store.object(name, cls)
        records: list[dict[str, Any]] = []
        lock = threading.Lock()
        start = threading.Barrier(threads)

        def client(t: int) -> None:
            process = number * threads + t
            rng = random.Random(f"{seed}-{process}")
            start.wait(timeout=60)
            for _ in range(calls):
                method = rng.choice(methods)
                args = plan[method](rng)
                record: dict[str, Any] = {"process": process, "op": method, "args": normalize(args)}
                record["call"] = time.monotonic()
                try:
                    result = getattr(obj, method)(*args)
                    record["return"] = time.monotonic()
                    record["result"] = normalize(result)
                except SharedStateError:  # the store failed: the call may or may not have happened
                    record["return"] = None
                    record["result"] = None
                except Exception as exc:  # the method raised: it changed nothing
                    record["return"] = time.monotonic()
                    record["result"] = None
                    record["error"] = type(exc).__name__
                with lock:
                    records.append(record)

        pool = [threading.Thread(target=client, args=(t,)) for t in range(threads)]
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join()
        store.close()
        queue.put(("ok", records))
    except BaseException as exc:  # report to the parent rather than die silently
        queue.put(("error", f"{type(exc).__name__}: {exc}"))
