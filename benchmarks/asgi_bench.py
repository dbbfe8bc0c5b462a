"""ASGI benchmark: the FastAPI global-counter app, naive vs sharedstate on Redis vs
hand-written ``redis.asyncio`` ``INCR``, under ``uvicorn --workers 4``.

    .venv/bin/python benchmarks/asgi_bench.py [--redis redis://127.0.0.1:6379/0]
        [--rounds 5] [--duration 5] [--connections 64] [--workers 4] [--stock-uvicorn]

Three servers run at once on 127.0.0.1, each ``--workers 4``: ``examples/fastapi_app/
naive_app.py`` (a module global: fast, and wrong, one copy per worker), the same app with
sharedstate on Redis (``asgi_bench_apps.py:shared``, the example's code with the URL from
the environment) and the app written by hand with one ``redis.asyncio`` ``INCR`` per
request (``asgi_bench_apps.py:handwritten``: the floor of one store trip per request;
combining concurrent calls per event loop can beat it). ``wrk`` loads one, then the next,
in an order that alternates every round, so that all see the same machine conditions;
the medians and the ratios sharedstate / hand-written (issue 10 asks >= 1.0x) and each /
naive are printed, and the median of each round's own ratio (on a machine whose load
swings between rounds, the ratio of two runs made seconds apart is the steadier figure).

TCP_NODELAY (uvicorn#3149): with ``--workers`` uvicorn leaves Nagle's algorithm on for
accepted connections, and each keep-alive response then waits ~40 ms for the client's
delayed ACK, a cap that makes every app alike. The servers are started through
``nodelay_uvicorn.py``, which binds the listening socket with ``proto=IPPROTO_TCP`` so
that asyncio sets TCP_NODELAY on every connection (see its docstring). Before measuring,
the bench times 20 requests one after another on one keep-alive connection per server
and refuses to go on if they take the ~40 ms of Nagle (``--stock-uvicorn`` runs plain
``uvicorn --workers`` instead, to show the difference).

``wrk`` is the Debian package ``wrk`` (``apt-get install wrk``).
"""

from __future__ import annotations

import argparse
import http.client
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid

from wrk_load import alternating_rounds, require_wrk, wrk

from sharedstate.demo import HOST, Mode, Server, free_port

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLE = os.path.join(os.path.dirname(HERE), "examples", "fastapi_app")
APPS = {
    "naive": (EXAMPLE, "naive_app:app"),
    "sharedstate": (HERE, "asgi_bench_apps:shared"),
    "hand-written INCR": (HERE, "asgi_bench_apps:handwritten"),
}
READY = b"Application startup complete"


def uvicorn_mode(variant: str, stock: bool) -> Mode:
    app_dir, app = APPS[variant]
    launcher = ["-m", "uvicorn"] if stock else [os.path.join(HERE, "nodelay_uvicorn.py")]
    return Mode(
        variant,
        "uvicorn --workers",
        lambda port, workers, threads: [
            sys.executable, *launcher, "--host", HOST, "--port", str(port),
            "--workers", str(workers), "--app-dir", app_dir, "--log-level", "info", app,
        ],  # fmt: skip
        lambda workers: workers,
        boot_line=READY,
    )


def keep_alive_latency(port: int, requests: int = 20) -> float:
    """Median seconds per request, one after another on one keep-alive connection: ~40 ms
    when Nagle's algorithm holds each response's body back, well under that without."""
    connection = http.client.HTTPConnection(HOST, port, timeout=30)
    times = []
    for _ in range(requests):
        started = time.perf_counter()
        connection.request("GET", "/")
        response = connection.getresponse()
        response.read()
        assert response.status == 200, response.status
        times.append(time.perf_counter() - started)
    connection.close()
    return statistics.median(times[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--wrk-threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--stock-uvicorn", action="store_true", help="plain uvicorn --workers (Nagle on)")
    args = parser.parse_args()
    require_wrk()
    import redis

    run = uuid.uuid4().hex[:10]
    prefix, key = f"asgi-bench-{run}-", f"asgi-bench-{run}:incr"
    sep = "&" if "?" in args.redis else "?"
    env = dict(
        os.environ,
        SHAREDSTATE_URL=f"{args.redis}{sep}prefix={prefix}",
        ASGI_BENCH_REDIS=args.redis.split("?", 1)[0],
        ASGI_BENCH_KEY=key,
    )
    workdir = tempfile.mkdtemp(prefix="sharedstate-asgi-bench-")
    servers: dict[str, Server] = {}
    served = dict.fromkeys(APPS, 0)
    try:
        for variant in APPS:
            mode = uvicorn_mode(variant, args.stock_uvicorn)
            log = os.path.join(workdir, f"{variant.replace(' ', '-')}.log")
            servers[variant] = Server(mode, free_port(), args.workers, 1, env, log)
        for variant, server in servers.items():
            server.wait_ready()
            latency = keep_alive_latency(server.port)
            served[variant] += 20
            print(f"{variant}: one keep-alive request after another, median {latency * 1000:.1f} ms")
            if latency > 0.03 and not args.stock_uvicorn:
                raise SystemExit(f"{variant}: {latency * 1000:.0f} ms a request: Nagle's algorithm is on")
            served[variant] += wrk(server.port, 1, args.connections, args.wrk_threads)[1]  # warm-up
        print(
            f"uvicorn --workers {args.workers}{' (stock)' if args.stock_uvicorn else ' (TCP_NODELAY)'}, "
            f"wrk -t{args.wrk_threads} -c{args.connections} -d{args.duration:g}s, "
            f"store {args.redis}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"
        )
        rates, counted = alternating_rounds(
            list(servers),
            args.rounds,
            lambda variant: wrk(
                servers[variant].port, args.duration, args.connections, args.wrk_threads
            ),
        )
        for variant, requests in counted.items():
            served[variant] += requests
        client = redis.Redis.from_url(args.redis.split("?", 1)[0])
        counted = int(client.get(key) or 0)
        client.delete(key)
        import sharedstate

        with sharedstate.connect(env["SHAREDSTATE_URL"]) as store:
            stored = (store.inspect("global_obj") or {}).get("state")
            store.delete("global_obj")
    finally:
        for server in servers.values():
            server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    naive, shared, handwritten = (statistics.median(rates[v]) for v in APPS)
    print(
        f"median: naive {naive:.1f} req/s, sharedstate {shared:.1f} req/s, "
        f"hand-written INCR {handwritten:.1f} req/s (load average {os.getloadavg()[0]:.1f})"
    )
    print(
        f"ratio sharedstate / hand-written INCR: {shared / handwritten:.3f} (target >= 1.0); "
        f"sharedstate / naive {shared / naive:.3f}; hand-written / naive {handwritten / naive:.3f}"
    )
    paired = statistics.median(a / b for a, b in zip(rates["sharedstate"], rates["hand-written INCR"], strict=True))
    print(
        f"median of each round's sharedstate / hand-written INCR (run back to back, so machine "
        f"drift between rounds cancels): {paired:.3f}"
    )
    print(
        f"after the run: sharedstate's global_obj {stored}, the hand-written key {counted}; "
        f"responses wrk and the probes counted: {served['sharedstate']} and {served['hand-written INCR']} "
        "(wrk leaves out requests still in flight when it stops)"
    )


if __name__ == "__main__":
    main()
