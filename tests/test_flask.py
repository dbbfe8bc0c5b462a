"""The Flask extension: declared at import time, one store per app, the `flask sharedstate`
commands, the example apps, and a real gunicorn that forks after the store was used."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

flask = pytest.importorskip("flask")

from sharedstate import ClassMismatchError, ConfigurationError  # noqa: E402
from sharedstate.demo import HOST, Mode, Server, _burst, free_port  # noqa: E402
from sharedstate.examples import SomeObj  # noqa: E402
from sharedstate.flask import SharedState  # noqa: E402

from .cli_helpers import check_show_then_reset, run_app_cli  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "flask_app"


class OtherObj:
    def __init__(self):
        self.items = []

    def add(self, item):
        self.items.append(item)
        return len(self.items)


def make_app(tmp_path: Path, name: str, url: str | None = None) -> flask.Flask:
    app = flask.Flask(name, instance_path=str(tmp_path / f"instance-{name}"))
    if url is not None:
        app.config["SHAREDSTATE_URL"] = url
    return app


def sqlite_url(tmp_path: Path, name: str) -> str:
    return f"sqlite:///{tmp_path}/{name}.db"


def test_declared_before_the_app_is_configured(tmp_path: Path) -> None:
    """The app-factory pattern: objects declared at import, the app made and configured
    later; the store is the one the config names when the object is first called."""
    state = SharedState()
    global_obj = state.object("global_obj", SomeObj, 0)
    visits = state.counter("visits")

    app = make_app(tmp_path, "factory")
    state.init_app(app)
    app.config["SHAREDSTATE_URL"] = sqlite_url(tmp_path, "configured-late")

    @app.route("/")
    def home():
        return {"n": global_obj.query(), "visits": visits.incr()}

    client = app.test_client()
    assert [client.get("/").json["n"] for _ in range(3)] == [1, 2, 3]
    assert visits.get() == 3
    assert global_obj.param == 3
    assert (tmp_path / "configured-late.db").exists()
    assert state.store.url == sqlite_url(tmp_path, "configured-late")


def test_default_url_is_a_sqlite_file_in_the_instance_folder(tmp_path: Path) -> None:
    app = make_app(tmp_path, "default")
    state = SharedState(app)
    global_obj = state.object("global_obj", SomeObj, 0)
    with app.app_context():
        assert global_obj.query() == 1
    assert (tmp_path / "instance-default" / "sharedstate.db").exists()


def test_two_apps_with_different_urls_never_share(tmp_path: Path) -> None:
    """One extension, two apps: each call goes to the store of the app in use."""
    state = SharedState()
    global_obj = state.object("global_obj", SomeObj, 0)
    first = make_app(tmp_path, "first", sqlite_url(tmp_path, "first"))
    second = make_app(tmp_path, "second", sqlite_url(tmp_path, "second"))
    state.init_app(first)
    state.init_app(second)

    for app in (first, second):
        app.add_url_rule("/", "home", lambda: str(global_obj.query()))

    assert [first.test_client().get("/").text for _ in range(3)] == ["1", "2", "3"]
    assert second.test_client().get("/").text == "1"
    with first.app_context():
        assert global_obj.param == 3
    with second.app_context():
        assert global_obj.param == 1
    # outside any app context, two apps are ambiguous: a clear error, not a guess
    with pytest.raises(ConfigurationError, match="several apps"):
        global_obj.query()


def test_two_extensions_two_apps(tmp_path: Path) -> None:
    a, b = SharedState(), SharedState()
    obj_a = a.object("global_obj", SomeObj, 0)
    obj_b = b.object("global_obj", SomeObj, 100)
    app_a = make_app(tmp_path, "a", sqlite_url(tmp_path, "a"))
    app_b = make_app(tmp_path, "b", sqlite_url(tmp_path, "b"))
    a.init_app(app_a)
    b.init_app(app_b)
    assert obj_a.query() == 1  # no context: the one app each extension knows
    assert obj_b.query() == 101
    with app_b.app_context(), pytest.raises(ConfigurationError, match="not set up"):
        obj_a.query()


def test_not_set_up_yet_is_a_clear_error() -> None:
    state = SharedState()
    obj = state.object("global_obj", SomeObj, 0)
    with pytest.raises(ConfigurationError, match="init_app"):
        obj.query()


def test_same_name_two_classes_is_refused(tmp_path: Path) -> None:
    app = make_app(tmp_path, "clash", sqlite_url(tmp_path, "clash"))
    state = SharedState(app)
    state.object("thing", SomeObj, 0).query()
    with pytest.raises(ClassMismatchError):
        state.object("thing", OtherObj).add(1)


def test_bound_method_at_import_and_container_state(tmp_path: Path) -> None:
    app = make_app(tmp_path, "methods", sqlite_url(tmp_path, "methods"))
    state = SharedState(app)
    items = state.object("items", OtherObj)
    add = items.add  # taken before any app context: resolved at call time
    assert add("x") == 1
    assert add("y") == 2
    assert items.items == ["x", "y"]
    with state.transaction(items) as obj:
        obj.add("z")
        obj.add("w")
    assert items.items == ["x", "y", "z", "w"]


def test_lock_through_the_extension(tmp_path: Path) -> None:
    app = make_app(tmp_path, "locks", sqlite_url(tmp_path, "locks"))
    state = SharedState(app)
    report = state.lock("report", ttl=5)
    with report as first:
        assert report.locked()
    with report as second:
        assert second.token > first.token
    assert not report.locked()


def test_threads_of_one_app_get_unique_numbers(tmp_path: Path) -> None:
    """The I/O-yielding method, 16 threads x 50 calls through the test client."""
    import threading

    from sharedstate.examples import SomeObjWithIO as WithIO

    app = make_app(tmp_path, "threads", sqlite_url(tmp_path, "threads"))
    state = SharedState(app)
    obj = state.object("global_obj", WithIO, 0)
    app.add_url_rule("/", "home", lambda: str(obj.query()))
    seen: list[int] = []
    lock = threading.Lock()

    def client() -> None:
        test_client = app.test_client()
        for _ in range(50):
            value = int(test_client.get("/").text)
            with lock:
                seen.append(value)

    threads = [threading.Thread(target=client) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(seen) == list(range(1, 801))


# -- the example apps in examples/flask_app ----------------------------------------------
def load_example(name: str):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # Flask finds the templates folder through sys.modules
    spec.loader.exec_module(module)
    return module


def test_example_apps(tmp_path: Path) -> None:
    naive = load_example("naive_app")
    shared = load_example("shared_app")
    shared.app.config["SHAREDSTATE_URL"] = sqlite_url(tmp_path, "example")
    for module in (naive, shared):
        client = module.app.test_client()
        pages = [client.get("/").text for _ in range(3)]
        assert ['<p class="number">1</p>' in pages[0], '<p class="number">3</p>' in pages[2]] == [
            True,
            True,
        ]


def test_examples_differ_by_two_lines() -> None:
    """The sharedstate twin is the naive app plus the import and the two changed lines."""
    import difflib

    def code(name: str) -> list[str]:
        text = (EXAMPLES / f"{name}.py").read_text()
        body = text.split('"""', 2)[2]  # without the module docstring
        return [line.split("#")[0].rstrip() for line in body.splitlines() if line.strip()]

    changed = [
        line
        for line in difflib.unified_diff(code("naive_app"), code("shared_app"), lineterm="", n=0)
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]
    added = [line for line in changed if line.startswith("+")]
    assert "+from sharedstate.flask import SharedState" in added
    assert "+state = SharedState(app)" in added
    assert '+global_obj = state.object("global_obj", SomeObj, 0)' in added
    assert [line for line in changed if line.startswith("-")] == ["-global_obj = SomeObj(0)"]
    assert len(added) == 3


# -- `flask sharedstate ...` ----------------------------------------------------------------
APP_MODULE = """
from flask import Flask
from sharedstate.flask import SharedState

app = Flask(__name__)
app.config.from_prefixed_env()          # FLASK_SHAREDSTATE_URL=...
state = SharedState(app)


class SomeObj:
    def __init__(self, param):
        self.param = param

    def query(self):
        self.param += 1
        return self.param


global_obj = state.object("global_obj", SomeObj, 0)
declared_only = state.object("declared_only", SomeObj, 0)
visits = state.counter("visits")


@app.route("/")
def home():
    return f"{global_obj.query()} {visits.incr()}"
"""


def flask_cli(tmp_path: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return run_app_cli("flask", str(tmp_path / "cli_app.py"), tmp_path, {"FLASK_SHAREDSTATE_URL": url}, *args)


def test_flask_sharedstate_show_and_reset(tmp_path: Path) -> None:
    (tmp_path / "cli_app.py").write_text(APP_MODULE)
    url = sqlite_url(tmp_path, "cli")
    sys.path.insert(0, str(tmp_path))
    try:
        os.environ["FLASK_SHAREDSTATE_URL"] = url
        spec = importlib.util.spec_from_file_location("cli_app", tmp_path / "cli_app.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules["cli_app"] = module
        spec.loader.exec_module(module)
    finally:
        del os.environ["FLASK_SHAREDSTATE_URL"]
        sys.path.remove(str(tmp_path))
    sys.modules.pop("cli_app", None)
    client = module.app.test_client()
    for _ in range(4):
        client.get("/")

    check_show_then_reset(lambda *args: flask_cli(tmp_path, url, *args), url)
    assert client.get("/").text == "1 5"  # the factory ran again; the counter was not reset
    with module.app.app_context():
        assert module.visits.get() == 5


def test_flask_sharedstate_show_never_prints_credentials(tmp_path: Path) -> None:
    (tmp_path / "cli_app.py").write_text(APP_MODULE)
    shown = flask_cli(tmp_path, "memory://admin:hunter2@localhost", "show")
    assert shown.returncode == 0, shown.stderr
    assert "hunter2" not in shown.stdout + shown.stderr
    assert "admin:***@localhost" in shown.stdout


# -- a real gunicorn that forks after the store was used ----------------------------------
PRELOADED = """
from flask import Flask, flash, render_template_string
from sharedstate.flask import SharedState
import os, time

app = Flask(__name__)
app.secret_key = "test"
app.config["SHAREDSTATE_URL"] = os.environ["TEST_URL"]
state = SharedState(app)


class SomeObjWithIO:
    def __init__(self, param):
        self.param = param

    def query(self):
        param = self.param
        time.sleep(0)
        self.param = param + 1
        return self.param


global_obj = state.object("global_obj", SomeObjWithIO, 0)
assert global_obj.param == 0   # the master reads the store before forking (--preload)


@app.route("/")
def home():
    flash(global_obj.query())
    return render_template_string(
        '{% for m in get_flashed_messages() %}<p class="number">{{ m }}</p>{% endfor %}'
    )
"""


@pytest.mark.skipif(importlib.util.find_spec("gunicorn") is None, reason="needs gunicorn")
def test_gunicorn_preload_store_used_before_fork(tmp_path: Path) -> None:
    (tmp_path / "preloaded.py").write_text(textwrap.dedent(PRELOADED))
    port = free_port()
    mode = Mode(
        "gunicorn-preload",
        "gunicorn --preload -k gthread",
        lambda port, workers, threads: [
            sys.executable,
            "-m",
            "gunicorn",
            f"--bind={HOST}:{port}",
            "--preload",
            "-w",
            str(workers),
            "-k",
            "gthread",
            "--threads",
            str(threads),
            "--chdir",
            str(tmp_path),
            "preloaded:app",
        ],
        lambda workers: workers,
    )
    env = dict(os.environ, TEST_URL=sqlite_url(tmp_path, "preload"))
    server = Server(mode, port, 4, 8, env, str(tmp_path / "gunicorn.log"))
    try:
        server.wait_ready()
        seen, errors, _ = _burst(f"http://{HOST}:{port}/", 100, 30)
    finally:
        server.stop()
    assert errors == []
    assert sorted(value for value, _ in seen) == list(range(1, 101))
