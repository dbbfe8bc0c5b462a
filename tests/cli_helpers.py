"""What the Flask and Quart tests check of their ``sharedstate show/reset`` commands.

The two commands print with the same words (``sharedstate.cli_show``), so one list of
expectations keeps them alike; each test only runs its framework's command line and then
looks at its own app."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

BIN = Path(sys.executable).parent

Cli = Callable[..., "subprocess.CompletedProcess[str]"]


def run_app_cli(
    program: str, app: str, cwd: Path, env: dict[str, str], *args: str
) -> subprocess.CompletedProcess[str]:
    """``program --app APP sharedstate ARGS`` from the venv, with ``env`` added to ours."""
    return subprocess.run(
        [str(BIN / program), "--app", app, "sharedstate", *args],
        env=dict(os.environ, **env),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def check_show_then_reset(cli: Cli, url: str) -> None:
    """After four visits of the CLI test app: ``show`` lists both stored names and the one
    only declared, ``show NAME`` shows a state, an unknown name fails, and ``reset --yes``
    forgets ``global_obj`` (the caller checks its app made it anew)."""
    listing = cli("show")
    assert listing.returncode == 0, listing.stderr
    assert url in listing.stdout
    assert "global_obj" in listing.stdout and "param=4" in listing.stdout
    assert "visits" in listing.stdout and "4" in listing.stdout
    assert "declared_only" in listing.stdout and "nothing stored yet" in listing.stdout

    one = cli("show", "global_obj")
    assert one.returncode == 0, one.stderr
    assert "param = 4" in one.stdout

    missing = cli("show", "nope")
    assert missing.returncode != 0 and "nothing named 'nope'" in missing.stderr

    reset = cli("reset", "global_obj", "--yes")
    assert reset.returncode == 0, reset.stderr

    refused = cli("reset", "visits")  # asks first; no answer: aborted
    assert refused.returncode != 0
