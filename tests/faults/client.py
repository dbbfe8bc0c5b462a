"""A client process of the fault suite: ``python -m tests.faults.client CONFIG_JSON``.

Why a fresh interpreter rather than a fork: a client with a skewed clock must have its
``time.time`` replaced *before* sharedstate is imported (the library may bind it at
import), and a client that the test pauses or kills must share nothing with pytest's
process. The role's outcome goes to an events file (JSON Lines) that the test reads; the
workload role also logs every call (``call`` line before it, ``done`` line after it, each
written at once) so a call still running when its process is killed is still seen.
"""

from __future__ import annotations

import json
import os
import random
import sys
import threading
import time
from typing import Any


def skew_clock(seconds: float) -> None:
    """This process's wall clock runs ``seconds`` ahead; monotonic time is untouched."""
    real_time, real_time_ns = time.time, time.time_ns
    time.time = lambda: real_time() + seconds  # type: ignore[assignment]
    time.time_ns = lambda: real_time_ns() + int(seconds * 1e9)  # type: ignore[assignment]


class Channel:
    """Events to the test (appended JSON lines) and go-signals from it (files)."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.events = config["events"]
        self.directory = os.path.dirname(self.events)

    def emit(self, event: str, **data: Any) -> None:
        line = json.dumps({"event": event, "t": time.monotonic(), **data}) + "\n"
        fd = os.open(self.events, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)

    def wait_go(self, name: str, timeout: float = 60.0) -> None:
        path = os.path.join(self.directory, name)
        deadline = time.monotonic() + timeout
        while not os.path.exists(path):
            if time.monotonic() > deadline:
                raise SystemExit(f"no {name!r} signal within {timeout} s")
            time.sleep(0.01)


def attempt(function: Any, *args: Any) -> dict[str, Any]:
    """Runs one call; its outcome as data: ok with its value, or the exception's class."""
    from sharedstate import SharedStateError

    started = time.monotonic()
    try:
        value = function(*args)
    except Exception as exc:  # every outcome is reported, none judged here
        return {"outcome": type(exc).__name__, "family": isinstance(exc, SharedStateError),
                "message": str(exc)[:300], "elapsed": time.monotonic() - started}
    return {"outcome": "ok", "value": value, "elapsed": time.monotonic() - started}


# -- the workload: object calls and counter increments, every call logged -----------------


def workload(config: dict[str, Any], channel: Channel) -> None:
    import sharedstate

    from .models import Adder

    store = sharedstate.connect(config["url"])
    obj = store.object("acct", Adder, 0)
    counter = store.counter("hits")
    fd = os.open(config["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    process = config["process"]

    def log(line: dict[str, Any]) -> None:
        os.write(fd, (json.dumps(line) + "\n").encode())

    def thread_main(thread: int) -> None:
        slot = process * 8 + thread  # < 64: the low bits make amounts unique across threads
        rng = random.Random(config["seed"] * 1000 + slot)
        used: set[int] = set()
        number = 0
        while not os.path.exists(config["stop"]):
            amount = rng.randrange(1, 1 << 20) * 64 + slot
            if amount in used:
                continue
            used.add(amount)
            number += 1
            key = "acct" if rng.random() < 0.5 else "hits"
            call_id = f"{process}.{thread}.{number}"
            log({"id": call_id, "phase": "call", "process": f"p{process}t{thread}",
                 "key": key, "amount": amount, "t": time.monotonic()})
            result = attempt(obj.add if key == "acct" else counter.incr, amount)
            log({"id": call_id, "phase": "done", "t": time.monotonic(), **result})
            time.sleep(rng.uniform(0.0, config["pace"]))

    threads = [threading.Thread(target=thread_main, args=(i,)) for i in range(config["threads"])]
    channel.emit("started")
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    os.close(fd)
    channel.emit("finished")


# -- single-client roles of the pause and clock tests --------------------------------------


def lock_holder(config: dict[str, Any], channel: Channel) -> None:
    """Takes a lock, waits (the test pauses us past the ttl), then tries to use it."""
    import sharedstate

    store = sharedstate.connect(config["url"])
    lock = store.lock(config["name"], ttl=config["ttl"])
    lease = lock.acquire(timeout=10)
    channel.emit("granted", token=lease.token)
    if config.get("hold_forever"):
        time.sleep(600)
    channel.wait_go("go")
    channel.emit("extend", **attempt(lease.extend))
    channel.emit("release", **attempt(lease.release))
    again = attempt(lambda: lock.acquire(timeout=config.get("timeout", 10)).token)
    channel.emit("again", **again)


def lock_try(config: dict[str, Any], channel: Channel) -> None:
    """Tries to take a lock within ``timeout``; reports what happened."""
    import sharedstate

    store = sharedstate.connect(config["url"])
    lock = store.lock(config["name"], ttl=config["ttl"])
    channel.emit("trying")
    channel.emit("acquire", **attempt(lambda: lock.acquire(timeout=config["timeout"]).token))


def transaction_holder(config: dict[str, Any], channel: Channel) -> None:
    """Holds a transaction on the object; its block ends when the test says go."""
    import sharedstate

    from .models import Adder

    store = sharedstate.connect(config["url"])
    obj = store.object(config["name"], Adder, 0)

    def block() -> int:
        with store.transaction(obj, ttl=config["ttl"]) as o:
            value = o.add(config["amount"])
            channel.emit("holding", value=value)
            channel.wait_go("go")
        return value

    channel.emit("commit", **attempt(block))


def adder(config: dict[str, Any], channel: Channel) -> None:
    """Calls ``add`` on the object, then once more after the test says go."""
    import sharedstate

    from .models import Adder

    store = sharedstate.connect(config["url"])
    obj = store.object(config["name"], Adder, 0)
    channel.emit("add", **attempt(obj.add, config["amount"]))
    channel.wait_go("go")
    channel.emit("add-again", **attempt(obj.add, config["amount"]))


def clock(config: dict[str, Any], channel: Channel) -> None:
    """Reports this process's wall clock, so the test can see the skew is in force."""
    import sharedstate  # noqa: F401 - imported as a client would, after the skew

    channel.emit("clock", wall=time.time(), preloaded=PRELOADED)


ROLES = {
    "clock": clock,
    "workload": workload,
    "lock-holder": lock_holder,
    "lock-try": lock_try,
    "transaction-holder": transaction_holder,
    "adder": adder,
}


PRELOADED = False  # whether sharedstate was imported before the clock was skewed


def main() -> None:
    global PRELOADED
    PRELOADED = "sharedstate" in sys.modules
    config = json.loads(sys.argv[1])
    if config.get("skew"):
        skew_clock(float(config["skew"]))  # before sharedstate is imported, on purpose
    channel = Channel(config)
    try:
        ROLES[config["role"]](config, channel)
    except BaseException as exc:
        channel.emit("crashed", outcome=type(exc).__name__, message=str(exc)[:300])
        raise


if __name__ == "__main__":
    main()
