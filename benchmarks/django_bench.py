"""HTTP benchmark: the Django global-counter view, naive vs sharedstate on the default store.

    .venv/bin/python benchmarks/django_bench.py [--rounds 5] [--duration 5] [--connections 64]

Serves :mod:`sharedstate.django.demo_site` (the counter view, naive at ``/naive/`` and with
sharedstate at ``/sharedstate/``) under ``gunicorn -k gthread -w 4 --threads 8`` on
127.0.0.1, with no ``SHAREDSTATE_URL``: the store is the default a Django project gets, the
SQLite file ``sharedstate.db`` beside the project's SQLite database. ``wrk`` loads one view,
then the other, alternating, for several rounds, so that both see the same machine
conditions. Prints each round, the median requests per second of each and their ratio
(sharedstate / naive).

The naive view's numbers are wrong (per-worker copies), so it is the ceiling, not a rival:
what is measured is the cost of one atomic, shared ``query()`` per request. Afterwards the
stored counter must equal the number of requests the sharedstate view answered. A third
view, ``/handwritten/`` (``handwritten_django_app.py``: one hand-written ``UPDATE ...
RETURNING`` per request through Django's own connection to the project database), runs in
the same rounds: the floor of writing each request's number to disk at all.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile

from wrk_load import alternating_rounds, require_wrk, wrk

from sharedstate.demo import DJANGO_DIRECTORY_VARIABLE, Mode, Server, free_port
from sharedstate.demo_app import PREFIX_VARIABLE, URL_VARIABLE
from sharedstate.demo_modes import gunicorn_command

MIDDLEWARE_VARIABLE = "SHAREDSTATE_DEMO_DJANGO_MIDDLEWARE"  # see sharedstate.django.demo_site

HERE = os.path.dirname(os.path.abspath(__file__))
HANDWRITTEN = "hand-written SQL"
VIEWS = {"naive": "/naive/", "sharedstate": "/sharedstate/", HANDWRITTEN: "/handwritten/"}

#: the demo's Django site with the hand-written view added, under gunicorn gthread
MODE = Mode(
    "django-gthread",
    "Django, gunicorn -k gthread",
    gunicorn_command("gthread", "--chdir", HERE, app="handwritten_django_app:application"),
    lambda workers: workers,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--wrk-threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument(
        "--middleware",
        choices=("minimal", "startproject"),
        default="minimal",
        help="CommonMiddleware only, or the apps and middleware `startproject` sets up",
    )
    args = parser.parse_args()
    require_wrk()

    workdir = tempfile.mkdtemp(prefix="sharedstate-django-bench-")
    env = {k: v for k, v in os.environ.items() if k != URL_VARIABLE}  # the default store
    env.update(
        {
            DJANGO_DIRECTORY_VARIABLE: workdir,
            PREFIX_VARIABLE: "bench-",
            MIDDLEWARE_VARIABLE: args.middleware,
        }
    )
    served = 0
    sys.path.insert(0, HERE)
    from handwritten_django_app import create_table

    create_table(os.path.join(workdir, "db.sqlite3"))
    server = Server(
        MODE,
        free_port(),
        args.workers,
        args.threads,
        env,
        os.path.join(workdir, "gunicorn.log"),
    )
    try:
        server.wait_ready()
        for view, path in VIEWS.items():  # warm-up: imports, connections, the store's schema
            served += wrk(server.port, 1, args.connections, args.wrk_threads, path)[1] * (
                view == "sharedstate"
            )
        print(
            f"Django {django_version()} ({args.middleware} middleware), "
            f"gunicorn gthread {args.workers}x{args.threads}, "
            f"wrk -t{args.wrk_threads} -c{args.connections} -d{args.duration:g}s, "
            f"store: the default beside DATABASES (sqlite:///{workdir}/sharedstate.db), "
            f"{os.cpu_count()} CPUs"
        )
        rates, counted = alternating_rounds(
            list(VIEWS),
            args.rounds,
            lambda view: wrk(
                server.port, args.duration, args.connections, args.wrk_threads, VIEWS[view]
            ),
        )
        served += counted["sharedstate"]
        import sharedstate

        with sharedstate.connect(f"sqlite:///{workdir}/sharedstate.db", prefix="bench-") as store:
            stored = (store.inspect("global_obj") or {}).get("state")
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    naive, shared, handwritten = (statistics.median(rates[view]) for view in VIEWS)
    paired = statistics.median(s / n for n, s in zip(rates["naive"], rates["sharedstate"], strict=True))
    print(
        f"median: naive {naive:.1f} req/s, sharedstate {shared:.1f} req/s, ratio {shared / naive:.3f}"
        f" (median of the rounds' ratios {paired:.3f})"
    )
    print(
        f"floor: {HANDWRITTEN} (one UPDATE ... RETURNING per request through Django's "
        f"connection) {handwritten:.1f} req/s, {handwritten / naive:.3f} of naive; "
        f"sharedstate / {HANDWRITTEN}: {shared / handwritten:.3f}"
    )
    print(f"load average after the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(
        f"sharedstate's global_obj after the run: {stored}; wrk counted {served} requests "
        "answered (wrk may count a few fewer than were served when it stops mid-request)"
    )


def django_version() -> str:
    import django

    return django.get_version()


if __name__ == "__main__":
    sys.exit(main())
