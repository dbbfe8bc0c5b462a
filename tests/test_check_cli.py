"""``sharedstate check``: exit codes, words on a violation, the time budget, the store workload."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

import sharedstate
from sharedstate.check import Operation, check_history, read_history, write_history
from sharedstate.check.command import check_command
from sharedstate.check.record import run_object_workload, workload_plan

from .test_check_models import Account, CounterObj

HISTORIES = Path(__file__).parent / "check_histories"


def run(*args: str):
    return CliRunner().invoke(check_command, list(args), env={"COLUMNS": "200"})


def test_linearizable_history_exits_0():
    result = run("--history", str(HISTORIES / "kv-ok.jsonl"), "--model", "kv")
    assert result.exit_code == 0, result.output
    assert "LINEARIZABLE" in result.output


def test_violation_exits_1_and_says_why(tmp_path):
    report = tmp_path / "r.html"
    result = run("--history", str(HISTORIES / "counter-bad-order.jsonl"), "--report", str(report))
    assert result.exit_code == 1, result.output
    assert "VIOLATION" in result.output
    assert "client 2 got 1 from incr() after client 1's incr() that returned 2 had finished" in (
        result.output
    )
    assert report.exists() and "client 2 got 1" in report.read_text()


def _hard_object_history() -> list[Operation]:
    """Twelve concurrent appends to a list, then a read no order can give: refuting it
    without lookahead means trying the 12! orders one by one."""
    ops = [Operation(i, 0.0, 1.0, "add", (i,), None, index=i) for i in range(12)]
    ops.append(Operation(99, 2.0, 3.0, "items", (), list(range(12, 0, -1)), index=12))
    return ops


class Bag:
    def __init__(self) -> None:
        self.items_ = []

    def add(self, item: int) -> None:
        self.items_.append(item)

    def items(self) -> list[int]:
        return list(self.items_)


class OpaqueBag(Bag):
    """The same semantics, written so that no lookahead can be read from the source."""

    def add(self, item: int) -> None:
        self.items_.insert(len(self.items_), item)


def test_object_model_lookahead_decides_the_hard_history_the_kv_model_decides():
    ops = _hard_object_history()
    as_kv = [replace(op, op="append" if op.op == "add" else "get", key="k") for op in ops]
    assert check_history(as_kv, "kv", time_budget=5).verdict == "violation"
    bag = "object:tests.test_check_cli:Bag"
    verdict = check_history(ops, bag, time_budget=5, explain_failure=False)
    assert verdict.verdict == "violation" and verdict.elapsed < 1
    assert check_history(ops, bag, time_budget=5).violation.sentences


def test_time_budget_answers_unknown_and_exits_2(tmp_path):
    ops = _hard_object_history()
    model = "object:tests.test_check_cli:OpaqueBag"
    assert check_history(ops, model, time_budget=0.3).verdict == "unknown"
    path = tmp_path / "hard.jsonl"
    write_history(ops, path)
    result = run("--history", str(path), "--model", model, "--time-budget", "0.3")
    assert result.exit_code == 2, result.output
    assert "UNKNOWN" in result.output


def test_bad_history_line_exits_3_with_the_line_number(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"process": 1, "call": 0, "return": 1, "op": "incr", "result": 1}\n{oops\n')
    result = run("--history", str(path))
    assert result.exit_code == 3
    assert "line 2: not valid JSON" in result.output


def test_modes_are_exclusive():
    result = run("http://127.0.0.1:1/", "--history", "x.jsonl")
    assert result.exit_code == 2
    assert "exactly one of" in result.output
    assert run("--store", "memory://").exit_code == 2


def test_workload_plan_uses_the_class_opt_in_or_argument_free_methods():
    assert sorted(workload_plan(Account)) == ["balance", "deposit", "withdraw"]
    assert sorted(workload_plan(CounterObj)) == ["query"]


# ------------------------------------------------------------------ store workload

needs_core = pytest.mark.skipif(
    not hasattr(sharedstate, "connect"), reason="the sharedstate core is not there yet"
)


@needs_core
def test_store_workload_on_sqlite_is_linearizable(tmp_path):
    url = f"sqlite:///{tmp_path}/w.db"
    ops = run_object_workload(url, "tests.test_check_models:Account", processes=2, threads=3,
                              calls=15, seed=7)
    assert len(ops) == 2 * 3 * 15
    assert {op.process for op in ops} == set(range(6))
    assert not any(op.pending for op in ops)
    assert any(op.error == "ValueError" for op in ops) or any(op.op == "withdraw" for op in ops)
    result = check_history(ops, "object:tests.test_check_models:Account")
    assert result.verdict == "linearizable", result.violation


@needs_core
def test_store_workload_command(tmp_path):
    url = f"sqlite:///{tmp_path}/c.db"
    history = tmp_path / "w.jsonl"
    result = run("--store", url, "--object", "tests.test_check_models:CounterObj",
                 "--processes", "2", "--threads", "2", "--calls", "10",
                 "--save-history", str(history))
    assert result.exit_code == 0, result.output
    ops = read_history(history)
    # the global counter's query under sharedstate: every call got its own number, 1..40
    assert sorted(op.result for op in ops) == list(range(1, 41))
