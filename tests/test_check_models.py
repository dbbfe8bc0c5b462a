"""Hand-made histories with known answers, for every model, and bad history files.

File names in tests/check_histories/ say the model and the answer: ``MODEL-ok-*.jsonl``
is linearizable, ``MODEL-bad-*.jsonl`` is not. The classes below are the specifications
for the ``object:`` model tests (and the store workload in test_check_cli.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sharedstate.check import HistoryError, Operation, check_history, read_history

HISTORIES = Path(__file__).parent / "check_histories"
FILES = sorted(HISTORIES.glob("*.jsonl"))


class CounterObj:
    """The global counter's class: ``query`` adds one and returns the new value."""

    def __init__(self, param: int = 0) -> None:
        self.param = param

    def query(self) -> int:
        self.param += 1
        return self.param


class Account:
    """A class with arguments and an exception, opting in to the store workload."""

    __sharedstate_check__ = {
        "deposit": [[1], [2], [5]],
        "withdraw": [[1], [3]],
        "balance": None,
    }

    def __init__(self) -> None:
        self.total = 0
        self.log: list[int] = []

    def deposit(self, amount: int) -> int:
        self.total += amount
        self.log.append(amount)
        return self.total

    def withdraw(self, amount: int) -> int:
        if amount > self.total:
            raise ValueError("insufficient funds")
        self.total -= amount
        self.log.append(-amount)
        return self.total

    def balance(self) -> int:
        return self.total


def test_every_model_has_both_answers_on_disk():
    names = {f.name for f in FILES}
    for model in ("counter", "register", "kv"):
        assert any(n.startswith(f"{model}-ok") for n in names)
        assert any(n.startswith(f"{model}-bad") for n in names)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_hand_made_history_verdict(path):
    model, answer = path.stem.split("-")[:2]
    result = check_history(read_history(path), model)
    assert result.verdict == ("linearizable" if answer == "ok" else "violation")
    if answer == "bad":
        assert result.violation is not None
        assert result.violation.operations, "a violation names the operations involved"
        assert any("client" in s for s in result.violation.sentences)


def test_duplicate_is_explained_in_words():
    result = check_history(read_history(HISTORIES / "counter-bad-duplicate.jsonl"), "counter")
    assert result.violation.sentences == [
        "client 7 got 2 from incr() after client 3's call that returned 2 had finished: "
        "each number can be returned only once."
    ]
    assert sorted(op.process for op in result.violation.operations) == [3, 7]


def test_a_get_bounds_the_calls_that_begin_after_it():
    """The minimal history a direct check misses when only increments bound later calls
    (found by planting that bug; the random property tests caught it 6 times in 10)."""
    ops = read_history(HISTORIES / "counter-bad-get-before-its-incr.jsonl")
    result = check_history(ops, "counter")
    assert result.verdict == "violation"
    assert result.violation.sentences == [
        "client 2 got 1 from incr() after client 1's get() that returned 1 had finished: "
        "the counter was already at 1, so incr() had to return more."
    ]


def test_stale_read_shrinks_to_the_three_operations_that_matter():
    ops = read_history(HISTORIES / "register-bad-stale-read.jsonl")
    noise = [Operation(9, 10.0 + i, 10.5 + i, "read", (), 2, index=3 + i) for i in range(5)]
    result = check_history(ops + noise, "register")
    assert result.verdict == "violation"
    assert [op.process for op in result.violation.operations] == [1, 2, 3]
    assert "would have returned 2" in result.violation.sentences[-1]


def test_kv_partitions_and_names_the_failing_key():
    result = check_history(read_history(HISTORIES / "kv-bad-lost-append.jsonl"), "kv")
    assert result.partitions == 2
    assert result.violation.key == "y"
    assert result.violation.sentences[0].startswith("On key 'y'")


# -------------------------------------------------------------------- object models

COUNTER_OBJ = "object:tests.test_check_models:CounterObj"
ACCOUNT = "object:tests.test_check_models:Account"


def _op(process, call, ret, op, args=(), result=None, error=None):
    return Operation(process, call, ret, op, tuple(args), result, error=error)


def test_object_model_accepts_overlapping_queries_in_either_order():
    ops = [_op(1, 0.0, 2.0, "query", result=2), _op(2, 0.5, 1.0, "query", result=1)]
    assert check_history(ops, COUNTER_OBJ).verdict == "linearizable"


def test_object_model_finds_the_duplicate_number():
    ops = [_op(1, 0.0, 1.0, "query", result=1), _op(2, 0.5, 1.5, "query", result=1)]
    result = check_history(ops, COUNTER_OBJ)
    assert result.verdict == "violation"
    assert "would have returned 2" in result.violation.sentences[-1]


def test_object_model_checks_exceptions_and_pending_calls():
    ok = [
        _op(1, 0.0, 1.0, "withdraw", [3], error="ValueError"),
        _op(2, 1.5, None, "deposit", [5]),  # never returned, but took effect:
        _op(3, 3.0, 4.0, "withdraw", [3], result=2),
        _op(1, 5.0, 6.0, "balance", result=2),
    ]
    assert check_history(ok, ACCOUNT).verdict == "linearizable"
    wrong_error = [_op(1, 0.0, 1.0, "deposit", [1], result=1),
                   _op(2, 2.0, 3.0, "withdraw", [1], error="ValueError")]
    assert check_history(wrong_error, ACCOUNT).verdict == "violation"


def test_object_model_rejects_unknown_methods():
    with pytest.raises(HistoryError, match="no public method 'steal'"):
        check_history([_op(1, 0.0, 1.0, "steal")], ACCOUNT)
    with pytest.raises(HistoryError, match="cannot import module"):
        check_history([_op(1, 0.0, 1.0, "query")], "object:no_such_module_xyz:Thing")


# -------------------------------------------------------------------- bad histories


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("not json", "line 2: not valid JSON"),
        ('{"process": 1, "call": 0, "op": "incr"', "line 2: not valid JSON"),
        ('[1, 2]', "line 2: expected a JSON object"),
        ('{"call": 0, "op": "incr"}', "line 2: missing field(s) process"),
        ('{"process": 1, "call": "soon", "op": "incr"}', "line 2: 'call' must be a finite number"),
        ('{"process": 1, "call": 2, "return": 1, "op": "incr"}', "line 2: returns (1.0) before"),
        ('{"process": 1, "call": 0, "op": "incr", "colour": 3}', "line 2: unknown field(s) colour"),
        ('{"process": 1, "call": 0, "return": null, "op": "incr", "result": 4}',
         "line 2: an operation that never returned cannot have a result"),
        ('{"process": 1, "call": 0, "op": "incr", "args": 5}', "line 2: 'args' must be a list"),
    ],
)
def test_bad_lines_are_rejected_with_their_line_number(tmp_path, line, message):
    path = tmp_path / "h.jsonl"
    good = json.dumps({"process": 1, "call": 0, "return": 1, "op": "incr", "result": 1})
    path.write_text(good + "\n" + line + "\n")
    with pytest.raises(HistoryError) as info:
        read_history(path)
    assert message in str(info.value)
    assert isinstance(info.value, ValueError)


def test_unknown_operation_for_a_model_is_an_error():
    with pytest.raises(HistoryError, match="the counter model has no operation 'read'"):
        check_history([_op(1, 0.0, 1.0, "read", result=0)], "counter")
    with pytest.raises(HistoryError, match="unknown model"):
        check_history([], "queue")


def test_history_round_trips_through_json_lines(tmp_path):
    ops = read_history(HISTORIES / "kv-ok.jsonl")
    from sharedstate.check import write_history

    write_history(ops, tmp_path / "copy.jsonl")
    again = read_history(tmp_path / "copy.jsonl")
    assert [(o.process, o.call, o.ret, o.op, o.args, o.result, o.key) for o in again] == [
        (o.process, o.call, o.ret, o.op, o.args, o.result, o.key)
        for o in sorted(ops, key=lambda o: o.call)
    ]
