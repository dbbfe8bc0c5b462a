"""HTTP benchmark: the global counter app, naive vs sharedstate on SQLite, gunicorn gthread.

    .venv/bin/python benchmarks/http_bench.py [--rounds 5] [--duration 5] [--connections 64]

The apps run at once under ``gunicorn -k gthread -w 4 --threads 8`` on 127.0.0.1 (each its
own server); ``wrk`` loads one, then the other, alternating, for several rounds, so that
both see the same machine conditions. Prints each round, the median requests per second of
each app and their ratio (sharedstate / naive). The apps are :func:`sharedstate.demo_app.
variant_app`: the counter's view (``flash`` + ``render_template``) with its ``SomeObj``.

The naive app's numbers are wrong (per-worker copies), so it is the ceiling, not a rival:
the question is what one atomic, shared ``query()`` per request costs. A third app,
``handwritten_sqlite_app.py`` (one hand-written ``UPDATE ... RETURNING`` per request), runs
in the same rounds: the floor of writing each request's number to disk at all.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile

from wrk_load import alternating_rounds, require_wrk, wrk

from sharedstate.demo import Mode, Server, free_port
from sharedstate.demo_app import PREFIX_VARIABLE, URL_VARIABLE
from sharedstate.demo_modes import gunicorn_command

HERE = os.path.dirname(os.path.abspath(__file__))
HANDWRITTEN = "hand-written SQLite"


def gthread_mode(variant: str) -> Mode:
    command = (
        gunicorn_command("gthread", "--chdir", HERE, app="handwritten_sqlite_app:app", log_level="warning")
        if variant == HANDWRITTEN
        else gunicorn_command("gthread", app=f'sharedstate.demo_app:variant_app("{variant}")', log_level="warning")
    )
    return Mode(f"gthread-{variant}", "gunicorn -k gthread", command, lambda workers: 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=int, default=5.0, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--wrk-threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    require_wrk()

    workdir = tempfile.mkdtemp(prefix="sharedstate-http-bench-")
    url = f"sqlite:///{workdir}/bench.db"
    handwritten_db = os.path.join(workdir, "handwritten.db")
    sys.path.insert(0, HERE)
    from handwritten_sqlite_app import PATH_VARIABLE, create_table

    create_table(handwritten_db)
    env = dict(
        os.environ,
        **{URL_VARIABLE: url, PREFIX_VARIABLE: "bench-", PATH_VARIABLE: handwritten_db},
    )
    servers: dict[str, Server] = {}
    variants = ["naive", "sharedstate", HANDWRITTEN]
    try:
        for variant in variants:
            servers[variant] = Server(
                gthread_mode(variant),
                free_port(),
                args.workers,
                args.threads,
                env,
                os.path.join(workdir, f"{variant}.log"),
            )
        for server in servers.values():
            server.wait_ready()
            wrk(server.port, 1, args.connections, args.wrk_threads)  # warm-up: imports, connections
        print(
            f"gunicorn gthread {args.workers}x{args.threads}, wrk -t{args.wrk_threads} "
            f"-c{args.connections} -d{args.duration:g}s, store {url}, {os.cpu_count()} CPUs"
        )
        rates, _ = alternating_rounds(
            variants,
            args.rounds,
            lambda variant: wrk(
                servers[variant].port, args.duration, args.connections, args.wrk_threads
            ),
        )
        import sharedstate

        with sharedstate.connect(url, prefix="bench-sharedstate-") as store:
            stored = (store.inspect("global_obj") or {}).get("state")
    finally:
        for server in servers.values():
            server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    naive, shared, handwritten = (
        statistics.median(rates[v]) for v in ("naive", "sharedstate", HANDWRITTEN)
    )
    print(
        f"median: naive {naive:.1f} req/s, sharedstate {shared:.1f} req/s, ratio {shared / naive:.3f}"
    )
    print(
        f"floor: {HANDWRITTEN} (one UPDATE ... RETURNING per request) {handwritten:.1f} req/s, "
        f"{handwritten / naive:.3f} of naive; sharedstate / {HANDWRITTEN}: {shared / handwritten:.3f}"
    )
    print(f"sharedstate's global_obj after the run: {stored} (one increment per request served)")


if __name__ == "__main__":
    main()
