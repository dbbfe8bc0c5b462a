"""Fixtures of the fault suite: private servers, a namespace, client processes, a summary.

Why private everything: these tests kill, freeze and cut off their servers, so none of
them may be the machine's Redis (6379) or PostgreSQL (5432). Every fixture undoes what it
made in its teardown, on failure too: servers stopped (and resumed first, if paused),
namespaces, veth pairs, routes and firewall rules removed, client processes killed.

At the end of the session, the counts per fault and backend (ok / did-not-happen /
unknown) are printed, and kept in pytest's cache under ``sharedstate/faults``.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from ..servers import PrivatePostgres, unavailable
from .harness import Child
from .netns import Namespace, require_netns
from .targets import PostgresTarget, RedisTarget, Target, allow_link_local

#: (fault, backend) -> the counts of its run, for the terminal summary
RESULTS: dict[tuple[str, str], dict[str, Any]] = {}


@pytest.fixture(scope="session")
def fault_cluster() -> Iterator[PrivatePostgres]:
    """A private PostgreSQL cluster made once (initdb is slow); each test starts it."""
    try:
        cluster = PrivatePostgres().init()
        allow_link_local(cluster)
    except (FileNotFoundError, subprocess.CalledProcessError, OSError, KeyError) as exc:
        unavailable(f"cannot make a private PostgreSQL cluster: {exc}")
    try:
        yield cluster
    finally:
        cluster.cleanup()


@pytest.fixture
def namespace() -> Iterator[Namespace]:
    require_netns()
    made = Namespace().create()
    try:
        yield made
    finally:
        made.remove()
        assert not made.exists(), f"namespace {made.name} survived its teardown"


def start_target(backend: str, request: pytest.FixtureRequest,
                 namespace: Namespace | None = None) -> Target:
    """A started Redis or PostgreSQL target, stopped at the end of the test."""
    target: Target
    if backend == "redis":
        try:
            target = RedisTarget(namespace)
        except FileNotFoundError as exc:
            unavailable(str(exc))
    else:
        target = PostgresTarget(request.getfixturevalue("fault_cluster"), namespace)
    request.addfinalizer(target.stop)
    target.start()
    return target


@pytest.fixture
def children() -> Iterator[list[Child]]:
    """Client processes a test starts; any still running at the end is killed."""
    started: list[Child] = []
    yield started
    for child in started:
        child.kill()


@pytest.fixture
def prefix() -> str:
    return f"f{uuid.uuid4().hex[:10]}-"


@pytest.fixture
def record_counts():
    def record(fault: str, backend: str, counts: dict[str, Any]) -> None:
        RESULTS[(fault, backend)] = counts

    return record


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: Any) -> None:
    if not RESULTS:
        return
    write = terminalreporter.write_line
    terminalreporter.section("fault suite: outcomes per fault and backend")
    write(f"{'fault':<11}{'backend':<12}{'ok':>6}{'did-not-happen':>16}{'(applied!)':>11}"
          f"{'unknown':>9}{'(applied)':>10}{'foreign':>8}{'hung':>6}{'slowest':>9}  verdict")
    for (fault, backend), c in sorted(RESULTS.items()):
        write(f"{fault:<11}{backend:<12}{c['ok']:>6}{c['did-not-happen']:>16}"
              f"{c['applied_refused']:>11}{c['unknown']:>9}{c['applied_unknown']:>10}"
              f"{c['foreign']:>8}{c['hung']:>6}{c['worst']:>8.2f}x  {c['verdict']}")
    write("(applied!): calls that raised a did-not-happen error and took effect (must be 0); "
          "slowest: the longest call as a multiple of its ?timeout= (must be <= 1.10)")
    if getattr(config, "cache", None) is not None:
        config.cache.set("sharedstate/faults",
                         [{"fault": f, "backend": b, **c} for (f, b), c in sorted(RESULTS.items())])
