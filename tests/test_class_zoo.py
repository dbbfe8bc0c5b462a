"""``examples/class_zoo.py``, run twice (a deploy between) on every backend shared by
processes: every class works or is refused clearly."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ZOO = Path(__file__).resolve().parents[1] / "examples" / "class_zoo.py"


def run_zoo(url: str, *extra: str) -> str:
    done = subprocess.run(
        [sys.executable, str(ZOO), "--url", url, *extra], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "BAD" not in done.stdout and "Traceback" not in done.stderr
    return done.stdout


def test_class_zoo_two_runs(multiprocess_url):
    first = run_zoo(multiprocess_url)
    assert "refused when declared: class __main__:Queue derives from deque" in first
    second = run_zoo(multiprocess_url, "--second-run")
    assert "ok  Profile v2's new attribute: ['visit-2']" in second
