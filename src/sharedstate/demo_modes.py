"""The server modes of ``sharedstate demo``: each way people serve the counter app, as the
command that starts it and what to wait for before its row is measured.

A table of its own because the benchmarks and the tests start these same servers (with
:class:`~sharedstate.demo_servers.Server`), and because adding a way to serve the app is
adding a row here, not touching how the demo runs or reports.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass

from .demo_app import VARIANTS
from .demo_asgi import ASGI_SERVERS, ASGI_VARIANTS

HOST = "127.0.0.1"


@dataclass(frozen=True)
class Mode:
    """A way to serve the app: Flask's development server or a gunicorn worker class."""

    name: str
    label: str
    #: the server command, given (port, workers, threads)
    command: Callable[[int, int, int], list[str]]
    #: "Booting worker" lines to wait for in the log, given workers (0: none)
    workers_to_boot: Callable[[int], int]
    needs: tuple[str, ...] = ()
    #: "wsgi" or "asgi" (``--stack``), the variants its app serves, its ready-worker log line
    stack: str = "wsgi"
    variants: tuple[str, ...] = VARIANTS
    boot_line: bytes = b"Booting worker with pid"


def gunicorn_command(
    worker_class: str,
    *extra: str,
    app: str = "sharedstate.demo_app:create_app()",
    log_level: str = "info",
) -> Callable[[int, int, int], list[str]]:
    """The command of a gunicorn mode, given (port, workers, threads); ``extra`` options go
    before the app. Shared with the HTTP benchmarks, which serve their apps the same way.
    ``log_level`` info is what lets :class:`~sharedstate.demo_servers.Server` count the
    booted workers."""

    def command(port: int, workers: int, threads: int) -> list[str]:
        options = [f"--threads={threads}"] if worker_class == "gthread" else []
        return [
            sys.executable,
            "-m",
            "gunicorn",
            f"--bind={HOST}:{port}",
            f"--workers={workers}",
            f"--worker-class={worker_class}",
            *options,
            *extra,
            "--graceful-timeout=2",
            f"--log-level={log_level}",
            app,
        ]

    return command


MODES: dict[str, Mode] = {
    mode.name: mode
    for mode in (
        Mode(
            "flask-threaded",
            "Flask dev server, app.run(threaded=True)",
            lambda port, workers, threads: [
                sys.executable,
                "-m",
                "sharedstate.demo_app",
                f"--port={port}",
            ],
            lambda workers: 0,
        ),
        Mode(
            "flask-processes",
            "Flask dev server, app.run(processes=N, threaded=False)",
            lambda port, workers, threads: [
                sys.executable,
                "-m",
                "sharedstate.demo_app",
                f"--port={port}",
                f"--processes={workers}",
            ],
            lambda workers: 0,
        ),
        Mode(
            "gunicorn-sync", "gunicorn -k sync -w N", gunicorn_command("sync"), lambda w: w, ("gunicorn",)
        ),
        Mode(
            "gunicorn-gthread",
            "gunicorn -k gthread -w N --threads T",
            gunicorn_command("gthread"),
            lambda w: w,
            ("gunicorn",),
        ),
        Mode(
            "gunicorn-gevent",
            "gunicorn -k gevent -w N",
            gunicorn_command("gevent"),
            lambda w: w,
            ("gunicorn", "gevent"),
        ),
        Mode(
            "django-gthread",
            "Django, gunicorn -k gthread -w N --threads T",
            gunicorn_command("gthread", app="sharedstate.django.demo_site:application"),
            lambda w: w,
            ("gunicorn", "django"),
        ),
    )
}
MODES.update(
    (name, Mode(name, label, command, lambda w: w, needs, "asgi", ASGI_VARIANTS, line))
    for name, label, command, line, needs in ASGI_SERVERS
)
MODES["django-uvicorn"] = Mode(
    "django-uvicorn",
    "Django ASGI, gunicorn -k uvicorn_worker.UvicornWorker -w N",
    gunicorn_command("uvicorn_worker.UvicornWorker", app="sharedstate.django.demo_site:asgi_application"),
    lambda w: w,
    ("gunicorn", "uvicorn", "uvicorn_worker", "django"),
    "asgi",
    ASGI_VARIANTS,
)
ALL_VARIANTS = tuple(dict.fromkeys((*VARIANTS, *ASGI_VARIANTS)))
ASGI_MODES = frozenset(name for name, mode in MODES.items() if mode.stack == "asgi")

#: the directory of the Django rows' project database (and so of their default store)
DJANGO_DIRECTORY_VARIABLE = "SHAREDSTATE_DEMO_DJANGO_DIR"
#: names the Django site stores under the mode's prefix (one store for its two variants)
DJANGO_NAMES = ("global_obj", "global_obj_io")
