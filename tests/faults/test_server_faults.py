"""The store's server fails under load: killed, frozen, cut off. Is every outcome true?

Each test runs 3 client processes x 3 threads of object calls and counter increments
(``?timeout=2``) before, during and after one fault on a private server, then asserts:

* every call ended within its timeout + 10% (none hangs, none waits twice);
* every error is a ``SharedStateError``; a did-not-happen error's call is not in the
  final state; ``OutcomeUnknownError`` only for a call whose deadline fell while the
  store was unreachable;
* nothing acknowledged is lost, nothing applied twice, acknowledged values are unique,
  the final value lies between the acknowledged and acknowledged + unknown sums;
* the history is linearizable (``sharedstate check``, counter model);
* calls succeed again once the fault is healed.

The faults: ``kill`` (kill -9, down 1 s, restarted; 3 times, 1 s apart), ``pause`` (SIGSTOP 3 s, past the
timeout), ``blip`` (SIGSTOP 1 s, within it: every outcome can be known), ``partition``
(all packets dropped 3 s, server in a namespace). The "none" run is the control: the same
workload and judges with no fault.
"""

from __future__ import annotations

import functools

import pytest

from .accounting import judge
from .conftest import start_target
from .harness import Fault, responds, run_workload

pytestmark = [pytest.mark.faults, pytest.mark.timeout(150)]

TIMEOUT = 2.0


def make_fault(name: str, target, namespace) -> Fault:
    if name == "kill":  # kill -9, down 1 s, restarted (Redis: AOF fsync always); 3 times
        return Fault(name, target.kill9, target.restart, hold=1.0, cycles=3, gap=1.0)
    if name == "pause":  # SIGSTOP for 3 s (longer than the timeout), then SIGCONT
        return Fault(name, target.pause, target.resume, hold=3.0)
    if name == "blip":  # SIGSTOP for 1 s, well within the timeout: every outcome can be known
        return Fault(name, target.pause, target.resume, hold=1.0)
    if name == "partition":  # every packet dropped for 3 s, in and out
        return Fault(name, namespace.partition, namespace.heal, hold=3.0)
    return Fault(name, lambda: None, lambda: None, hold=0.0, takes_store_down=False)


CASES = [
    ("none", "redis"),
    *((fault, backend) for fault in ("kill", "pause", "blip", "partition")
      for backend in ("redis", "postgresql")),
]


@pytest.mark.parametrize("fault, backend", CASES, ids=[f"{f}-{b}" for f, b in CASES])
def test_workload_under_fault(fault, backend, request, tmp_path, prefix, record_counts):
    namespace = request.getfixturevalue("namespace") if fault == "partition" else None
    target = start_target(backend, request, namespace)
    probe = functools.partial(responds, backend, target.host, target.port)
    url = target.url(timeout=f"{TIMEOUT:g}", prefix=prefix)
    plan = make_fault(fault, target, namespace)
    run = run_workload(tmp_path, backend, url, plan, probe, timeout=TIMEOUT)
    if namespace is not None:
        assert "-A INPUT -j DROP" not in namespace.rules(), "the partition was not healed"
    verdict = judge(run, tmp_path)
    record_counts(fault, backend, {**verdict.summary(),
                                   "verdict": "FAIL" if verdict.problems else "pass"})
    assert verdict.counts["ok"] > 50, f"too few calls went through to judge anything: {verdict.counts}"
    assert not verdict.problems, f"{fault} on {backend}:\n  " + "\n  ".join(verdict.problems)

