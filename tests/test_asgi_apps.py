"""ASGI apps on real servers: the FastAPI examples under ``uvicorn --workers 4``, and one
object shared by a WSGI deployment and an ASGI deployment at once (gunicorn sync workers and
uvicorn workers hammering it together), on SQLite, Redis and PostgreSQL: every value once."""

from __future__ import annotations

import sys
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("uvicorn")
pytest.importorskip("starlette")

from sharedstate.demo import Row, _burst  # noqa: E402

from .asgi_helpers import (  # noqa: E402
    GUNICORN_READY,
    UVICORN_READY,
    base_url,
    changed_lines,
    copy_example,
    serve,
    unique_prefix,
)

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _uvicorn(app: str, workers: int, *extra: str) -> Any:
    def command(port: int) -> list[str]:
        return [sys.executable, "-m", "uvicorn", "--host", "127.0.0.1", "--port", str(port),
                "--workers", str(workers), *extra, app]  # fmt: skip

    return command


@pytest.mark.skipif(
    __import__("importlib").util.find_spec("fastapi") is None, reason="needs fastapi"
)
def test_fastapi_examples_under_uvicorn_workers(tmp_path: Path) -> None:
    """examples/fastapi_app: the sharedstate app exact under 4 workers; the naive one shown."""
    folder = copy_example("fastapi_app", tmp_path)
    results = {}
    for name in ("naive_app", "shared_app"):
        command = _uvicorn(f"{name}:app", 4, "--app-dir", str(folder))
        log = tmp_path / f"{name}.log"
        with serve(command, UVICORN_READY, 4, {}, log, cwd=folder) as base:
            seen, errors, _ = _burst(base + "/", 100, 60)
        assert errors == [], log.read_text()[-2000:]
        results[name] = sorted(value for value, _ in seen)
    print("naive FastAPI example under 4 workers:", len(set(results["naive_app"])), "unique of 100")
    assert results["shared_app"] == list(range(1, 101))
    assert (folder / "sharedstate.db").exists()  # the example's store, in its directory


def test_fastapi_examples_differ_by_two_lines() -> None:
    folder = EXAMPLES / "fastapi_app"
    removed, added = changed_lines(folder / "naive_app.py", folder / "shared_app.py")
    assert removed == ["global_obj = SomeObj(0)", "    number = global_obj.query()"]
    assert added == [
        "import sharedstate",
        'store = sharedstate.connect_async("sqlite:///sharedstate.db")',
        'global_obj = store.object("global_obj", SomeObj, 0)',
        "    number = await global_obj.query()",
    ]


# -- one object, a WSGI and an ASGI deployment ----------------------------------------------
def _gunicorn_sync(port: int) -> list[str]:
    return [sys.executable, "-m", "gunicorn", f"--bind=127.0.0.1:{port}", "--workers=2",
            "--worker-class=sync", "--graceful-timeout=2", "--log-level=info",
            "sharedstate.demo_app:create_app()"]  # fmt: skip


@pytest.mark.skipif(
    __import__("importlib").util.find_spec("gunicorn") is None, reason="needs gunicorn"
)
@pytest.mark.parametrize("backend", ["sqlite", "redis", "postgresql"])
def test_wsgi_and_asgi_workers_share_one_object(
    request: pytest.FixtureRequest, tmp_path: Path, backend: str
) -> None:
    """gunicorn sync workers (the Flask app, sync API) and uvicorn workers (the Starlette
    app, async API) serve /sharedstate/ on one URL and prefix, so one object: 2 x 80
    simultaneous clients, every value 1..160 exactly once, linearizable in real time."""
    url = base_url(request, backend, tmp_path)
    env = {
        "SHAREDSTATE_DEMO_URL": url,
        "SHAREDSTATE_DEMO_PREFIX": unique_prefix(),
        "SHAREDSTATE_DEMO_VARIANTS": "sharedstate",
    }
    clients = 80
    with (
        serve(_gunicorn_sync, GUNICORN_READY, 2, env, tmp_path / "gunicorn.log") as wsgi,
        serve(
            _uvicorn("sharedstate.demo_asgi_app:create_app", 2, "--factory"),
            UVICORN_READY,
            2,
            env,
            tmp_path / "uvicorn.log",
        ) as asgi,
    ):
        results: dict[str, tuple[Any, ...]] = {}
        start = threading.Barrier(2)

        def hammer(name: str, base: str) -> None:
            start.wait(timeout=30)
            results[name] = _burst(base + "/sharedstate/", clients, 60)

        threads = [
            threading.Thread(target=hammer, args=("wsgi", wsgi)),
            threading.Thread(target=hammer, args=("asgi", asgi)),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    row = Row("wsgi+asgi", "sharedstate")
    pids = {}
    for offset, name in enumerate(("wsgi", "asgi")):
        seen, errors, calls = results[name]
        assert errors == [], (name, errors[:3])
        assert len(seen) == clients
        pids[name] = {pid for _, pid in seen}
        row.seen += seen
        # one history: the second burst's clients get their own process numbers
        row.calls += [replace(op, process=op.process + offset * clients) for op in calls]
    assert sorted(row.values) == list(range(1, 2 * clients + 1))
    assert pids["wsgi"] and pids["asgi"] and not pids["wsgi"] & pids["asgi"]
    assert row.exact  # the check's counter procedure on the timed calls of both
