"""The Django integration, end to end: examples/django_site served by a real gunicorn
(4 workers x 8 threads, ``--preload``, the store opened in the master before the fork) to
100 simultaneous HTTP clients, on the store derived from a SQLite ``DATABASES``, on Redis and
on PostgreSQL; ``manage.py sharedstate show/reset``; ``manage.py check``; and the
derivation of the default store from the settings.

Each project run is a real process with real settings (``tests/django_project`` adds what a
test changes, as JSON in ``TEST_SETTINGS``), so this process never configures Django.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("django")
pytest.importorskip("httpx")

import sharedstate  # noqa: E402
from sharedstate.demo import HOST, Mode, Server, free_port  # noqa: E402
from sharedstate.django.checks import remote, several_hosts_hints  # noqa: E402
from sharedstate.django.conf import default_url, postgresql_url  # noqa: E402
from sharedstate.errors import ConfigurationError  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "django_site"
PROJECT = ROOT / "tests" / "django_project"
NAMES = ("global_obj", "global_obj_io")
NUMBER = re.compile(r'<p class="number">(-?\d+)</p>')
needs_gunicorn = pytest.mark.skipif(
    importlib.util.find_spec("gunicorn") is None, reason="needs gunicorn"
)


def project_env(settings: dict[str, Any]) -> dict[str, str]:
    path = os.pathsep.join([str(PROJECT), str(EXAMPLE), os.environ.get("PYTHONPATH", "")])
    return dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="settings_for_tests",
        PYTHONPATH=path,
        TEST_SETTINGS=json.dumps(settings),
    )


def manage(settings: dict[str, Any], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(EXAMPLE / "manage.py"), *args],
        env=project_env(settings),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )


def sqlite_project(tmp_path: Path) -> dict[str, Any]:
    database = tmp_path / "data" / "db.sqlite3"
    return {"DATABASES": {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(database)}}}


def run_in_sqlite_project(tmp_path: Path, code: str) -> subprocess.CompletedProcess[str]:
    """``python -c code`` in the example project on SQLite: Django's settings are read
    once per process, so each test that needs its own settings runs in its own."""
    return subprocess.run(
        [sys.executable, "-c", code],
        env=project_env(sqlite_project(tmp_path)),
        capture_output=True,
        text=True,
        timeout=60,
    )


def postgres_project(url: str, password: str = "") -> dict[str, Any]:
    """DATABASES naming the PostgreSQL server of ``url`` (the test server)."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return {
        "DATABASES": {
            "default": {
                "ENGINE": "django.db.backends.postgresql",
                "NAME": parts.path.lstrip("/"),
                "USER": parts.username or "",
                "PASSWORD": password or parts.password or "",
                "HOST": parts.hostname or "",
                "PORT": str(parts.port or ""),
            }
        }
    }


# -- 100 clients x 3 rounds under gunicorn 4x8 ----------------------------------------------
def serve_and_count(
    tmp_path: Path, settings: dict[str, Any], rounds: int = 3, asgi: bool = False
) -> dict[str, list[int]]:
    """Serves the project under gunicorn --preload (4 workers x 8 threads) and sends each
    counter view ``rounds`` bursts of 100 simultaneous clients; the numbers each view gave.

    ``asgi``: the ASGI app under 4 uvicorn workers instead, and each burst sends half of its
    clients to the sync view and half to the async one (``astate``), on one object."""
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        *(["--worker-class=uvicorn_worker.UvicornWorker"] if asgi else ["--preload", "--worker-class=gthread"]),
        "--graceful-timeout=2",
        f"--pythonpath={PROJECT},{EXAMPLE}",
        "asgi_for_tests:application" if asgi else "wsgi_for_tests:application",
    ]
    mode = Mode(
        "django-gthread",
        "gunicorn --preload -k gthread",
        lambda port, workers, threads: [
            *command[:3],
            f"--bind={HOST}:{port}",
            f"--workers={workers}",
            *([] if asgi else [f"--threads={threads}"]),
            *command[3:],
        ],
        lambda workers: workers,
    )
    server = Server(mode, free_port(), 4, 8, project_env(settings), str(tmp_path / "gunicorn.log"))
    seen: dict[str, list[int]] = {"/ and /async/": []} if asgi else {"/": [], "/io/": []}
    try:
        server.wait_ready()
        for path in seen:
            urls = [f"http://{HOST}:{server.port}{each}" for each in path.split(" and ")]
            for _ in range(rounds):
                numbers, errors = asyncio.run(burst(urls, 100))
                assert errors == [], (path, errors[:3], server.log_tail())
                seen[path] += numbers
    finally:
        server.stop()
    return seen


async def burst(urls: list[str], clients: int) -> tuple[list[int], list[str]]:
    """``clients`` simultaneous requests, each on its own connection, to the ``urls`` in
    turn: every client waits at a start line, then all go. The numbers the pages showed,
    and the failures."""
    import httpx

    start = asyncio.Event()
    numbers: list[int] = []
    errors: list[str] = []
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=0)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:

        async def one(url: str) -> None:
            await start.wait()
            try:
                response = await client.get(url)
            except httpx.HTTPError as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
                return
            found = NUMBER.search(response.text)
            if response.status_code != 200 or found is None:
                errors.append(f"HTTP {response.status_code}: {response.text[:200]!r}")
            else:
                numbers.append(int(found.group(1)))

        tasks = [asyncio.create_task(one(urls[n % len(urls)])) for n in range(clients)]
        await asyncio.sleep(0)  # every client is at the start line
        start.set()
        await asyncio.gather(*tasks)
    return numbers, errors


def assert_exact(seen: dict[str, list[int]]) -> None:
    for path, numbers in seen.items():
        assert sorted(numbers) == list(range(1, 301)), (path, len(numbers), len(set(numbers)))


@needs_gunicorn
def test_default_store_beside_the_sqlite_database_exact_under_gunicorn(tmp_path: Path) -> None:
    settings = sqlite_project(tmp_path)
    assert_exact(serve_and_count(tmp_path, settings))
    store_file = tmp_path / "data" / "sharedstate.db"
    assert store_file.exists()  # the derived default: beside db.sqlite3
    with sharedstate.connect(f"sqlite:///{store_file}") as store:
        assert {name for _, name in store.names()} == set(NAMES)
        assert store.inspect("global_obj")["state"] == {"param": 300}


@needs_gunicorn
@pytest.mark.parametrize("server", ["redis", "postgresql"])
def test_shared_store_url_exact_under_gunicorn(
    tmp_path: Path, server: str, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue("redis_url" if server == "redis" else "postgres_url")
    prefix = f"django-{uuid.uuid4().hex[:10]}-"
    settings = {**sqlite_project(tmp_path), "SHAREDSTATE_URL": url, "SHAREDSTATE_PREFIX": prefix}
    try:
        assert_exact(serve_and_count(tmp_path, settings))
        with sharedstate.connect(url, prefix=prefix) as store:
            assert store.inspect("global_obj_io")["state"] == {"param": 300}
    finally:
        with sharedstate.connect(url, prefix=prefix) as store:
            for name in NAMES:
                store.delete(name)
    assert not (tmp_path / "data" / "sharedstate.db").exists()  # the URL's store, not the default


@needs_gunicorn
@pytest.mark.parametrize("server", ["sqlite-default", "redis", "postgresql"])
def test_sync_and_async_views_share_one_object_under_uvicorn_workers(
    tmp_path: Path, server: str, request: pytest.FixtureRequest
) -> None:
    """astate under an ASGI server (gunicorn -k uvicorn_worker.UvicornWorker -w 4): async
    views awaiting the object and sync views calling it hand out each number once."""
    pytest.importorskip("uvicorn_worker")
    settings = sqlite_project(tmp_path)
    prefix = f"django-{uuid.uuid4().hex[:10]}-"
    url = None
    if server != "sqlite-default":
        url = request.getfixturevalue("redis_url" if server == "redis" else "postgres_url")
        settings = {**settings, "SHAREDSTATE_URL": url, "SHAREDSTATE_PREFIX": prefix}
    try:
        assert_exact(serve_and_count(tmp_path, settings, asgi=True))
    finally:
        if url is not None:
            with sharedstate.connect(url, prefix=prefix) as store:
                store.delete("global_obj")
    assert (tmp_path / "data" / "sharedstate.db").exists() == (url is None)


# -- manage.py sharedstate show / reset -------------------------------------------------------
def call_view(settings: dict[str, Any], times: int) -> None:
    code = (
        "from counter.views import global_obj\n"
        f"print([global_obj.query() for _ in range({times})])"
    )
    result = manage(settings, "shell", "-c", code)
    assert result.returncode == 0, result.stderr


def test_manage_py_sharedstate_show_and_reset(tmp_path: Path) -> None:
    settings = sqlite_project(tmp_path)
    store_url = f"sqlite:///{tmp_path}/data/sharedstate.db"
    call_view(settings, 4)

    listing = manage(settings, "sharedstate", "show")
    assert listing.returncode == 0, listing.stderr
    lines = listing.stdout.splitlines()
    assert lines[0] == f"store: {store_url}"
    assert "  object   global_obj  param=4" in lines
    # declared in the views (the command loads the URLconf), not stored yet
    assert "  object   global_obj_io  (SomeObjWithIO, declared, nothing stored yet)" in lines

    one = manage(settings, "sharedstate", "show", "global_obj")
    assert one.returncode == 0, one.stderr
    assert one.stdout.splitlines() == [
        "object global_obj (counter.views:SomeObj, version 4)",
        "  param = 4",
    ]
    missing = manage(settings, "sharedstate", "show", "nope")
    assert missing.returncode == 1
    assert f"nothing named 'nope' in {store_url}" in missing.stderr

    refused = manage(settings, "sharedstate", "reset", "global_obj")  # no answer: not reset
    assert refused.returncode == 1 and "aborted" in refused.stderr
    assert "param=4" in manage(settings, "sharedstate", "show").stdout

    reset = manage(settings, "sharedstate", "reset", "global_obj", "--yes")
    assert reset.returncode == 0, reset.stderr
    assert reset.stdout.strip() == "reset global_obj"
    call_view(settings, 1)
    assert "  object   global_obj  param=1" in manage(settings, "sharedstate", "show").stdout
    again = manage(settings, "sharedstate", "reset", "nope", "--no-input")
    assert again.returncode == 1 and "nothing named 'nope'" in again.stderr


def test_default_store_on_the_projects_postgresql_never_prints_its_password(
    postgres_url: str,
) -> None:
    """DATABASES on PostgreSQL: the store is that server (its own tables); the password
    is in the URL it connects with, and never in what the command prints."""
    from urllib.parse import urlsplit

    parts = urlsplit(postgres_url)
    # the machine's server trusts loopback (any password does); a private one needs its own
    password = parts.password or "hunter2-not-shown"
    prefix = f"django-{uuid.uuid4().hex[:10]}-"
    settings = {**postgres_project(postgres_url, password), "SHAREDSTATE_PREFIX": prefix}
    try:
        call_view(settings, 2)
        shown = manage(settings, "sharedstate", "show")
        assert shown.returncode == 0, shown.stderr
        assert password not in shown.stdout + shown.stderr
        assert shown.stdout.splitlines()[:2] == [
            f"store: postgresql://{parts.username}:***@{parts.hostname}:{parts.port}{parts.path}",
            f"prefix: {prefix}",
        ]
        assert "  object   global_obj  param=2" in shown.stdout
    finally:
        with sharedstate.connect(postgres_url, prefix=prefix) as store:
            store.delete("global_obj")


# -- system checks ------------------------------------------------------------------------------
def check(settings: dict[str, Any], *args: str) -> subprocess.CompletedProcess[str]:
    return manage(settings, "check", *args)


def test_checks_pass_for_the_default_and_never_connect(tmp_path: Path) -> None:
    base = sqlite_project(tmp_path)
    for settings in (
        base,
        {**base, "SHAREDSTATE_URL": "redis://127.0.0.1:1/0"},  # nothing listens there
        {**base, "SHAREDSTATE_URL": "postgresql://u:pw@192.0.2.1:5432/db"},  # unroutable
    ):
        result = check(settings, "--deploy", "--fail-level", "ERROR")
        assert result.returncode == 0, result.stderr
        assert "sharedstate." not in result.stdout + result.stderr
    assert not (tmp_path / "data").exists()  # the default store's file was not created


def test_check_memory_store_is_an_error(tmp_path: Path) -> None:
    settings = {**sqlite_project(tmp_path), "SHAREDSTATE_URL": "memory://"}
    for args in ((), ("--deploy",)):
        result = check(settings, *args)
        assert result.returncode == 1
        assert "sharedstate.E002" in result.stderr and "one process" in result.stderr


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("nosuch://host/0", "unknown store URL scheme 'nosuch'"),
        ("not a url", "not a store URL"),
        ("sqlite:///x.db?colour=blue", "colour"),
        ("redis://admin:pa55word@127.0.0.1:6379/0?timeout=soon", "timeout"),
    ],
)
def test_check_bad_url_is_a_clear_error(tmp_path: Path, url: str, said: str) -> None:
    result = check({**sqlite_project(tmp_path), "SHAREDSTATE_URL": url})
    assert result.returncode == 1
    assert "sharedstate.E001" in result.stderr and said in result.stderr
    assert "pa55word" not in result.stdout + result.stderr


def test_check_pickle_without_a_key_is_an_error(tmp_path: Path) -> None:
    result = check({**sqlite_project(tmp_path), "SHAREDSTATE_CODEC": "pickle"})
    assert result.returncode == 1
    assert "sharedstate.E001" in result.stderr and "secret_key" in result.stderr


def test_check_sqlite_store_when_settings_suggest_several_hosts(tmp_path: Path) -> None:
    settings = {
        **sqlite_project(tmp_path),
        "SHAREDSTATE_URL": f"sqlite:///{tmp_path}/state.db",
        "CACHES": {
            "default": {
                "BACKEND": "django.core.cache.backends.redis.RedisCache",
                "LOCATION": "redis://:cachepw@cache.internal:6379/1",
            }
        },
    }
    result = check(settings)
    assert result.returncode == 0, result.stderr  # a warning, not an error
    assert "sharedstate.W001" in result.stderr
    assert "CACHES['default'] is on host 'cache.internal'" in result.stderr
    assert "cachepw" not in result.stderr
    silenced = check({**settings, "SILENCED_SYSTEM_CHECKS": ["sharedstate.W001"]})
    assert "sharedstate.W001" not in silenced.stderr
    local = check({**settings, "CACHES": {}})
    assert "sharedstate.W001" not in local.stderr


def test_check_other_database_engine(tmp_path: Path) -> None:
    mysql = {
        "DATABASES": {
            "default": {"ENGINE": "django.db.backends.mysql", "NAME": "app", "HOST": "db.internal"}
        },
        "BASE_DIR": str(tmp_path),
    }
    result = check(mysql)
    assert result.returncode == 0, result.stderr
    assert "sharedstate.W002" in result.stderr and "django.db.backends.mysql" in result.stderr
    assert f"sqlite:///{tmp_path}/sharedstate.db" in result.stderr
    assert "sharedstate.W001" in result.stderr  # and the database is on another host
    nowhere = check({**mysql, "BASE_DIR": None})
    assert nowhere.returncode == 1
    assert "sharedstate.E003" in nowhere.stderr and "SHAREDSTATE_URL" in nowhere.stderr


# -- the default store, derived from DATABASES --------------------------------------------------
def test_default_url_from_sqlite_postgresql_and_others(tmp_path: Path) -> None:
    sqlite = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": tmp_path / "db.sqlite3"}}
    assert default_url(sqlite, None) == (
        f"sqlite:///{tmp_path}/sharedstate.db",
        "beside DATABASES['default'] (SQLite)",
        False,
    )
    in_memory = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
    assert default_url(in_memory, tmp_path)[0] == f"sqlite:///{tmp_path}/sharedstate.db"
    gis = {"default": {"ENGINE": "django.contrib.gis.db.backends.postgis", "NAME": "geo"}}
    assert default_url(gis, None)[0] == "postgresql:///geo"
    oracle = {"default": {"ENGINE": "django.db.backends.oracle", "NAME": "x"}}
    assert default_url(oracle, tmp_path) == (
        f"sqlite:///{tmp_path}/sharedstate.db",
        "BASE_DIR (SQLite)",
        True,
    )
    with pytest.raises(ConfigurationError, match="SHAREDSTATE_URL"):
        default_url(oracle, None)
    with pytest.raises(ConfigurationError, match="SHAREDSTATE_URL"):
        default_url({}, None)


def test_postgresql_url_quotes_every_part() -> None:
    pytest.importorskip("psycopg")
    database = {
        "NAME": "my db",
        "USER": "app@corp",
        "PASSWORD": "p@ss:w/rd?",
        "HOST": "db.internal",
        "PORT": 6432,
        "OPTIONS": {"sslmode": "require", "isolation_level": 3, "pool": True},
    }
    assert postgresql_url(database) == (
        "postgresql://app%40corp:p%40ss%3Aw%2Frd%3F@db.internal:6432/my%20db?sslmode=require"
    )
    socket = {"NAME": "app", "HOST": "/var/run/postgresql"}
    assert postgresql_url(socket) == "postgresql://%2Fvar%2Frun%2Fpostgresql/app"
    assert postgresql_url({"NAME": "app", "HOST": "::1", "USER": "u"}) == "postgresql://u@[::1]/app"
    with pytest.raises(ConfigurationError, match="NAME"):
        postgresql_url({"HOST": "db"})


def test_several_hosts_heuristic() -> None:
    assert [remote(h) for h in ("", "localhost", "127.0.0.1", "::1", "/tmp/sock")] == [False] * 5
    assert [remote(h) for h in ("db.internal", "10.0.0.5", "[2001:db8::1]")] == [True] * 3

    class Settings:
        DATABASES = {"default": {"ENGINE": "django.db.backends.postgresql", "HOST": "10.0.0.5"}}
        CACHES = {
            "a": {"BACKEND": "django.core.cache.backends.memcached.PyMemcacheCache",
                  "LOCATION": ["127.0.0.1:11211", "mc2:11211"]},
            "b": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "far"},
            "c": {"BACKEND": "django.core.cache.backends.memcached.PyMemcacheCache",
                  "LOCATION": "unix:/tmp/memcached.sock"},
        }

    assert several_hosts_hints(Settings) == [
        "DATABASES['default'] is on host '10.0.0.5'",
        "CACHES['a'] is on host 'mc2'",
    ]


def test_nothing_read_or_connected_at_import(tmp_path: Path) -> None:
    """views.py imported with no settings configured at all: declaring is fine; the first
    call is where Django says settings are missing."""
    code = (
        "import sys\n"
        f"sys.path.insert(0, {str(EXAMPLE)!r})\n"
        "from counter import views\n"
        "from django.conf import settings\n"
        "assert not settings.configured\n"
        "try:\n"
        "    views.global_obj.query()\n"
        "except Exception as exc:\n"
        "    print(type(exc).__name__)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ImproperlyConfigured"


# -- `sharedstate demo`'s Django rows -------------------------------------------------------------
@needs_gunicorn
def test_demo_django_rows_on_the_default_store() -> None:
    """The WSGI row (gunicorn gthread 4x8) and the ASGI row (4 uvicorn workers, async
    views on astate), on the store derived from the demo project's SQLite database."""
    pytest.importorskip("uvicorn_worker")
    from sharedstate.demo import MODES, Settings, run_demo
    from sharedstate.demo_app import VARIANTS
    from sharedstate.demo_asgi import ASGI_VARIANTS

    modes = ["django-gthread", "django-uvicorn"]
    # the I/O and await variants' sharedstate side is the project tests' /io/ and /async/
    variants = ["naive", "sharedstate"]
    assert set(variants) <= set(VARIANTS) & set(ASGI_VARIANTS)
    rows = run_demo(Settings(modes=modes, variants=variants))
    assert [(row.mode, row.variant) for row in rows] == [
        (mode, variant) for mode in modes for variant in MODES[mode].variants if variant in variants
    ]
    for row in rows:
        assert row.requests == 100 and row.errors == [], (row.mode, row.variant, row.errors[:3])
        if row.variant.startswith("sharedstate"):
            assert sorted(row.values) == list(range(1, 101)), (row.mode, row.variant)
            assert row.verdict == "exact"
        else:  # observed, not asserted; the arithmetic must add up
            print(row.summary())
            assert row.duplicates == row.repeated_in_one_process + row.repeated_across_processes


# -- examples/django_site ---------------------------------------------------------------------
def test_example_views_differ_by_two_lines() -> None:
    """The sharedstate view is the naive one plus the import and the changed global."""
    import difflib

    def code(name: str) -> list[str]:
        body = (EXAMPLE / "counter" / f"{name}.py").read_text().split('"""', 2)[2]
        return [line.split("#")[0].rstrip() for line in body.splitlines() if line.strip()]

    changed = [
        line
        for line in difflib.unified_diff(code("naive"), code("views"), lineterm="", n=0)
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]
    assert changed == [
        "+from sharedstate.django import state",
        "-global_obj = SomeObj(0)",
        '+global_obj = state.object("global_obj", SomeObj, 0)',
    ]


def test_override_settings_makes_a_new_store(tmp_path: Path) -> None:
    """Tests that override SHAREDSTATE_URL (or DATABASES) get the store they name, at once."""
    code = f"""
import django
django.setup()
from django.test import override_settings
from counter.views import global_obj
from sharedstate.django import state

assert [global_obj.query(), global_obj.query()] == [1, 2]
with override_settings(SHAREDSTATE_URL="sqlite:///{tmp_path}/other.db"):
    assert state.settings.source == "SHAREDSTATE_URL"
    assert [global_obj.query()] == [1]
assert [global_obj.query()] == [3]
print(state.settings.url)
"""
    result = run_in_sqlite_project(tmp_path, code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"sqlite:///{tmp_path}/data/sharedstate.db"
    assert (tmp_path / "other.db").exists()


def test_counter_lock_and_transaction_through_state(tmp_path: Path) -> None:
    code = """
import django
django.setup()
from counter.views import global_obj
from sharedstate.django import state

visits = state.counter("visits")
assert [visits.incr(), visits.incr(5), visits.get()] == [1, 6, 6]
with state.lock("report", ttl=5) as lease:
    assert lease.token == 1 and state.lock("report").locked()
with state.transaction("global_obj") as obj:
    assert [obj.query(), obj.query()] == [1, 2]
with state.transaction(global_obj) as obj:
    obj.query()
assert global_obj.param == 3
print(sorted(state.store.names()))
"""
    result = run_in_sqlite_project(tmp_path, code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        "[('counter', 'visits'), ('lock', 'report'), ('object', 'global_obj')]"
    )


def test_a_call_stays_done_when_the_database_transaction_rolls_back(tmp_path: Path) -> None:
    """What the README says of transactions: the call is not part of the database
    transaction; on_commit work runs only when it commits."""
    code = """
import django
django.setup()
from django.db import transaction
from counter.views import global_obj

sent = []
try:
    with transaction.atomic():
        number = global_obj.query()
        transaction.on_commit(lambda: sent.append(number))
        raise RuntimeError("the order failed")
except RuntimeError:
    pass
with transaction.atomic():
    number = global_obj.query()
    transaction.on_commit(lambda: sent.append(number))
print(global_obj.param, sent)
"""
    (tmp_path / "data").mkdir()
    result = run_in_sqlite_project(tmp_path, code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "2 [2]"
