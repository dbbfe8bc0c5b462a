"""The load loop the HTTP benchmarks share: ``wrk`` against each server in turn, round
after round, in an order that alternates every round.

Alternating is what makes two apps' numbers comparable on a machine whose load drifts:
each round runs them seconds apart, first one then the other, so neither always gets the
quieter half. The benchmarks differ in their servers and in what they print; what counts
as a run that may be believed (no socket errors, no non-2xx) must not differ, so it is
checked here once.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Callable

from sharedstate.demo import HOST


def require_wrk() -> None:
    """Stops the benchmark up front, before any server starts, when wrk is missing."""
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install wrk)")


def wrk(
    port: int, duration: float, connections: int, threads: int, path: str = "/"
) -> tuple[float, int]:
    """(requests per second, requests) that wrk measured; refuses a run with socket errors
    or non-2xx answers, whose rate would flatter a failing app."""
    result = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{duration:g}s",
            f"http://{HOST}:{port}{path}",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    out = result.stdout
    for bad in ("Non-2xx", "Socket errors"):
        if bad in out:
            raise SystemExit(f"wrk reported {bad}:\n{out}")
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    return rate, requests


def alternating_rounds(
    names: list[str], rounds: int, load: Callable[[str], tuple[float, int]]
) -> tuple[dict[str, list[float]], dict[str, int]]:
    """Runs ``load(name)`` for every name, ``rounds`` times, in the given order on odd
    rounds and reversed on even ones; prints each round as it ends. Returns each name's
    rates (requests per second, one a round) and the requests wrk counted for it."""
    rates: dict[str, list[float]] = {name: [] for name in names}
    served = dict.fromkeys(names, 0)
    for round_number in range(1, rounds + 1):
        order = names if round_number % 2 else list(reversed(names))
        line = []
        for name in order:
            rate, requests = load(name)
            rates[name].append(rate)
            served[name] += requests
            line.append(f"{name} {rate:8.1f} req/s")
            time.sleep(0.5)
        print(f"round {round_number}: " + "   ".join(line), flush=True)
    return rates, served
