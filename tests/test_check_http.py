"""``sharedstate check URL`` against real gunicorn servers on 127.0.0.1.

The naive global counter app (tests/apps/naive_counter.py) under 4 worker processes must be
caught (each worker counts on its own: duplicates are certain); the same app with
sharedstate (tests/apps/shared_counter.py) must come out exact: 1..N, linearizable.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from sharedstate.check import read_history
from sharedstate.check.command import check_command
from sharedstate.check.record import json_path_extractor, regex_extractor

APPS = Path(__file__).parent / "apps"
GUNICORN = Path(sys.executable).parent / "gunicorn"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def gunicorn(app: str, env: dict[str, str] | None = None) -> Iterator[str]:
    """A gunicorn with 4 gthread workers x 8 threads serving ``tests/apps/<app>.py``."""
    if not GUNICORN.exists():
        pytest.skip("gunicorn is not installed in this environment")
    port = _free_port()
    proc = subprocess.Popen(
        [str(GUNICORN), "-w", "4", "-k", "gthread", "--threads", "8",
         "-b", f"127.0.0.1:{port}", "--chdir", str(APPS), "--graceful-timeout", "2",
         f"{app}:app"],
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                pytest.fail(f"gunicorn for {app} exited with {proc.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"gunicorn for {app} did not start")
                time.sleep(0.1)
        time.sleep(1.0)  # let every worker boot (imports take a moment)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_naive_counter_app_is_caught(tmp_path):
    history = tmp_path / "naive.jsonl"
    report = tmp_path / "naive.html"
    with gunicorn("naive_counter") as url:
        result = CliRunner().invoke(
            check_command,
            [url, "--clients", "20", "--requests", "200", "--save-history", str(history),
             "--report", str(report)],
            env={"COLUMNS": "200"},
        )
    assert result.exit_code == 1, result.output
    assert "VIOLATION" in result.output
    assert "each number can be returned only once" in result.output
    ops = read_history(history)
    assert len(ops) == 200
    values = [op.result for op in ops if not op.pending]
    assert len(set(values)) < len(values), "4 workers counting apart must repeat numbers"
    assert report.read_text().count('"failing": true') >= 2


def test_sharedstate_app_is_exact_and_linearizable(tmp_path):
    history = tmp_path / "shared.jsonl"
    env = {"SHAREDSTATE_TEST_URL": f"sqlite:///{tmp_path}/x.db"}
    with gunicorn("shared_counter", env) as url:
        result = CliRunner().invoke(
            check_command,
            [url, "--clients", "20", "--requests", "200", "--start", "0",
             "--save-history", str(history)],
            env={"COLUMNS": "200"},
        )
    assert result.exit_code == 0, result.output
    assert "LINEARIZABLE" in result.output
    ops = read_history(history)
    assert sorted(op.result for op in ops) == list(range(1, 201))


def test_unreachable_url_is_an_input_error():
    port = _free_port()  # nothing listens there
    result = CliRunner().invoke(
        check_command, [f"http://127.0.0.1:{port}/", "--clients", "2", "--requests", "4",
                        "--timeout", "2"],
    )
    assert result.exit_code == 3
    assert "no request" in result.output


def test_extractors():
    assert regex_extractor()("you are visitor 42!") == 42
    assert regex_extractor(r"count=(\d+)")("id=7 count=19") == 19
    assert json_path_extractor("$.data.count")(json.dumps({"data": {"count": 5}})) == 5
    assert json_path_extractor("items[1].n")(json.dumps({"items": [{"n": 1}, {"n": 2}]})) == 2
    with pytest.raises(ValueError):
        regex_extractor()("no number here")
    with pytest.raises(KeyError):
        json_path_extractor("$.missing")("{}")



def test_demo_records_with_the_check_recorder_and_judges_with_its_counter_check():
    """``sharedstate demo`` fires its bursts through check's recorder and calls a row exact
    only when the check's counter procedure accepts the timed calls."""
    import http.server
    import threading

    from sharedstate.check import Operation
    from sharedstate.demo import Row, _burst

    lock = threading.Lock()
    count = [0]

    class Counter(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the name http.server calls
            with lock:
                count[0] += 1
                body = f'<p class="number">{count[0]}</p>'.encode()
            self.send_response(200)
            self.send_header("X-Demo-Pid", "4242")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Counter)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        seen, errors, calls = _burst(f"http://127.0.0.1:{server.server_port}/", 20, 10)
    finally:
        server.shutdown()
    assert errors == []
    assert sorted(seen) == [(n, 4242) for n in range(1, 21)]
    assert len({op.process for op in calls}) == 20  # one request per client
    row = Row("m", "sharedstate", seen=seen, calls=calls)
    assert row.exact
    # the numbers 1..2, but the call that got 1 began after the one that got 2 had finished
    late = [Operation(0, 0.0, 1.0, "incr", (), 2), Operation(1, 2.0, 3.0, "incr", (), 1)]
    assert not Row("m", "sharedstate", seen=[(2, 1), (1, 1)], calls=late).exact
    assert Row("m", "sharedstate", seen=[(2, 1), (1, 1)]).exact  # untimed: numbers alone
