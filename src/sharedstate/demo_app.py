"""The apps that ``sharedstate demo`` serves: the classic Flask global counter, naive and with
sharedstate.

These are copies of ``examples/flask_app/`` that an installed package can import (a server
started by the demo must find them on ``sys.path``). Four variants, each a separate Flask
app with the counter's one route, mounted side by side under one server:

=================== ===================================================================
``/naive/``          as people write it: ``global_obj = SomeObj(0)``, a module global
``/naive-io/``       the same with a method that does I/O between its read and its write
``/sharedstate/``    the same app with the two-line sharedstate change
``/sharedstate-io/`` that change applied to the method with I/O
=================== ===================================================================

Why the I/O variant: in CPython, threads of one process switch only at calls and loop
edges, so a bare ``self.param += 1`` is in practice never torn between threads and a
one-process threaded server looks right. Real methods log, query or call out between
reading and writing their state, and then threads race: the ``-io`` variants show it.

Every response carries ``X-Demo-Pid``, the process that served it, so the demo can tell
per-process copies (a number repeated by two processes) from lost updates (a number
repeated inside one process). Run as ``python -m sharedstate.demo_app --port P
[--processes N]`` it is Flask's development server, as ``app.run`` would start it.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask, flash, render_template
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from .examples import SomeObj, SomeObjWithIO
from .flask import SharedState

#: environment read by :func:`create_app` in each server process
URL_VARIABLE = "SHAREDSTATE_DEMO_URL"
PREFIX_VARIABLE = "SHAREDSTATE_DEMO_PREFIX"

VARIANTS = ("naive", "naive-io", "sharedstate", "sharedstate-io")


def naive_app(cls: type = SomeObj) -> Flask:
    """The counter as people write it: a module-level ``global_obj`` (here one per app made)."""
    app = Flask(__name__)
    app.secret_key = "demo"
    global_obj = cls(0)

    @app.route("/")
    def home():
        flash(global_obj.query())
        return render_template("index.html")

    return app


def shared_app(cls: type = SomeObj, url: str | None = None, prefix: str | None = None) -> Flask:
    """The same app with sharedstate: ``global_obj`` is one object for every process."""
    app = Flask(__name__)
    app.secret_key = "demo"
    app.config["SHAREDSTATE_URL"] = url
    app.config["SHAREDSTATE_PREFIX"] = prefix
    state = SharedState(app)
    global_obj: Any = state.object("global_obj", cls, 0)

    @app.route("/")
    def home():
        flash(global_obj.query())
        return render_template("index.html")

    return app


def _not_found(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [
        b"sharedstate demo: the apps are at /naive/, /naive-io/, /sharedstate/, /sharedstate-io/\n"
    ]


class _ServedBy:
    """WSGI middleware: adds ``X-Demo-Pid`` (the serving process) to every response."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            headers.append(("X-Demo-Pid", str(os.getpid())))
            return start_response(status, headers, exc_info)

        return self.app(environ, start)


def create_app(url: str | None = None, prefix: str | None = None) -> _ServedBy:
    """All four variants under one server; the store URL and name prefix come from the
    arguments or the environment (the demo sets them for each server it starts)."""
    url = url or os.environ.get(URL_VARIABLE)
    prefix = prefix if prefix is not None else os.environ.get(PREFIX_VARIABLE, "")
    mounts: dict[str, Any] = {
        "/naive": naive_app(SomeObj),
        "/naive-io": naive_app(SomeObjWithIO),
        "/sharedstate": shared_app(SomeObj, url, f"{prefix}sharedstate-"),
        "/sharedstate-io": shared_app(SomeObjWithIO, url, f"{prefix}sharedstate-io-"),
    }
    return _ServedBy(DispatcherMiddleware(_not_found, mounts))


def variant_app(variant: str) -> Flask:
    """One variant alone at ``/``, as a user would deploy it (``benchmarks/http_bench.py``):
    ``gunicorn 'sharedstate.demo_app:variant_app("sharedstate")'``."""
    url = os.environ.get(URL_VARIABLE)
    prefix = os.environ.get(PREFIX_VARIABLE, "")
    cls = SomeObjWithIO if variant.endswith("-io") else SomeObj
    if variant.startswith("naive"):
        return naive_app(cls)
    return shared_app(cls, url, f"{prefix}{variant}-")


def main(argv: list[str] | None = None) -> None:
    """Flask's development server, started as ``app.run(threaded=True)`` or
    ``app.run(processes=N, threaded=False)`` would start it."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--processes", type=int, default=1)
    args = parser.parse_args(argv)
    from werkzeug.serving import run_simple

    run_simple(
        "127.0.0.1",
        args.port,
        create_app(),
        threaded=args.processes == 1,
        processes=args.processes,
    )


if __name__ == "__main__":
    main()
