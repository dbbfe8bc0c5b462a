"""A client fails instead of the server: paused past its ttl, or with a clock 30 s ahead.

Why: leases and transaction holds end by time. A holder frozen past its ttl (a GC pause,
a stopped VM) must not block others longer than the ttl, and its late write must be
refused (``LeaseExpiredError``), with fencing tokens strictly increasing across holders.
A client whose wall clock runs ahead must not see another client's live lock or hold as
expired, and one that dies holding a lock must block others for the ttl, not for the ttl
plus its skew. Every client here is its own process (``client.py``): the paused one is
really SIGSTOPped, and the skewed one has ``time.time`` patched before sharedstate is
imported.
"""

from __future__ import annotations

import signal
import time

import pytest

import sharedstate
from sharedstate import LeaseExpiredError

from .conftest import start_target
from .harness import Child
from .models import Adder

pytestmark = [pytest.mark.faults, pytest.mark.timeout(90)]

BACKENDS = ["sqlite", "redis", "postgresql", "memcached", "manager"]
TTL = 1.5  # the paused holder's ttl, seconds
SKEW = 30.0  # the skewed client's clock runs this far ahead


@pytest.fixture(params=BACKENDS)
def client_url(request, tmp_path, prefix) -> str:
    """A store every process of this machine shares, on a server of the test's own."""
    backend = request.param
    if backend == "sqlite":
        base = f"sqlite:///{tmp_path}/state.db"
    elif backend in ("redis", "postgresql"):
        base = start_target(backend, request).url()
    else:  # tests/servers.py always starts a private memcached and manager server
        base = request.getfixturevalue(f"{backend}_url")
    return f"{base}{'&' if '?' in base else '?'}prefix={prefix}"


def with_timeout(url: str, seconds: float) -> str:
    return f"{url}&timeout={seconds:g}"


def spawn(children, tmp_path, label: str, role: str, **config) -> Child:
    child = Child(tmp_path / label, role, **config)
    children.append(child)
    return child


# -- a holder paused past its ttl ----------------------------------------------------------


def test_paused_lock_holder_is_fenced(client_url, tmp_path, children):
    holder = spawn(children, tmp_path, "holder", "lock-holder", url=client_url, name="job",
                   ttl=TTL, timeout=5)
    granted = holder.wait_event("granted")
    holder.signal(signal.SIGSTOP)
    with sharedstate.connect(with_timeout(client_url, 10)) as store:
        lease = store.lock("job", ttl=5).acquire(timeout=TTL + 3)
        got = time.monotonic() - granted["t"]
        # the waiter gets through once the frozen holder's lease ends, not before, not long after
        assert TTL - 0.2 <= got <= TTL + 1.5, f"got the lock {got:.2f} s after the grant"
        assert lease.token > granted["token"]
        holder.signal(signal.SIGCONT)
        holder.go()
        # the holder wakes up and tries to use its lease: refused, both ways
        assert holder.wait_event("extend")["outcome"] == "LeaseExpiredError"
        assert holder.wait_event("release")["outcome"] == "LeaseExpiredError"
        lease.release()  # still ours: the stale holder changed nothing
    again = holder.wait_event("again")
    assert again["outcome"] == "ok", again
    assert granted["token"] < lease.token < again["value"]  # fencing tokens strictly increase


def test_paused_transaction_holder_is_refused(client_url, tmp_path, children):
    holder = spawn(children, tmp_path, "holder", "transaction-holder", url=client_url,
                   name="acct", ttl=TTL, amount=1000)
    holding = holder.wait_event("holding")
    holder.signal(signal.SIGSTOP)
    with sharedstate.connect(with_timeout(client_url, TTL + 3)) as store:
        obj = store.object("acct", Adder, 0)
        assert obj.add(1) == 1  # the held (uncommitted) change is not seen
        got = time.monotonic() - holding["t"]
        assert TTL - 0.2 <= got <= TTL + 1.5, f"the waiter got through {got:.2f} s after the hold"
        holder.signal(signal.SIGCONT)
        holder.go()
        commit = holder.wait_event("commit")
        assert commit["outcome"] == "LeaseExpiredError", commit  # its late write is refused
        assert obj.value == 1  # ... and nothing of it was applied


# -- a client whose clock runs 30 s ahead --------------------------------------------------


def test_skewed_client_cannot_take_a_live_lock(client_url, tmp_path, children):
    with sharedstate.connect(with_timeout(client_url, 10)) as store:
        lease = store.lock("job", ttl=15).acquire(timeout=5)
        skewed = spawn(children, tmp_path, "skewed", "lock-try", url=client_url, name="job",
                       ttl=5, timeout=1, skew=SKEW)
        attempt = skewed.wait_event("acquire")
        assert attempt["outcome"] == "StoreTimeoutError", (
            f"a client with its clock {SKEW:g} s ahead got {attempt}: it took a live lock"
        )
        assert attempt["elapsed"] <= 1.0 * 1.1, f"its timeout of 1 s took {attempt['elapsed']:.2f} s"
        lease.release()  # must not raise: nobody took our lease


def test_skewed_client_cannot_take_a_live_transaction_hold(client_url, tmp_path, children):
    with sharedstate.connect(with_timeout(client_url, 10)) as store:
        obj = store.object("acct", Adder, 0)
        try:
            with store.transaction(obj, ttl=15) as held:
                held.add(5)
                skewed = spawn(children, tmp_path, "skewed", "adder",
                               url=with_timeout(client_url, 1), name="acct", amount=1,
                               skew=SKEW)
                first = skewed.wait_event("add")
        except LeaseExpiredError as exc:
            pytest.fail(f"the skewed client took over a live transaction hold: {exc}")
        assert first["outcome"] == "StoreTimeoutError", (
            f"a client with its clock {SKEW:g} s ahead got {first} during a live hold"
        )
        assert first["elapsed"] <= 1.0 * 1.1, f"its ?timeout=1 took {first['elapsed']:.2f} s"
        skewed.go()
        second = skewed.wait_event("add-again")  # once the hold is released, it gets through
        assert second["outcome"] == "ok" and second["value"] == 6, second
        assert obj.value == 6


def test_skewed_holder_that_dies_blocks_only_for_its_ttl(client_url, tmp_path, children):
    skewed = spawn(children, tmp_path, "skewed", "lock-holder", url=client_url, name="job",
                   ttl=1.0, skew=SKEW, hold_forever=True)
    granted = skewed.wait_event("granted")
    skewed.kill()  # dies holding the lock; its clock said the lease ends 31 s from now
    with sharedstate.connect(with_timeout(client_url, 10)) as store:
        try:
            lease = store.lock("job", ttl=5).acquire(timeout=4)
        except sharedstate.StoreTimeoutError:
            pytest.fail(f"a dead holder whose clock ran {SKEW:g} s ahead blocked its lock of "
                        "ttl 1 s for more than 4 s")
        got = time.monotonic() - granted["t"]
        assert got <= 1.0 + 1.5, f"got the lock {got:.2f} s after the dead holder's grant"
        assert lease.token > granted["token"]
        lease.release()
