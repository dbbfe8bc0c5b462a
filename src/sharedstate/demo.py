"""``sharedstate demo``: the classic Flask global counter under real servers and simultaneous
clients (and its ``async def`` twin under ASGI servers: :mod:`sharedstate.demo_asgi`).

For each way people serve such an app (Flask's development server, threaded and with
``processes=N``; gunicorn with sync, gthread and gevent workers) the demo starts one real
server on 127.0.0.1 serving the four apps of :mod:`sharedstate.demo_app`, fires N
simultaneous HTTP clients at each app (one burst per round), and compares the numbers the
clients saw with the ones they should have seen: each of 1..N exactly once.

Anomalies are sorted by where they come from, using the pid that served each response:

* **per-process copies**: two processes handed out the same number. Every worker holds its
  own copy of a module global (with ``processes=N`` the dev server forks per request, so
  each request counts on a fresh copy).
* **lost updates**: one process handed out the same number twice. Two threads (or
  greenlets) read the same value before either wrote it back.

The Django rows serve :mod:`sharedstate.django.demo_site` (the same view, the Django way)
under gunicorn gthread; their store, unless ``--url`` names one, is the default a Django
project gets: ``sharedstate.db`` beside the project's SQLite database.

Only the sharedstate rows decide the exit status: the naive rows show whatever happened
in this run (the bare ``+= 1`` between threads of one process usually comes out right in
CPython; the demo says so rather than hiding it).

Every server runs in its own process group, which is killed (TERM, then KILL) when its mode
is done, when the demo fails, and on Ctrl-C or SIGTERM; the temporary directory (the SQLite
file, the server logs) goes with it.

This module runs the demo (:func:`run_demo`) and is its command; the table of server modes
is :mod:`sharedstate.demo_modes`, the servers and the bursts of clients
:mod:`sharedstate.demo_servers`, and the judgement of each row with the printed table
:mod:`sharedstate.demo_report`.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import click

from .backends import split_url
from .demo_app import PREFIX_VARIABLE, URL_VARIABLE
from .demo_asgi import VARIANTS_VARIABLE
from .demo_modes import ALL_VARIANTS, DJANGO_DIRECTORY_VARIABLE, DJANGO_NAMES, HOST, MODES, Mode
from .demo_report import Row, render
from .demo_servers import (
    DemoError,
    Server,
    _burst,
    _terminate_as_interrupt,
    check_dependencies,
    check_port,
    free_port,
)


@dataclass
class Settings:
    modes: list[str]
    variants: list[str]
    clients: int = 100
    rounds: int = 1
    workers: int = 4
    threads: int = 8
    url: str | None = None
    port: int | None = None
    timeout: float = 60.0


def run_demo(
    settings: Settings, progress: Callable[[str, int], None] = lambda text, step: None
) -> list[Row]:
    """Runs every mode and variant; returns the rows. ``progress(text, steps_done)`` is
    told what happens. Servers and the temporary directory are gone when it returns or
    raises (KeyboardInterrupt included)."""
    modes = [MODES[name] for name in settings.modes]
    check_dependencies(modes)
    if settings.port is not None:
        check_port(settings.port)
    if settings.url is not None:
        split_url(settings.url)
    run = uuid.uuid4().hex[:8]
    workdir = tempfile.mkdtemp(prefix="sharedstate-demo-")
    url = settings.url or f"sqlite:///{workdir}/demo.db"
    rows: list[Row] = []
    server: Server | None = None
    done = 0
    try:
        for mode in modes:
            port = settings.port if settings.port is not None else free_port()
            env = dict(os.environ)
            env[URL_VARIABLE] = url
            env[PREFIX_VARIABLE] = f"demo-{run}-{mode.name}-"
            env[VARIANTS_VARIABLE] = ",".join(v for v in settings.variants if v in mode.variants)
            env["PYTHONUNBUFFERED"] = "1"
            if mode.name.startswith("django"):
                env[DJANGO_DIRECTORY_VARIABLE] = os.path.join(workdir, mode.name)
                env["SHAREDSTATE_DEMO_DJANGO_STACK"] = mode.stack
                if settings.url is None:  # the store a Django project gets by default
                    del env[URL_VARIABLE]
            progress(f"{mode.name}: starting the server", done)
            server = Server(
                mode,
                port,
                settings.workers,
                settings.threads,
                env,
                os.path.join(workdir, f"{mode.name}.log"),
            )
            server.wait_ready()
            for variant in mode.variants:
                if variant not in settings.variants:
                    continue
                row = Row(mode.name, variant)
                for round_number in range(settings.rounds):
                    progress(
                        f"{mode.name}: {settings.clients} clients -> /{variant}/ (round {round_number + 1})",
                        done,
                    )
                    seen, errors, calls = _burst(
                        f"http://{HOST}:{port}/{variant}/", settings.clients, settings.timeout
                    )
                    row.seen += seen
                    row.errors += errors
                    row.calls += calls
                    done += 1
                rows.append(row)
            progress(f"{mode.name}: stopping the server", done)
            server.stop()
            server = None
    finally:
        if server is not None:
            server.stop()
        if settings.url is not None:
            _forget_names(settings.url, run, modes)
        shutil.rmtree(workdir, ignore_errors=True)
    return rows


def _forget_names(url: str, run: str, modes: Sequence[Mode]) -> None:
    """On a store the user named, removes what this run stored."""
    import sharedstate

    with contextlib.suppress(Exception), sharedstate.connect(url) as store:
        for mode in modes:
            for variant in ("sharedstate", "sharedstate-io"):
                store.prefix = f"demo-{run}-{mode.name}-{variant}-"
                with contextlib.suppress(Exception):
                    store.delete("global_obj")
            if mode.name.startswith("django"):
                store.prefix = f"demo-{run}-{mode.name}-"
                for name in DJANGO_NAMES:
                    with contextlib.suppress(Exception):
                        store.delete(name)


@click.command("demo")
@click.option(
    "--clients",
    default=100,
    show_default=True,
    type=click.IntRange(1, 2000),
    help="Simultaneous clients per burst.",
)
@click.option(
    "--rounds",
    default=1,
    show_default=True,
    type=click.IntRange(1),
    help="Bursts per mode and variant.",
)
@click.option(
    "--mode",
    "modes",
    multiple=True,
    type=click.Choice(list(MODES)),
    help="Server mode to run (repeatable; default: all).",
)
@click.option(
    "--variant",
    "variants",
    multiple=True,
    type=click.Choice(list(ALL_VARIANTS)),
    help="App variant to run (repeatable; default: all).",
)
@click.option(
    "--stack",
    default="all",
    show_default=True,
    type=click.Choice(["wsgi", "asgi", "all"]),
    help="WSGI servers (Flask, gunicorn), ASGI servers (uvicorn, hypercorn), or both.",
)
@click.option(
    "--workers",
    default=4,
    show_default=True,
    type=click.IntRange(1),
    help="Worker processes (gunicorn -w, uvicorn/hypercorn --workers, app.run(processes=N)).",
)
@click.option(
    "--threads",
    default=8,
    show_default=True,
    type=click.IntRange(1),
    help="Threads per gthread worker.",
)
@click.option(
    "--url",
    default=None,
    help="Store URL for the sharedstate apps (default: a temporary SQLite file).",
)
@click.option(
    "--port",
    default=None,
    type=click.IntRange(1, 65535),
    help="Port on 127.0.0.1 (default: a free one per server).",
)
@click.option(
    "--json",
    "json_path",
    default=None,
    type=click.Path(dir_okay=False),
    help="Also write the rows as JSON to this file.",
)
def demo_command(
    clients: int,
    rounds: int,
    modes: tuple[str, ...],
    variants: tuple[str, ...],
    stack: str,
    workers: int,
    threads: int,
    url: str | None,
    port: int | None,
    json_path: str | None,
) -> None:
    """The classic global counter (Flask; async def under ASGI servers), naive beside
    sharedstate, under real servers.

    Starts each server mode on 127.0.0.1, sends CLIENTS simultaneous requests to each app and
    prints what the clients saw. Exit status 0 only when every sharedstate row is exact.
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    chosen = [m for m in (modes or MODES) if stack in ("all", MODES[m].stack)]
    if not chosen:
        raise click.UsageError(f"none of the modes given with --mode is a {stack.upper()} server")
    settings = Settings(
        modes=chosen,
        variants=list(variants) or list(ALL_VARIANTS),
        clients=clients,
        rounds=rounds,
        workers=workers,
        threads=threads,
        url=url,
        port=port,
    )
    shown_url = url or "sqlite:///<temporary directory>/demo.db"
    err = Console(stderr=True)
    out = Console()
    if not out.is_terminal:
        out = Console(width=132)  # a file or a pipe: keep the table's rows on one line each
    total = settings.rounds * sum(
        len([v for v in settings.variants if v in MODES[m].variants]) for m in settings.modes
    )
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    try:
        with _terminate_as_interrupt(), Progress(*columns, console=err, transient=True) as bar:
            task = bar.add_task("starting", total=total)
            rows = run_demo(
                settings, lambda text, step: bar.update(task, description=text, completed=step)
            )
            bar.update(task, completed=total)
    except KeyboardInterrupt:
        err.print("interrupted: every server was stopped and the temporary files removed")
        raise SystemExit(130) from None
    render(rows, settings, shown_url, out)
    if json_path:
        with open(json_path, "w") as file:
            json.dump([row.summary() for row in rows], file, indent=1)
    shared_rows = [r for r in rows if r.variant.startswith("sharedstate")]
    if not all(row.exact for row in shared_rows):
        raise SystemExit(1)


#: what was defined here before the demo was split into modules, still importable from here
#: (the benchmarks and the tests start servers with ``Server``, ``Mode`` and ``free_port``)
__all__ = [
    "DJANGO_DIRECTORY_VARIABLE",
    "HOST",
    "MODES",
    "DemoError",
    "Mode",
    "Row",
    "Server",
    "Settings",
    "check_dependencies",
    "demo_command",
    "free_port",
    "run_demo",
]
