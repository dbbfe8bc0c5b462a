"""The fault suite's own machinery, checked: judges that can fail, faults that take hold.

Why: a fault test that passes proves something only if its judges would have caught the
lie and its fault was really in force. The judges get small made-up runs, one per kind of
lie (a did-not-happen error whose call was applied, a lost acknowledged call, a double
apply, a late call, an unknown outcome while the store was reachable); the namespace gets
a real server that must stop answering under the partition, answer again when healed, and
leave no namespace, veth or route behind.
"""

from __future__ import annotations

import functools
import subprocess
import time

import pytest

from .accounting import judge
from .conftest import start_target
from .harness import Child, Run, responds

pytestmark = pytest.mark.faults

WINDOW = (10.0, 13.0)  # the made-up fault: the store unreachable from t=10 to t=13


class Calls:
    """Builds a made-up run of ``acct`` calls; each ``ok`` call applies in call order."""

    def __init__(self) -> None:
        self.calls: list[dict] = []
        self.value = 0

    def add(self, amount: int, start: float, end: float | None, outcome: str = "ok",
            applied: bool | None = None, value: int | None = None) -> None:
        applied = outcome == "ok" if applied is None else applied
        if applied:
            self.value += amount
        call = {"id": str(len(self.calls)), "process": "p0", "key": "acct", "amount": amount,
                "start": start, "end": end, "outcome": outcome if end is not None else None,
                "family": outcome != "KeyError", "message": ""}
        if outcome == "ok":
            call["value"] = self.value if value is None else value
        self.calls.append(call)

    def run(self, final: int | None = None) -> Run:
        calls = list(self.calls)
        hits = {"id": "h", "process": "p1", "key": "hits", "amount": 7, "start": 20.0,
                "end": 20.1, "outcome": "ok", "value": 7, "family": True}
        run = Run("made-up", "made-up", 2.0, [*calls, hits], [WINDOW])
        run.finals = {"acct": (30.0, 30.1, self.value if final is None else final),
                      "hits": (30.0, 30.1, 7)}
        return run


def healthy() -> Calls:
    calls = Calls()
    calls.add(3, 1.0, 1.1)
    calls.add(50, 2.0, 2.2)
    calls.add(1100, 20.0, 20.3)  # after the heal
    return calls


def problems(run: Run, tmp_path) -> list[str]:
    return judge(run, tmp_path, check_budget=5).problems


def test_a_healthy_made_up_run_passes(tmp_path):
    calls = healthy()
    calls.add(20_000, 11.0, 11.5, "StoreTimeoutError", applied=False)
    calls.add(300_000, 10.5, 12.6, "OutcomeUnknownError", applied=True)  # deadline in the window
    calls.add(4_000_000, 10.6, 12.6, "OutcomeUnknownError", applied=False)
    for i in range(40):  # many calls of unknown outcome that did not apply: still quick
        calls.add(5_000_000 + 7919 * i, 10.0 + 0.05 * i, 12.0 + 0.05 * i,
                  "OutcomeUnknownError", applied=False)
    calls.add(1, 21.0, 21.1)
    started = time.monotonic()
    verdict = judge(calls.run(), tmp_path, check_budget=5)
    assert verdict.problems == []
    assert verdict.summary()["applied_unknown"] == 1
    assert time.monotonic() - started < 5


def test_a_did_not_happen_error_whose_call_took_effect_is_caught(tmp_path):
    calls = healthy()
    calls.add(20_000, 11.0, 11.5, "StoreTimeoutError", applied=True)
    calls.add(1, 21.0, 21.1)
    found = problems(calls.run(), tmp_path)
    assert any("took effect although it raised" in p and "+20000" in p for p in found), found
    assert any("sharedstate check: violation" in p for p in found), found
    assert judge(calls.run(), tmp_path, check_budget=5).applied_refused == 1


def test_a_lost_acknowledged_call_is_caught(tmp_path):
    found = problems(healthy().run(final=1103), tmp_path)
    assert any("an acknowledged call was lost" in p for p in found), found


def test_a_call_applied_twice_is_caught(tmp_path):
    calls = Calls()
    calls.add(3, 1.0, 1.1)
    calls.add(50, 2.0, 2.2)
    calls.value += 50  # a retry applied it once more
    calls.add(1100, 20.0, 20.3)
    found = problems(calls.run(), tmp_path)
    assert any("applied twice" in p or "should not be" in p for p in found), found


def test_a_value_handed_out_twice_is_caught(tmp_path):
    calls = healthy()
    calls.add(7, 21.0, 21.1, value=1153)
    found = problems(calls.run(final=1160), tmp_path)
    assert any("returned to more than one call" in p for p in found), found


def test_a_late_call_and_a_hung_call_are_caught(tmp_path):
    calls = healthy()
    calls.add(7, 21.0, 23.3)  # 2.3 s > 2 s + 10%
    calls.add(90_000, 22.0, None, applied=False)
    found = problems(calls.run(), tmp_path)
    assert any("ended after their timeout" in p for p in found), found
    assert any("never ended" in p for p in found), found


def test_an_unknown_outcome_while_the_store_answered_is_caught(tmp_path):
    calls = healthy()
    calls.add(20_000, 5.0, 7.0, "OutcomeUnknownError", applied=False)  # deadline before
    calls.add(40_000, 16.0, 18.0, "OutcomeUnknownError", applied=False)  # deadline long after
    found = problems(calls.run(), tmp_path)
    assert any("2 OutcomeUnknownError while the store was reachable" in p for p in found), found


def test_a_foreign_error_and_no_success_after_the_heal_are_caught(tmp_path):
    calls = Calls()
    calls.add(3, 1.0, 1.1)
    calls.add(20, 11.0, 11.5, "KeyError", applied=False)
    found = problems(calls.run(), tmp_path)
    assert any("outside the SharedStateError family" in p for p in found), found
    assert any("acct: no call succeeded after the fault was healed" in p for p in found), found


def test_a_partition_really_cuts_off_and_heals_and_leaves_nothing(request, namespace):
    target = start_target("redis", request, namespace)
    probe = functools.partial(responds, "redis", target.host, target.port)
    assert probe()
    namespace.partition()
    assert not probe(), "the server still answers through the partition"
    namespace.heal()
    assert probe(), "the server does not answer once the partition is healed"
    routes = subprocess.run(["ip", "route", "show", "table", "all"], capture_output=True,
                            text=True).stdout
    assert f"unreachable {namespace.network}" in routes
    namespace.set_link(False)  # the link down: the subnet must not go to the default route
    route = namespace.route_to_namespace()
    refused = route.stderr.lower()
    assert route.returncode != 0 and ("unreachable" in refused or "no route" in refused), route
    assert not probe()
    namespace.set_link(True)
    deadline = time.monotonic() + 10
    while not probe():
        assert time.monotonic() < deadline, "the server does not answer once the link is up"
        time.sleep(0.05)
    target.stop()
    namespace.remove()
    assert not namespace.exists()
    links = subprocess.run(["ip", "link", "show"], capture_output=True, text=True).stdout
    routes = subprocess.run(["ip", "route", "show", "table", "all"], capture_output=True,
                            text=True).stdout
    assert namespace.host_if not in links
    assert str(namespace.network) not in routes


@pytest.mark.parametrize("backend", ["redis", "postgresql"])
def test_kill_and_pause_take_hold_and_are_undone(backend, request):
    target = start_target(backend, request)
    probe = functools.partial(responds, backend, target.host, target.port)
    assert probe()
    target.pause()
    assert not probe(), "a paused server answered"
    target.resume()
    assert probe(), "a resumed server does not answer"
    pids = target.pids()
    target.kill9()
    assert not probe() and not any(target.pids()), f"killed server processes remain: {pids}"
    target.restart()
    assert probe(), "the restarted server does not answer"


def test_a_skewed_client_really_runs_ahead(tmp_path, children):
    child = Child(tmp_path / "clock", "clock", skew=30.0)
    children.append(child)
    event = child.wait_event("clock")
    assert not event["preloaded"], "sharedstate was imported before the clock was skewed"
    assert 29.0 < event["wall"] - time.time() < 31.0
