"""Servers the fault tests start, kill, pause and cut off: Redis and PostgreSQL.

Why not the machine's servers on 6379/5432: a fault test kills and freezes its server,
which must never be one that other tests or agents use. Each target here is private, on a
free loopback port, or inside a :class:`~tests.faults.netns.Namespace` on its link-local
address. Every fault has an undo (restart, SIGCONT, heal), and :meth:`Target.stop` undoes
whatever is still in force, so a failing test leaves nothing frozen or running.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from ..servers import PrivatePostgres, ServerProcess, free_port, port_answers, redis_server
from .netns import Namespace


def children_of(pid: int) -> list[int]:
    """Every descendant of ``pid`` (PostgreSQL's backends), from /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = (entry / "stat").read_text()
            parents[int(entry.name)] = int(stat[stat.rindex(")") + 2 :].split()[1])
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        kids = [child for child, ppid in parents.items() if ppid == parent]
        found += kids
        frontier += kids
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return state[state.rindex(")") + 2] != "Z"


def wait_gone(pids: list[int], timeout: float = 10.0) -> None:
    """Until the processes are dead *and reaped*: PostgreSQL refuses to start while the
    PID in its lock file exists, and a zombie exists until its parent (here often PID 1,
    the daemonized postmaster's adopter) reaps it."""
    deadline = time.monotonic() + timeout
    while any(Path(f"/proc/{pid}").exists() for pid in pids):
        if time.monotonic() > deadline:
            zombies = [pid for pid in pids if Path(f"/proc/{pid}").exists() and not alive(pid)]
            if len(zombies) == len([p for p in pids if Path(f"/proc/{p}").exists()]):
                return  # dead, only not reaped yet: PostgresTarget.start copes with that
            raise RuntimeError(f"processes {pids} outlived SIGKILL for {timeout} s")
        time.sleep(0.02)


class Target:
    """One server under fault: its URL, and kill -9 / restart / SIGSTOP / SIGCONT."""

    name = "server"
    host = "127.0.0.1"
    port = 0

    def __init__(self) -> None:
        self.paused: list[int] = []

    def url(self, **query: object) -> str:
        raise NotImplementedError

    def pids(self) -> list[int]:
        """The server's processes (all of them: a pause or a kill hits the whole server)."""
        raise NotImplementedError

    def start(self) -> None:
        raise NotImplementedError

    def answers(self) -> bool:
        return port_answers(self.port, self.host)

    def wait_answers(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.answers():
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} does not answer {timeout} s after its restart")
            time.sleep(0.02)

    def kill9(self) -> None:
        """kill -9 of every server process, as a crash or an OOM kill would."""
        pids = self.pids()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        wait_gone(pids)

    def restart(self) -> None:
        self.start()
        self.wait_answers()

    def pause(self) -> None:
        """SIGSTOP: the server keeps its sockets open and answers nothing (a GC pause, a
        VM migration, a stuck disk)."""
        for _ in range(5):  # again, for a backend forked while we were stopping the others
            fresh = [pid for pid in self.pids() if pid not in self.paused]
            if not fresh:
                break
            for pid in fresh:
                with contextlib.suppress(ProcessLookupError):  # a backend that just ended
                    os.kill(pid, signal.SIGSTOP)
                    self.paused.append(pid)

    def resume(self) -> None:
        paused, self.paused = self.paused, []
        for pid in paused:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)

    def stop(self) -> None:
        raise NotImplementedError


class RedisTarget(Target):
    """A private redis-server, ``appendonly yes`` + ``appendfsync always``, so that kill -9
    loses no acknowledged write and a lost write is the library's doing, not Redis's."""

    name = "redis"

    def __init__(self, namespace: Namespace | None = None) -> None:
        super().__init__()
        self.namespace = namespace
        self.port = free_port()
        self.host = namespace.ns_ip if namespace else "127.0.0.1"
        extra = ["--appendfsync", "always", "--bind", self.host]
        if namespace is not None:  # reached from the host's end of the veth, not loopback;
            extra += ["--protected-mode", "no"]  # nothing but this host can reach it
        self.server: ServerProcess = redis_server(self.port, *extra)
        self.directory = self.server.command[self.server.command.index("--dir") + 1]
        if namespace is not None:
            self.server.command = [*namespace.prefix(), *self.server.command]

    def url(self, **query: object) -> str:
        params = "&".join(f"{k}={v}" for k, v in query.items())
        return f"redis://{self.host}:{self.port}/0" + (f"?{params}" if params else "")

    def start(self) -> None:
        process = subprocess.Popen(
            self.server.command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.server.process = process
        try:
            self.wait_answers(15)
        except RuntimeError:
            self.stop()
            raise

    def pids(self) -> list[int]:
        process = self.server.process
        return [process.pid] if process is not None and process.poll() is None else []

    def kill9(self) -> None:
        process = self.server.process
        if process is not None and process.poll() is None:
            process.kill()  # SIGKILL; then reaped at once, as our own child
            process.wait()

    def stop(self) -> None:
        self.resume()
        process, self.server.process = self.server.process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()
        shutil.rmtree(self.directory, ignore_errors=True)


class PostgresTarget(Target):
    """A private PostgreSQL cluster (initdb once per session), started on loopback or
    inside a namespace; a kill hits the postmaster and every backend at once."""

    name = "postgresql"

    def __init__(self, cluster: PrivatePostgres, namespace: Namespace | None = None) -> None:
        super().__init__()
        self.cluster = cluster
        self.namespace = namespace
        self.port = cluster.port
        self.host = namespace.ns_ip if namespace else "127.0.0.1"

    def url(self, **query: object) -> str:
        params = "&".join(f"{k}={v}" for k, v in query.items())
        base = self.cluster.url().replace("@127.0.0.1:", f"@{self.host}:")
        return base + (f"?{params}" if params else "")

    def _pg_ctl(self, *args: str) -> None:
        prefix = self.namespace.prefix() if self.namespace else []
        command = [*prefix, *self.cluster.as_user, str(self.cluster.bin / "pg_ctl"),
                   "-D", str(self.cluster.data), *args]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            log = self.cluster.root / "log"
            tail = log.read_text()[-1500:] if log.exists() else ""
            raise RuntimeError(f"pg_ctl {args[-1]} failed: {done.stderr.strip()}\n{tail}")

    def start(self) -> None:
        lock = self.cluster.data / "postmaster.pid"
        if lock.exists() and self.postmaster() is None:
            lock.unlink()  # a killed server's: PostgreSQL would take an unreaped zombie for alive
        options = (
            f"-p {self.port} -c listen_addresses={self.host} -k {self.cluster.root} "
            "-c fsync=off -c max_connections=200"
        )
        self._pg_ctl("-o", options, "-w", "-t", "60", "-l", str(self.cluster.root / "log"), "start")

    def postmaster(self) -> int | None:
        try:
            pid = int((self.cluster.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        return pid if alive(pid) else None

    def pids(self) -> list[int]:
        pid = self.postmaster()
        return [] if pid is None else [pid, *children_of(pid)]

    def stop(self) -> None:
        self.resume()
        if self.postmaster() is None:
            return
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            self._pg_ctl("-m", "immediate", "-w", "stop")
        if self.postmaster() is not None:
            self.kill9()


def allow_link_local(cluster: PrivatePostgres) -> None:
    """Password logins from the namespaces' link-local /30s (initdb allows loopback only)."""
    hba = cluster.data / "pg_hba.conf"
    line = "host all all 169.254.0.0/16 scram-sha-256\n"
    if line not in hba.read_text():
        with hba.open("a") as f:
            f.write(line)
