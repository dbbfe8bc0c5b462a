"""Shared fixtures: a ``store_url`` fixture parametrized over every backend.

The conformance suite (test_conformance.py, test_concurrency.py, test_faults.py) runs once
per backend URL. ``tests/servers.py`` adds the server backends (Redis, PostgreSQL,
memcached, manager) when their servers can be found or started.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator

import pytest
from hypothesis import settings

import sharedstate

from . import servers
from .servers import *  # noqa: F403  (the server backends' session fixtures)

# Property tests explore at random while developing, and run the same examples in CI, so
# that a CI run can never pass or fail by luck.
settings.register_profile("ci", derandomize=True, deadline=None)
if os.environ.get("CI"):
    settings.load_profile("ci")

#: backend name -> function(tmp_path_factory) -> base URL (no query string)
LOCAL_BACKENDS: dict[str, Callable[[pytest.TempPathFactory], str]] = {
    "memory": lambda factory: "memory://",
    "sqlite": lambda factory: f"sqlite:///{factory.mktemp('sqlite')}/state.db",
}

#: backends whose store is shared by every process of the machine (memory:// is not)
MULTIPROCESS = {"sqlite", *servers.SERVER_BACKENDS}
#: backends that store a large object's parts apart (the others keep one record)
KEEPS_PARTS = {"memory", "sqlite", "redis", "postgresql"}


def _backend_names() -> list[str]:
    names = [*LOCAL_BACKENDS, *servers.SERVER_BACKENDS]
    wanted = os.environ.get("SHAREDSTATE_BACKENDS")
    if wanted:
        names = [n for n in names if n in wanted.split(",")]
    return names


def _base_url(name: str, request: pytest.FixtureRequest) -> str:
    if name in LOCAL_BACKENDS:
        return LOCAL_BACKENDS[name](request.getfixturevalue("tmp_path_factory"))
    return request.getfixturevalue(servers.SERVER_BACKENDS[name])


@pytest.fixture(scope="session", params=_backend_names())
def backend_base_url(request: pytest.FixtureRequest) -> str:
    """The base URL of one backend, for the whole session."""
    return _base_url(request.param, request)


@pytest.fixture(scope="session", params=[n for n in _backend_names() if n in MULTIPROCESS])
def multiprocess_base_url(request: pytest.FixtureRequest) -> str:
    """The base URL of a backend that every process of the machine shares."""
    return _base_url(request.param, request)


@pytest.fixture(scope="session", params=[n for n in _backend_names() if n in KEEPS_PARTS])
def parts_base_url(request: pytest.FixtureRequest) -> str:
    """The base URL of a backend that keeps the parts of large objects apart."""
    return _base_url(request.param, request)


@pytest.fixture
def backend_name(backend_base_url: str) -> str:
    return backend_base_url.split("://")[0]


def with_prefix(url: str, prefix: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}prefix={prefix}"


@pytest.fixture
def store_url(backend_base_url: str) -> str:
    """A URL of the backend under test, with a prefix of its own, so tests never see
    each other's names."""
    return with_prefix(backend_base_url, f"t{uuid.uuid4().hex[:12]}-")


@pytest.fixture
def store(store_url: str) -> Iterator[sharedstate.Store]:
    with sharedstate.connect(store_url) as opened:
        yield opened


@pytest.fixture
def anyio_backend() -> str:
    """The event loop of the async tests (``pytestmark = pytest.mark.anyio``): asyncio, the
    loop the async API is written for."""
    return "asyncio"


@pytest.fixture
def multiprocess_url(multiprocess_base_url: str) -> str:
    """Like ``store_url``, over the backends shared by processes (not memory://)."""
    return with_prefix(multiprocess_base_url, f"t{uuid.uuid4().hex[:12]}-")
