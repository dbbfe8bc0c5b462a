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
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import click

from .backends import redact_url, split_url
from .demo_app import PREFIX_VARIABLE, URL_VARIABLE, VARIANTS
from .demo_asgi import ASGI_SERVERS, ASGI_VARIANTS, VARIANTS_VARIABLE, asgi_notes

HOST = "127.0.0.1"
NUMBER = r'<p class="number">(-?\d+)</p>'
START_TIMEOUT = 30.0


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


def _gunicorn(
    worker_class: str, *extra: str, app: str = "sharedstate.demo_app:create_app()"
) -> Callable[[int, int, int], list[str]]:
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
            "--log-level=info",
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
            "gunicorn-sync", "gunicorn -k sync -w N", _gunicorn("sync"), lambda w: w, ("gunicorn",)
        ),
        Mode(
            "gunicorn-gthread",
            "gunicorn -k gthread -w N --threads T",
            _gunicorn("gthread"),
            lambda w: w,
            ("gunicorn",),
        ),
        Mode(
            "gunicorn-gevent",
            "gunicorn -k gevent -w N",
            _gunicorn("gevent"),
            lambda w: w,
            ("gunicorn", "gevent"),
        ),
        Mode(
            "django-gthread",
            "Django, gunicorn -k gthread -w N --threads T",
            _gunicorn("gthread", app="sharedstate.django.demo_site:application"),
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
    _gunicorn("uvicorn_worker.UvicornWorker", app="sharedstate.django.demo_site:asgi_application"),
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


# -- results -------------------------------------------------------------------------------
@dataclass
class Row:
    """What the clients of one mode and variant saw, over every round."""

    mode: str
    variant: str
    #: (number, pid that served it) of each successful response
    seen: list[tuple[int, int]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    #: the answered calls, timed, as a counter history (``sharedstate check``'s Operation)
    calls: list[Any] = field(default_factory=list)

    @property
    def requests(self) -> int:
        return len(self.seen) + len(self.errors)

    @property
    def values(self) -> list[int]:
        return [value for value, _ in self.seen]

    @property
    def unique(self) -> int:
        return len(set(self.values))

    @property
    def duplicates(self) -> int:
        """Responses whose number another response also got."""
        return len(self.seen) - self.unique

    @property
    def skipped(self) -> int:
        """Numbers of 1..requests that no client got."""
        return len(set(range(1, self.requests + 1)) - set(self.values))

    @property
    def repeated_in_one_process(self) -> int:
        """Duplicates handed out by one process: lost updates between its threads."""
        by_pid: dict[int, list[int]] = {}
        for value, pid in self.seen:
            by_pid.setdefault(pid, []).append(value)
        return sum(len(values) - len(set(values)) for values in by_pid.values())

    @property
    def repeated_across_processes(self) -> int:
        """Duplicates not explained by one process: each process counted on its own copy."""
        return self.duplicates - self.repeated_in_one_process

    @property
    def processes(self) -> int:
        return len({pid for _, pid in self.seen})

    @property
    def exact(self) -> bool:
        """Each of 1..N once, in an order a counter could have given them in real time
        (the check's counter procedure on the timed calls, or on the numbers alone)."""
        if self.errors or sorted(self.values) != list(range(1, self.requests + 1)):
            return False
        from .check import Operation
        from .check.models import check_counter

        calls = self.calls or [Operation(0, 0.0, 1.0, "incr", (), v) for v in self.values]
        verdict = check_counter(calls, 0)
        return verdict is not None and verdict.ok

    @property
    def verdict(self) -> str:
        if self.exact:
            return "exact"
        found = []
        if self.errors:
            found.append(f"{len(self.errors)} failed")
        if self.repeated_across_processes:
            found.append("per-process copies")
        if self.repeated_in_one_process:
            found.append("lost updates")
        if not found and self.skipped:
            found.append("numbers out of range")
        return ", ".join(found)

    def summary(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "variant": self.variant,
            "requests": self.requests,
            "unique": self.unique,
            "duplicates": self.duplicates,
            "skipped": self.skipped,
            "repeated_in_one_process": self.repeated_in_one_process,
            "repeated_across_processes": self.repeated_across_processes,
            "processes": self.processes,
            "errors": self.errors[:5],
            "exact": self.exact,
            "verdict": self.verdict,
        }


# -- processes -----------------------------------------------------------------------------
class DemoError(click.ClickException):
    """A clear reason the demo cannot run (a missing package, a busy port, a dead server)."""


def _die_with_parent() -> None:
    """In the server's child process: be sent SIGTERM if the demo itself dies (even by
    SIGKILL, when no clean-up can run). Linux only; elsewhere the process group is enough."""
    os.setsid()
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class Server:
    """One server started for one mode: its own process group, its log in the temp dir."""

    def __init__(
        self, mode: Mode, port: int, workers: int, threads: int, env: dict[str, str], log_path: str
    ) -> None:
        self.mode = mode
        self.port = port
        self.workers = workers
        self.log_path = log_path
        self.command = mode.command(port, workers, threads)
        self._log = open(log_path, "wb")  # noqa: SIM115 (closed in stop())
        self.process = subprocess.Popen(
            self.command,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            preexec_fn=_die_with_parent,  # noqa: PLW1509 (single-threaded here)
        )

    def log_tail(self, lines: int = 15) -> str:
        with contextlib.suppress(OSError), open(self.log_path, "rb") as log:
            return "\n".join(log.read().decode(errors="replace").splitlines()[-lines:])
        return ""

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        """Until the server answers HTTP and (gunicorn) every worker has booted: a naive
        row measured while one worker is still starting would hide per-worker copies."""
        deadline = time.monotonic() + timeout
        wanted = self.mode.workers_to_boot(self.workers)
        while True:
            if self.process.poll() is not None:
                raise DemoError(
                    f"the {self.mode.name} server exited (status {self.process.returncode}) "
                    f"before it answered:\n{self.log_tail()}"
                )
            if _answers(self.port) and self._booted() >= wanted:
                return
            if time.monotonic() > deadline:
                raise DemoError(
                    f"the {self.mode.name} server did not answer on {HOST}:{self.port} within "
                    f"{timeout:g} s:\n{self.log_tail()}"
                )
            time.sleep(0.05)

    def _booted(self) -> int:
        with contextlib.suppress(OSError), open(self.log_path, "rb") as log:
            return log.read().count(self.mode.boot_line)
        return 0

    def stop(self) -> None:
        """Ends the whole process group (gunicorn's workers, the dev server's forked
        children): TERM, a grace period, then KILL."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)  # stragglers of the group, if any
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)
        self._log.close()


def _answers(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=1) as connection:
            connection.sendall(b"GET /ready HTTP/1.0\r\nHost: demo\r\n\r\n")
            return connection.recv(12).startswith(b"HTTP/")
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def check_port(port: int) -> None:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError as exc:
            raise DemoError(
                f"port {port} on {HOST} is in use ({exc.strerror}); pick another with --port, or leave it out"
            ) from None


def check_dependencies(modes: Sequence[Mode]) -> None:
    missing = sorted(
        {
            need
            for mode in modes
            for need in (*mode.needs, "httpx")
            if importlib.util.find_spec(need) is None
        }
    )
    if missing:
        names = ", ".join(missing)
        raise DemoError(
            f"the demo needs {names}, which is not installed: pip install 'sharedstate[demo]' "
            f"(or leave out the modes that need it with --mode)"
        )


@contextlib.contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM takes the same clean-up path as Ctrl-C."""

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# -- clients -------------------------------------------------------------------------------
def _burst(url: str, clients: int, timeout: float) -> tuple[list[tuple[int, int]], list[str], list[Any]]:
    """``clients`` requests at once, by ``sharedstate check``'s HTTP recorder: each client
    waits at a start line, then all go. Returns (number, pid) per answer, the problems,
    and the calls as a counter history (for the check's counter procedure)."""
    from .check.record import hammer, regex_extractor

    ops, stats = hammer(
        url, clients, clients, regex_extractor(NUMBER), timeout, burst=True, header="X-Demo-Pid"
    )
    answered = [(op, pid) for op, pid in zip(ops, stats.headers, strict=True) if not op.pending]
    return [(op.result, int(pid or 0)) for op, pid in answered], stats.problems, [op for op, _ in answered]


# -- the run -------------------------------------------------------------------------------
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


# -- the table -----------------------------------------------------------------------------
VARIANT_LABELS = {
    "naive": "naive",
    "naive-io": "naive + I/O",
    "sharedstate": "sharedstate",
    "sharedstate-io": "sharedstate + I/O",
    "naive-await": "naive + await",
}


def render(rows: list[Row], settings: Settings, url: str, console: Any) -> None:
    from rich import box
    from rich.table import Table

    table = Table(
        title=f"{settings.clients} simultaneous clients x {settings.rounds} round(s) per row",
        box=box.SIMPLE_HEAD,
    )
    for heading, justify in (
        ("mode", "left"),
        ("variant", "left"),
        ("requests", "right"),
        ("unique values", "right"),
        ("duplicates", "right"),
        ("skipped numbers", "right"),
        ("verdict", "left"),
    ):
        table.add_column(
            heading, justify=justify, no_wrap=heading in ("mode", "variant", "verdict")
        )  # type: ignore[arg-type]
    previous = None
    for row in rows:
        if previous is not None and row.mode != previous:
            table.add_section()
        previous = row.mode
        shared = row.variant.startswith("sharedstate")
        style = "green" if row.exact else ("bold red" if shared else "yellow")
        verdict = row.verdict if not (row.exact and not shared) else "exact (this run)"
        table.add_row(
            row.mode,
            VARIANT_LABELS[row.variant],
            str(row.requests),
            str(row.unique),
            str(row.duplicates),
            str(row.skipped),
            f"[{style}]{verdict}[/]",
        )
    console.print(table)
    django_rows = any(row.mode.startswith("django") for row in rows)
    if settings.url is not None or not all(row.mode.startswith("django") for row in rows):
        console.print(f"sharedstate store: {redact_url(url)}")
    if settings.url is None and django_rows:
        console.print(
            "Django rows' store: derived from DATABASES, "
            "sqlite:///<temporary directory>/<mode>/sharedstate.db"
        )
    notes = [
        "per-process copies: two processes handed out the same number; each worker (and, with "
        "processes=N, each request's forked child) counts on its own copy of the global.",
        "lost updates: one process handed out a number twice; two threads, greenlets or "
        "async tasks read the same value before either wrote it back.",
    ]
    bare = [r for r in rows if r.variant == "naive" and r.exact and r.mode not in ASGI_MODES]
    if bare:
        where = ", ".join(
            f"{r.mode} ({r.processes} process{'es' if r.processes != 1 else ''} answered)"
            for r in bare
        )
        notes.append(
            f"naive exact in {where}: when one process answers every client, its "
            "copy is the only one, and in CPython the bare `self.param += 1` is rarely torn "
            "between threads (they switch at calls and loop edges). That is luck, not safety: "
            "the '+ I/O' row does one I/O (time.sleep(0), standing for a log line or a query) "
            "between read and write, as real methods do."
        )
    notes += asgi_notes(rows, ASGI_MODES)
    for note in notes:
        console.print(f"- {note}", highlight=False)
    shared_rows = [r for r in rows if r.variant.startswith("sharedstate")]
    if shared_rows and all(r.exact for r in shared_rows):
        console.print(
            "[green]sharedstate: every client got a unique number, 1..N, in every mode.[/]"
        )
    elif shared_rows:
        console.print("[bold red]sharedstate: NOT exact in some row (see above).[/]")


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


__all__ = ["MODES", "Row", "Settings", "demo_command", "run_demo"]
