"""Server backends for the conformance suite (Redis, PostgreSQL, memcached, manager).

``SERVER_BACKENDS`` maps a backend name to the name of a session fixture that returns a
base URL of a running server (``tests/conftest.py`` imports the fixtures from here).

Where the servers come from:

* Redis and PostgreSQL: the machine's own on 127.0.0.1:6379 and 127.0.0.1:5432 (database
  ``test``, user ``postgres``, trust) when they answer; otherwise a private one started on
  a free port, if ``redis-server`` / ``initdb`` are installed.
* memcached and the manager server: always a private one on a free port.

A server that can be neither found nor started skips its backend on a developer's machine
and fails it under CI (``CI=true``), where every backend must run.
"""

from __future__ import annotations

import contextlib
import glob
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

SERVER_BACKENDS: dict[str, str] = {
    "redis": "redis_url",
    "postgresql": "postgres_url",
    "memcached": "memcached_url",
    "manager": "manager_url",
}

__all__ = [
    "SERVER_BACKENDS",
    "memcached_url",
    "manager_url",
    "postgres_url",
    "private_postgres",
    "redis_url",
]

MACHINE_REDIS = ("127.0.0.1", 6379)
MACHINE_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"


def unavailable(reason: str) -> None:
    """Skips, or fails under CI, where a missing server is a broken set-up."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI needs this server: {reason}", pytrace=False)
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_answers(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


class ServerProcess:
    """A server started by the tests, on 127.0.0.1:``port``; restartable, stopped at the end."""

    def __init__(self, command: list[str], port: int, name: str) -> None:
        self.command = command
        self.port = port
        self.name = name
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 15.0) -> ServerProcess:
        self.process = subprocess.Popen(
            self.command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
        )
        deadline = time.monotonic() + timeout
        while not port_answers(self.port):
            if self.process.poll() is not None:
                error = (
                    self.process.stderr.read().decode(errors="replace")
                    if self.process.stderr
                    else ""
                )
                raise RuntimeError(
                    f"{self.name} exited at start ({self.process.returncode}): {error}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.name} did not listen on port {self.port} in {timeout} s")
            time.sleep(0.02)
        return self

    def stop(self, sig: int = signal.SIGTERM) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(sig)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stderr:
            process.stderr.close()

    def restart(self, sig: int = signal.SIGTERM) -> None:
        self.stop(sig)
        deadline = time.monotonic() + 5
        while port_answers(self.port) and time.monotonic() < deadline:
            time.sleep(0.02)
        self.start()


def redis_server(port: int, *extra: str) -> ServerProcess:
    """A private redis-server; ``appendonly`` so that a restart keeps every answered write."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise FileNotFoundError("redis-server is not installed")
    directory = tempfile.mkdtemp(prefix="sharedstate-redis-")
    command = [
        binary,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        directory,
        "--save",
        "",
        "--appendonly",
        "yes",
        "--appendfsync",
        "everysec",
        *extra,
    ]
    return ServerProcess(command, port, "redis-server")


def memcached_server(port: int, *extra: str) -> ServerProcess:
    binary = shutil.which("memcached")
    if binary is None:
        raise FileNotFoundError("memcached is not installed (apt-get install memcached)")
    user = ["-u", "nobody"] if os.geteuid() == 0 else []
    command = [binary, "-l", "127.0.0.1", "-p", str(port), "-U", "0", "-m", "64", *user, *extra]
    return ServerProcess(command, port, "memcached")


def manager_server(port: int, authkey: str) -> ServerProcess:
    url = f"manager://127.0.0.1:{port}?authkey={authkey}"
    command = [sys.executable, "-c", "from sharedstate.cli import main; main()", "serve", url]
    return ServerProcess(command, port, "sharedstate serve")


class PrivatePostgres:
    """A PostgreSQL cluster of our own under a temp dir (initdb + pg_ctl as user postgres
    when run as root), with password (scram) authentication, so that tests may restart it
    or send a wrong password without disturbing the machine's shared cluster."""

    PASSWORD = "s3cret-pw"

    def __init__(self) -> None:
        self.bin = self._find_bin()
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="sharedstate-pg-"))
        self.data = self.root / "data"
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres")
            self.as_user = ["runuser", "-u", "postgres", "--"]

    @staticmethod
    def _find_bin() -> Path:
        found = shutil.which("initdb")
        if found:
            return Path(os.path.realpath(found)).parent
        candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not candidates:
            raise FileNotFoundError("PostgreSQL's initdb is not installed")
        return Path(candidates[-1]).parent

    def _run(self, *command: str) -> None:
        subprocess.run([*self.as_user, *command], check=True, capture_output=True, timeout=120)

    def url(self, password: str | None = None) -> str:
        secret = self.PASSWORD if password is None else password
        return f"postgresql://postgres:{secret}@127.0.0.1:{self.port}/postgres"

    def init(self) -> PrivatePostgres:
        pwfile = self.root / "pw"
        pwfile.write_text(self.PASSWORD)
        if self.as_user:
            shutil.chown(pwfile, "postgres")
        self._run(
            str(self.bin / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=scram-sha-256",
            f"--pwfile={pwfile}",
            "--no-sync",
        )
        return self

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} "
            "-c fsync=off -c max_connections=200"
        )
        self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            options,
            "-w",
            "-l",
            str(self.root / "log"),
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def cleanup(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


# -- session fixtures ----------------------------------------------------------------------
@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    if port_answers(MACHINE_REDIS[1]):
        yield f"redis://127.0.0.1:{MACHINE_REDIS[1]}/0"
        return
    try:
        server = redis_server(free_port()).start()
    except (FileNotFoundError, RuntimeError) as exc:
        unavailable(f"no Redis on 127.0.0.1:6379 and none could be started: {exc}")
    try:
        yield f"redis://127.0.0.1:{server.port}/0"
    finally:
        server.stop()


def _machine_postgres_answers() -> bool:
    if not port_answers(5432):
        return False
    import psycopg

    try:
        psycopg.connect(MACHINE_POSTGRES, connect_timeout=3).close()
        return True
    except psycopg.Error:
        return False


@pytest.fixture(scope="session")
def private_postgres() -> Iterator[PrivatePostgres]:
    """A private cluster (password auth), for restart and credential tests."""
    try:
        cluster = PrivatePostgres().init()
        cluster.start()
    except (FileNotFoundError, subprocess.CalledProcessError, OSError, KeyError) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        unavailable(
            f"cannot start a private PostgreSQL cluster: {exc} {detail.decode(errors='replace')}"
        )
    try:
        yield cluster
    finally:
        cluster.cleanup()


@pytest.fixture(scope="session")
def postgres_url(request: pytest.FixtureRequest) -> str:
    if _machine_postgres_answers():
        return MACHINE_POSTGRES
    cluster: PrivatePostgres = request.getfixturevalue("private_postgres")
    return cluster.url()


@pytest.fixture(scope="session")
def memcached_url() -> Iterator[str]:
    try:
        server = memcached_server(free_port()).start()
    except (FileNotFoundError, RuntimeError) as exc:
        unavailable(f"cannot start memcached: {exc}")
    try:
        yield f"memcached://127.0.0.1:{server.port}"
    finally:
        server.stop()


@pytest.fixture(scope="session")
def manager_url() -> Iterator[str]:
    authkey = secrets.token_hex(16)
    try:
        server = manager_server(free_port(), authkey).start()
    except RuntimeError as exc:
        unavailable(f"cannot start `sharedstate serve`: {exc}")
    try:
        yield f"manager://127.0.0.1:{server.port}?authkey={authkey}"
    finally:
        server.stop()
