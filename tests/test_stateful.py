"""Hypothesis drives a shared object and a plain one with the same calls: same results.

Two handles (two stores on one URL) take turns, so the per-process cache, its staleness
and the compare-and-set retry are all exercised, on every backend.
"""

from __future__ import annotations

import copy
import uuid

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

import sharedstate

from .conftest import with_prefix
from .models import Account


def _outcome(action):
    try:
        return ("ok", action())
    except ValueError as exc:
        return ("raised", str(exc))


class Reference:
    """The plain object, with the one rule sharedstate adds: a call that raises changes
    nothing (the plain ``withdraw`` mutates before it raises)."""

    def __init__(self, *args):
        self.obj = Account(*args)

    def call(self, method, *args):
        trial = copy.deepcopy(self.obj)
        result = getattr(trial, method)(*args)  # raises before anything is kept
        self.obj = trial
        return result


def make_machine(base_url: str) -> type[RuleBasedStateMachine]:
    class SharedAgainstPlain(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            url = with_prefix(base_url, f"h{uuid.uuid4().hex[:10]}-")
            self.stores = [sharedstate.connect(url), sharedstate.connect(url)]
            self.handles = [s.object("acct", Account, "carol", 5) for s in self.stores]
            self.plain = Reference("carol", 5)
            self.transactions = 0

        @rule(which=st.integers(0, 1), amount=st.integers(0, 50))
        def deposit(self, which, amount):
            assert _outcome(lambda: self.handles[which].deposit(amount)) == _outcome(
                lambda: self.plain.call("deposit", amount)
            )

        @rule(which=st.integers(0, 1), amount=st.integers(0, 80))
        def withdraw(self, which, amount):
            assert _outcome(lambda: self.handles[which].withdraw(amount)) == _outcome(
                lambda: self.plain.call("withdraw", amount)
            )

        @rule(which=st.integers(0, 1))
        def statement(self, which):
            assert self.handles[which].statement() == self.plain.call("statement")

        @precondition(lambda self: self.transactions < 3)
        @rule(which=st.integers(0, 1), amounts=st.lists(st.integers(0, 20), max_size=3))
        def transaction(self, which, amounts):
            self.transactions += 1
            with self.stores[which].transaction(self.handles[which]) as account:
                for amount in amounts:
                    assert account.deposit(amount) == self.plain.call("deposit", amount)

        @invariant()
        def same_balance(self):
            assert self.handles[0].balance == self.plain.obj.balance

        def teardown(self) -> None:
            for store in self.stores:
                store.close()

    return SharedAgainstPlain


def test_shared_object_behaves_like_the_plain_object(backend_base_url):
    machine = make_machine(backend_base_url)
    machine.TestCase.settings = settings(
        settings.default, max_examples=25, stateful_step_count=15, deadline=None
    )
    machine.TestCase().runTest()
