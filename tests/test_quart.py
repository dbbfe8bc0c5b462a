"""The Quart extension: declared at import time, one async store per app, awaited calls,
`quart sharedstate show/reset`, the example apps, and real hypercorn and uvicorn servers with
simultaneous HTTP clients, exact."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

quart = pytest.importorskip("quart")

from sharedstate import ClassMismatchError, ConfigurationError  # noqa: E402
from sharedstate.demo import _burst  # noqa: E402
from sharedstate.examples import SomeObj, SomeObjWithIO  # noqa: E402
from sharedstate.quart import SharedState  # noqa: E402

from .asgi_helpers import (  # noqa: E402
    HYPERCORN_READY,
    UVICORN_READY,
    base_url,
    changed_lines,
    copy_example,
    serve,
    unique_prefix,
)
from .cli_helpers import check_show_then_reset, run_app_cli  # noqa: E402
from .conftest import with_prefix  # noqa: E402


class OtherObj:
    def __init__(self):
        self.items = []

    def add(self, item):
        self.items.append(item)
        return len(self.items)


def make_app(tmp_path: Path, name: str, url: str | None = None) -> Any:
    app = quart.Quart(name, instance_path=str(tmp_path / f"instance-{name}"))
    if url is not None:
        app.config["SHAREDSTATE_URL"] = url
    return app


def sqlite_url(tmp_path: Path, name: str) -> str:
    return f"sqlite:///{tmp_path}/{name}.db"


async def get_text(client: Any, path: str = "/") -> str:
    response = await client.get(path)
    assert response.status_code == 200, await response.get_data(as_text=True)
    return await response.get_data(as_text=True)


async def close(*apps: Any) -> None:
    for app in apps:
        await app.extensions["sharedstate"].aclose()


def test_declared_before_the_app_is_configured(tmp_path: Path) -> None:
    """The app-factory pattern: declared at import, the app made and configured later;
    the store is the one the config names when the object is first called."""
    state = SharedState()
    global_obj = state.object("global_obj", SomeObj, 0)
    visits = state.counter("visits")

    app = make_app(tmp_path, "factory")
    state.init_app(app)
    app.config["SHAREDSTATE_URL"] = sqlite_url(tmp_path, "configured-late")

    @app.route("/")
    async def home():
        return {"n": await global_obj.query(), "visits": await visits.incr()}

    async def scenario() -> None:
        client = app.test_client()
        assert [(await (await client.get("/")).get_json())["n"] for _ in range(3)] == [1, 2, 3]
        assert await visits.get() == 3
        assert await global_obj.param == 3
        await close(app)

    asyncio.run(scenario())
    assert (tmp_path / "configured-late.db").exists()


def test_default_url_is_a_sqlite_file_in_the_instance_folder(tmp_path: Path) -> None:
    app = make_app(tmp_path, "default")
    state = SharedState(app)
    global_obj = state.object("global_obj", SomeObj, 0)

    async def scenario() -> None:
        async with app.app_context():
            assert await global_obj.query() == 1
        await close(app)

    asyncio.run(scenario())
    assert (tmp_path / "instance-default" / "sharedstate.db").exists()


def test_two_apps_with_different_urls_never_share(tmp_path: Path) -> None:
    """One extension, two apps: each call goes to the store of the app in use."""
    state = SharedState()
    global_obj = state.object("global_obj", SomeObj, 0)
    first = make_app(tmp_path, "first", sqlite_url(tmp_path, "first"))
    second = make_app(tmp_path, "second", sqlite_url(tmp_path, "second"))
    state.init_app(first)
    state.init_app(second)

    async def home() -> str:
        return str(await global_obj.query())

    for app in (first, second):
        app.add_url_rule("/", "home", home)

    async def scenario() -> None:
        assert [await get_text(first.test_client()) for _ in range(3)] == ["1", "2", "3"]
        assert await get_text(second.test_client()) == "1"
        async with first.app_context():
            assert await global_obj.param == 3
        async with second.app_context():
            assert await global_obj.param == 1
        # outside any app context two apps are ambiguous: a clear error, not a guess
        with pytest.raises(ConfigurationError, match="several apps"):
            await global_obj.query()
        await close(first, second)

    asyncio.run(scenario())


def test_not_set_up_yet_and_name_clash_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="init_app"):
        SharedState().object("global_obj", SomeObj, 0).query()
    app = make_app(tmp_path, "clash", sqlite_url(tmp_path, "clash"))
    state = SharedState(app)

    async def scenario() -> None:
        await state.object("thing", SomeObj, 0).query()
        with pytest.raises(ClassMismatchError):
            await state.object("thing", OtherObj).add(1)
        await close(app)

    asyncio.run(scenario())


def test_counter_lock_and_transaction(tmp_path: Path) -> None:
    app = make_app(tmp_path, "parts", sqlite_url(tmp_path, "parts"))
    state = SharedState(app)
    items = state.object("items", OtherObj)
    add = items.add  # taken at import time: resolved per call
    hits = state.counter("hits")
    report = state.lock("report", ttl=5)

    async def scenario() -> None:
        assert [await add("x"), await add("y")] == [1, 2]
        async with state.transaction(items) as obj:
            obj.add("z")
            obj.add("w")
        async with state.transaction("items") as obj:
            assert obj.items == ["x", "y", "z", "w"]
        assert await items.items == ["x", "y", "z", "w"]
        assert [await hits.incr(), await hits.incr(5), await hits.decr()] == [1, 6, 5]
        await hits.set(0)
        assert await hits.get() == 0
        async with report as first:
            assert await report.locked()
        async with report as second:
            assert second.token > first.token
        assert not await report.locked()
        await close(app)

    asyncio.run(scenario())


def test_concurrent_requests_in_one_loop_get_unique_numbers(tmp_path: Path) -> None:
    """200 requests at once through Quart's test client, in one event loop, with the
    method that does I/O between its read and its write."""
    app = make_app(tmp_path, "gathered", sqlite_url(tmp_path, "gathered"))
    state = SharedState(app)
    global_obj = state.object("global_obj", SomeObjWithIO, 0)

    @app.route("/")
    async def home():
        return str(await global_obj.query())

    async def scenario() -> list[int]:
        client = app.test_client()
        seen = await asyncio.gather(*(get_text(client) for _ in range(200)))
        await close(app)
        return [int(text) for text in seen]

    assert sorted(asyncio.run(scenario())) == list(range(1, 201))


# -- real servers --------------------------------------------------------------------------
SERVED = """
import os
from quart import Quart
from sharedstate.quart import SharedState
from sharedstate.examples import SomeObjWithIO

app = Quart(__name__)
app.config.from_prefixed_env("QUART")          # QUART_SHAREDSTATE_URL, QUART_SHAREDSTATE_PREFIX
state = SharedState(app)
global_obj = state.object("global_obj", SomeObjWithIO, 0)


@app.route("/")
async def home():
    number = await global_obj.query()
    return f'<p class="number">{number}</p>', 200, {"X-Demo-Pid": str(os.getpid())}
"""


def _hypercorn(port: int) -> list[str]:
    return [sys.executable, "-m", "hypercorn", "--bind", f"127.0.0.1:{port}", "--workers", "4",
            "served:app"]  # fmt: skip


def _uvicorn(port: int) -> list[str]:
    return [sys.executable, "-m", "uvicorn", "--host", "127.0.0.1", "--port", str(port),
            "--workers", "4", "served:app"]  # fmt: skip


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
@pytest.mark.parametrize("server", ["hypercorn", "uvicorn"])
def test_real_server_four_workers_100_clients_exact(
    request: pytest.FixtureRequest, tmp_path: Path, backend: str, server: str
) -> None:
    (tmp_path / "served.py").write_text(SERVED)
    url = with_prefix(base_url(request, backend, tmp_path), unique_prefix())
    env = {"QUART_SHAREDSTATE_URL": url, "PYTHONPATH": str(tmp_path)}
    command, ready = (_hypercorn, HYPERCORN_READY) if server == "hypercorn" else (_uvicorn, UVICORN_READY)
    with serve(command, ready, 4, env, tmp_path / f"{server}.log") as base:
        seen, errors, _ = _burst(base + "/", 100, 60)
    assert errors == []
    assert sorted(value for value, _ in seen) == list(range(1, 101))
    assert len({pid for _, pid in seen}) > 1, "one worker answered every client"


def test_quart_examples_under_hypercorn(tmp_path: Path) -> None:
    """examples/quart_app: the sharedstate app exact under 4 workers; the naive one shown."""
    folder = copy_example("quart_app", tmp_path)
    results = {}
    for name in ("naive_app", "shared_app"):
        def command(port: int, name: str = name) -> list[str]:
            return [sys.executable, "-m", "hypercorn", "--bind", f"127.0.0.1:{port}",
                    "--workers", "4", f"{name}:app"]  # fmt: skip

        env = {"PYTHONPATH": str(folder)}
        with serve(command, HYPERCORN_READY, 4, env, tmp_path / f"{name}.log") as base:
            seen, errors, _ = _burst(base + "/", 100, 60)
        assert errors == []
        results[name] = sorted(value for value, _ in seen)
    print("naive Quart example under 4 workers:", len(set(results["naive_app"])), "unique of 100")
    assert results["shared_app"] == list(range(1, 101))
    assert (folder / "instance" / "sharedstate.db").exists()


def test_quart_examples_differ_by_two_lines() -> None:
    folder = Path(__file__).resolve().parents[1] / "examples" / "quart_app"
    removed, added = changed_lines(folder / "naive_app.py", folder / "shared_app.py")
    assert removed == ["global_obj = SomeObj(0)", "    await flash(global_obj.query())"]
    assert added == [
        "from sharedstate.quart import SharedState",
        "state = SharedState(app)",
        'global_obj = state.object("global_obj", SomeObj, 0)',
        "    await flash(await global_obj.query())",
    ]


# -- `quart sharedstate ...` ---------------------------------------------------------------
CLI_APP = """
from quart import Quart
from sharedstate.quart import SharedState
from sharedstate.examples import SomeObj

app = Quart(__name__)
app.config.from_prefixed_env("QUART")          # QUART_SHAREDSTATE_URL=...
state = SharedState(app)
global_obj = state.object("global_obj", SomeObj, 0)
declared_only = state.object("declared_only", SomeObj, 0)
visits = state.counter("visits")


@app.route("/")
async def home():
    return f"{await global_obj.query()} {await visits.incr()}"
"""


def quart_cli(tmp_path: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return run_app_cli("quart", "cli_app", tmp_path, {"QUART_SHAREDSTATE_URL": url}, *args)


def test_quart_sharedstate_show_and_reset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "cli_app.py").write_text(CLI_APP)
    url = sqlite_url(tmp_path, "cli")
    monkeypatch.setenv("QUART_SHAREDSTATE_URL", url)
    monkeypatch.syspath_prepend(str(tmp_path))
    import importlib

    module = importlib.import_module("cli_app")
    sys.modules.pop("cli_app", None)

    async def visit(times: int) -> list[str]:
        client = module.app.test_client()
        pages = [await get_text(client) for _ in range(times)]
        await close(module.app)
        return pages

    asyncio.run(visit(4))
    check_show_then_reset(lambda *args: quart_cli(tmp_path, url, *args), url)
    assert asyncio.run(visit(1)) == ["1 5"]  # the factory ran again; the counter was not reset
    assert "visits" in quart_cli(tmp_path, url, "show", "visits").stdout


def test_quart_sharedstate_show_never_prints_credentials(tmp_path: Path) -> None:
    (tmp_path / "cli_app.py").write_text(CLI_APP)
    shown = quart_cli(tmp_path, "memory://admin:hunter2@localhost", "show")
    assert shown.returncode == 0, shown.stderr
    assert "hunter2" not in shown.stdout + shown.stderr
    assert "admin:***@localhost" in shown.stdout
