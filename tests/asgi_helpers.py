"""Real servers for the ASGI tests: a command started as ``sharedstate demo`` starts its
servers (own process group, log in the test's directory, stopped TERM then KILL), waited for
until every worker has printed its ready line."""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sharedstate.demo import HOST, Mode, Server, free_port

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"

#: the line each ready worker prints
UVICORN_READY = b"Application startup complete"
HYPERCORN_READY = b"Running on http://"
GUNICORN_READY = b"Booting worker with pid"


@contextlib.contextmanager
def serve(
    command: Callable[[int], list[str]],
    ready_line: bytes,
    workers: int,
    env: dict[str, str],
    log: Path,
    cwd: Path | None = None,
) -> Iterator[str]:
    """Starts ``command(port)`` (in ``cwd``, when given) and yields its base URL once
    ``workers`` workers are ready."""
    port = free_port()

    def run(port: int, _workers: int, _threads: int) -> list[str]:
        if cwd is None:
            return command(port)
        return ["/bin/sh", "-c", 'cd "$0" && exec "$@"', str(cwd), *command(port)]

    mode = Mode(
        log.stem,
        log.stem,
        run,
        lambda w: w,
        boot_line=ready_line,
    )
    server = Server(mode, port, workers, 1, {**os.environ, **env}, str(log))
    try:
        server.wait_ready()
        yield f"http://{HOST}:{port}"
    finally:
        server.stop()


def copy_example(name: str, tmp_path: Path) -> Path:
    """``examples/<name>`` copied into the test's directory (its instance folder, its SQLite
    file and the server's working directory are then the test's)."""
    target = tmp_path / name
    shutil.copytree(EXAMPLES / name, target)
    return target


def unique_prefix() -> str:
    return f"t{uuid.uuid4().hex[:12]}-"


def base_url(request: pytest.FixtureRequest, backend: str, tmp_path: Path) -> str:
    """The base URL of ``backend`` (sqlite: a file in the test's directory)."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path}/state.db"
    return request.getfixturevalue({"redis": "redis_url", "postgresql": "postgres_url"}[backend])


def code_lines(path: Path) -> list[str]:
    """A module's code without its docstring and comments, for comparing two examples."""
    body = path.read_text().split('"""', 2)[2]
    return [line.split("#")[0].rstrip() for line in body.splitlines() if line.strip()]


def changed_lines(naive: Path, shared: Path) -> tuple[list[str], list[str]]:
    """(removed, added) lines between two examples."""
    import difflib

    diff = [
        line
        for line in difflib.unified_diff(code_lines(naive), code_lines(shared), lineterm="", n=0)
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]
    return [x[1:] for x in diff if x[0] == "-"], [x[1:] for x in diff if x[0] == "+"]
