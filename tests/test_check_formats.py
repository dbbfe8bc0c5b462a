"""Histories from other tools: Jepsen/Knossos EDN and Porcupine's JSON log, end to end,
and the start values (``kv:START``, ``register:START``) their models need."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from sharedstate.check import HistoryError, check_history
from sharedstate.check.command import check_command
from sharedstate.check.formats import read_history_as
from sharedstate.check.formats.jepsen import parse_jepsen
from sharedstate.check.formats.porcupine import parse_porcupine
from sharedstate.check.models import KVModel, RegisterModel, model_from_spec, model_spec

from .test_check_search import bench

HISTORIES = Path(__file__).parent / "check_histories"


def run(*args: str):
    return CliRunner().invoke(check_command, list(args), env={"COLUMNS": "200"})


# ------------------------------------------------------------------------- Jepsen


def test_jepsen_events_map_to_operations():
    ops, model = read_history_as(HISTORIES / "jepsen-register-ok.edn", "jepsen")
    assert model == "register"
    by = {(op.process, op.op, op.args): op for op in ops}
    assert len(ops) == 6  # the nemesis event is not a client's
    assert by[(0, "read", ())].result == 5  # :ok read: the value is the result
    assert by[(2, "write", (5,))].pending  # :info: outcome unknown
    assert by[(1, "cas", (2, 3))].error == "fail"  # :fail: did not happen
    assert by[(0, "cas", (1, 2))].result is True
    assert by[(1, "read", ())].result is None and not by[(1, "read", ())].pending
    write = by[(0, "write", (1,))]
    assert write.end < by[(0, "cas", (1, 2))].call  # order of events is real-time order


def test_jepsen_histories_end_to_end_on_the_command_line():
    ok = run("--history", str(HISTORIES / "jepsen-register-ok.edn"), "--format", "jepsen")
    assert ok.exit_code == 0, ok.output
    assert "model       register" in ok.output
    bad = run("--history", str(HISTORIES / "jepsen-register-bad.edn"), "--format", "jepsen")
    assert bad.exit_code == 1, bad.output
    assert "client 1's read() that returned 1" in bad.output


# Knossos's etcd test logs are Jepsen's textual log; a few lines in that style.
ETCD_LOG = """\
INFO  jepsen.util - 0\t:invoke\t:read\tnil
INFO  jepsen.util - 1\t:invoke\t:write\t4
INFO  jepsen.util - 0\t:ok\t:read\tnil
INFO  jepsen.util - 1\t:ok\t:write\t4
INFO  jepsen.util - 2\t:invoke\t:cas\t[4 1]
INFO  jepsen.util - 3\t:invoke\t:read\tnil
INFO  jepsen.util - 2\t:ok\t:cas\t[4 1]
INFO  jepsen.util - 3\t:fail\t:read\t:timed-out
INFO  jepsen.util - 4\t:invoke\t:read\tnil
INFO  jepsen.util - 4\t:ok\t:read\t{last}
"""


def test_jepsen_textual_log():
    ok = parse_jepsen(ETCD_LOG.format(last=1))
    assert [op.op for op in ok] == ["read", "write", "cas", "read", "read"]
    assert check_history(ok, "register").verdict == "linearizable"
    assert check_history(parse_jepsen(ETCD_LOG.format(last=4)), "register").verdict == "violation"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{:process 0, :type :invoke, :f :read}\n{:process 0, :type :invoke, :f :read}",
         "invokes again"),
        ("{:process 0, :type :ok, :f :read, :value 1}", "has no open call"),
        ("{:process 0, :type :invoke, :f :read}\n{:process 0, :type :ok, :f :write}",
         "completes :write"),
        ("{:process 0, :type :begin, :f :read}", "unknown :type"),
        ("{:process 0, :type :invoke, :f :cas, :value 3}", "[old new]"),
        ("{:process 0 :type", "not a valid EDN history"),
    ],
)
def test_bad_jepsen_histories_say_what_is_wrong(text, message):
    with pytest.raises(HistoryError) as info:
        parse_jepsen(text, "h.edn")
    assert message in str(info.value)


# ----------------------------------------------------------------------- Porcupine


def _porcupine_log(clients: int) -> list[dict]:
    """A benchmark kv history written as Porcupine's Go test would marshal it. Porcupine's
    kv model starts each key at "", so the reads of unset keys return ""."""
    return [
        {
            "ClientId": op.process,
            "Input": {"Op": op.op, "Key": op.key, "Value": op.args[0] if op.args else ""},
            "Call": int(op.call * 1e9),
            "Output": {"Value": "" if op.result is None else op.result},
            "Return": int(op.end * 1e9),
        }
        for op in bench.kv_history(clients, seed=3)
    ]


def test_porcupine_log_end_to_end(tmp_path):
    path = tmp_path / "c10.json"
    path.write_text(json.dumps(_porcupine_log(10)))
    ok = run("--history", str(path), "--format", "porcupine")
    assert ok.exit_code == 0, ok.output
    assert 'model       kv:""' in ok.output
    # the same history against our default start (null) is not linearizable
    wrong = run("--history", str(path), "--format", "porcupine", "--model", "kv")
    assert wrong.exit_code == 1, wrong.output
    assert "VIOLATION" in wrong.output


def test_porcupine_json_lines_numbers_and_unknown_outcomes():
    lines = [
        {"ClientId": 0, "Input": {"Op": 1, "Key": "x", "Value": "a"}, "Call": 0,
         "Output": {}, "Return": 10},
        {"ClientId": 1, "Input": {"Op": 2, "Key": "x", "Value": "b"}, "Call": 5,
         "Output": {"Unknown": True}, "Return": 100},
        {"clientid": 2, "input": {"op": 0, "key": "x"}, "call": 20, "output": {"value": "ab"},
         "return": 30},
    ]
    ops = parse_porcupine("\n".join(json.dumps(line) for line in lines))
    assert [op.op for op in ops] == ["put", "append", "get"]
    assert ops[1].pending
    assert check_history(ops, 'kv:""').verdict == "linearizable"


def test_bad_porcupine_logs_say_what_is_wrong():
    with pytest.raises(HistoryError, match="missing Input"):
        parse_porcupine('[{"Call": 1, "Return": 2}]')
    with pytest.raises(HistoryError, match="Input.Op must name"):
        parse_porcupine('[{"Input": {}, "Call": 1, "Return": 2}]')
    with pytest.raises(HistoryError, match="returns"):
        parse_porcupine('[{"Input": {"Op": "get"}, "Call": 5, "Return": 2}]')


# -------------------------------------------------------------------- start values


def test_kv_and_register_take_a_start_value():
    assert model_from_spec('kv:""').init() == ""
    assert model_from_spec("kv:").init() == ""
    assert model_from_spec("register:0").init() == 0
    assert model_from_spec("register:abc").init() == "abc"
    assert model_from_spec("kv:null").init() is None
    assert isinstance(model_from_spec("register:[1, 2]"), RegisterModel)
    assert model_spec(KVModel("")) == 'kv:""' and model_spec(KVModel()) == "kv"
    from sharedstate.check import Operation

    read_zero = [Operation(1, 0.0, 1.0, "read", (), 0)]
    assert check_history(read_zero, "register").verdict == "violation"
    assert check_history(read_zero, "register:0").verdict == "linearizable"
