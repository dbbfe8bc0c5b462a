"""The ASGI rows of ``sharedstate demo``: uvicorn, gunicorn with the uvicorn worker, and
hypercorn, each with 4 worker processes, serving :mod:`sharedstate.demo_asgi_app`.

:mod:`sharedstate.demo` runs them exactly like its WSGI rows (the same clients, the same
verdicts); this module says only how to start each server, how many log lines mean its
workers are ready, and what the ASGI rows mean. It imports no server and no framework, so
``sharedstate demo --stack wsgi`` works without them.

Why ``uvicorn_worker.UvicornWorker`` for gunicorn: ``uvicorn.workers`` is deprecated in
uvicorn itself; its maintainers moved the worker to the ``uvicorn-worker`` package.

Why a worker is counted as ready by its own log line (uvicorn: ``Application startup
complete.``, once per worker; hypercorn: ``Running on``, once per worker): a naive row
measured while a worker is still starting would have fewer processes answering, and so
fewer per-process copies than the deployment really has.
"""

from __future__ import annotations

import sys
from collections.abc import Set
from typing import Any

HOST = "127.0.0.1"
APP = "sharedstate.demo_asgi_app"

#: the ASGI variants, in the order the table shows them
ASGI_VARIANTS = ("naive", "naive-await", "sharedstate")
#: the environment variable that tells the app which variants to serve
VARIANTS_VARIABLE = "SHAREDSTATE_DEMO_VARIANTS"

VARIANT_LABELS = {"naive-await": "naive + await"}


def uvicorn_command(port: int, workers: int, threads: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "uvicorn",
        f"--host={HOST}",
        f"--port={port}",
        f"--workers={workers}",
        "--timeout-graceful-shutdown=2",
        "--log-level=info",
        "--factory",
        f"{APP}:create_app",
    ]


def gunicorn_uvicorn_command(port: int, workers: int, threads: int) -> list[str]:
    # the demo's gunicorn command line, with the uvicorn worker (imported here, at call
    # time: demo_modes builds its table from this module's)
    from .demo_modes import gunicorn_command

    command = gunicorn_command("uvicorn_worker.UvicornWorker", app=f"{APP}:create_app()")
    return command(port, workers, threads)


def hypercorn_command(port: int, workers: int, threads: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "hypercorn",
        f"--bind={HOST}:{port}",
        f"--workers={workers}",
        "--graceful-timeout=2",
        f"{APP}:create_app()",
    ]


#: name, label, command, the log line each ready worker prints, packages needed
ASGI_SERVERS: tuple[tuple[str, str, Any, bytes, tuple[str, ...]], ...] = (
    (
        "uvicorn",
        "uvicorn --workers N",
        uvicorn_command,
        b"Application startup complete",
        ("uvicorn", "starlette"),
    ),
    (
        "gunicorn-uvicorn",
        "gunicorn -k uvicorn_worker.UvicornWorker -w N",
        gunicorn_uvicorn_command,
        b"Application startup complete",
        ("gunicorn", "uvicorn", "uvicorn_worker", "starlette"),
    ),
    (
        "hypercorn",
        "hypercorn --workers N",
        hypercorn_command,
        b"Running on http://",
        ("hypercorn", "starlette"),
    ),
)


def asgi_notes(rows: list[Any], asgi_modes: Set[str]) -> list[str]:
    """What the ASGI rows of this run mean, in words (only for what the run showed)."""
    notes: list[str] = []
    asgi = [row for row in rows if row.mode in asgi_modes]
    naive = [row for row in asgi if row.variant == "naive"]
    if naive:
        torn = sum(row.repeated_in_one_process for row in naive)
        notes.append(
            "ASGI, naive: a plain method called from `async def` runs to its end before the "
            "event loop serves another request, so one worker "
            + ("lost no update here" if not torn else f"still repeated {torn} number(s)")
            + "; but each of the workers counts on its own copy of the global."
        )
    if any(row.variant == "naive-await" for row in asgi):
        notes.append(
            "ASGI, naive + await: an `await` between the read and the write (a log call, a "
            "query) hands the loop to other requests, which read the same value: lost "
            "updates inside one worker, on top of the per-worker copies."
        )
    return notes


__all__ = [
    "ASGI_SERVERS",
    "ASGI_VARIANTS",
    "VARIANTS_VARIABLE",
    "asgi_notes",
    "gunicorn_uvicorn_command",
    "hypercorn_command",
    "uvicorn_command",
]
