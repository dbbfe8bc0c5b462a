"""The processes and clients of ``sharedstate demo``: a real server per mode in its own
process group, and bursts of simultaneous clients against it.

Kept apart from the run and the report because the benchmarks and the tests start servers
and fire bursts the same way; what they rely on (a server that is ready only when every
worker has booted, and that takes its whole process group with it when stopped) is here
once.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from typing import Any

import click

from .demo_modes import HOST, Mode

NUMBER = r'<p class="number">(-?\d+)</p>'
START_TIMEOUT = 30.0


class DemoError(click.ClickException):
    """A clear reason the demo cannot run (a missing package, a busy port, a dead server)."""


def _die_with_parent() -> None:
    """In the server's child process: be sent SIGTERM if the demo itself dies (even by
    SIGKILL, when no clean-up can run). Linux only; elsewhere the process group is enough."""
    os.setsid()
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class Server:
    """One server started for one mode: its own process group, its log in the temp dir."""

    def __init__(
        self, mode: Mode, port: int, workers: int, threads: int, env: dict[str, str], log_path: str
    ) -> None:
        self.mode = mode
        self.port = port
        self.workers = workers
        self.log_path = log_path
        self.command = mode.command(port, workers, threads)
        self._log = open(log_path, "wb")  # noqa: SIM115 (closed in stop())
        self.process = subprocess.Popen(
            self.command,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            preexec_fn=_die_with_parent,  # noqa: PLW1509 (single-threaded here)
        )

    def log_tail(self, lines: int = 15) -> str:
        with contextlib.suppress(OSError), open(self.log_path, "rb") as log:
            return "\n".join(log.read().decode(errors="replace").splitlines()[-lines:])
        return ""

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        """Until the server answers HTTP and (gunicorn) every worker has booted: a naive
        row measured while one worker is still starting would hide per-worker copies."""
        deadline = time.monotonic() + timeout
        wanted = self.mode.workers_to_boot(self.workers)
        while True:
            if self.process.poll() is not None:
                raise DemoError(
                    f"the {self.mode.name} server exited (status {self.process.returncode}) "
                    f"before it answered:\n{self.log_tail()}"
                )
            if _answers(self.port) and self._booted() >= wanted:
                return
            if time.monotonic() > deadline:
                raise DemoError(
                    f"the {self.mode.name} server did not answer on {HOST}:{self.port} within "
                    f"{timeout:g} s:\n{self.log_tail()}"
                )
            time.sleep(0.05)

    def _booted(self) -> int:
        with contextlib.suppress(OSError), open(self.log_path, "rb") as log:
            return log.read().count(self.mode.boot_line)
        return 0

    def stop(self) -> None:
        """Ends the whole process group (gunicorn's workers, the dev server's forked
        children): TERM, a grace period, then KILL."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)  # stragglers of the group, if any
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)
        self._log.close()


def _answers(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=1) as connection:
            connection.sendall(b"GET /ready HTTP/1.0\r\nHost: demo\r\n\r\n")
            return connection.recv(12).startswith(b"HTTP/")
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def check_port(port: int) -> None:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError as exc:
            raise DemoError(
                f"port {port} on {HOST} is in use ({exc.strerror}); pick another with --port, or leave it out"
            ) from None


def check_dependencies(modes: Sequence[Mode]) -> None:
    missing = sorted(
        {
            need
            for mode in modes
            for need in (*mode.needs, "httpx")
            if importlib.util.find_spec(need) is None
        }
    )
    if missing:
        names = ", ".join(missing)
        raise DemoError(
            f"the demo needs {names}, which is not installed: pip install 'sharedstate[demo]' "
            f"(or leave out the modes that need it with --mode)"
        )


@contextlib.contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM takes the same clean-up path as Ctrl-C."""

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _burst(url: str, clients: int, timeout: float) -> tuple[list[tuple[int, int]], list[str], list[Any]]:
    """``clients`` requests at once, by ``sharedstate check``'s HTTP recorder: each client
    waits at a start line, then all go. Returns (number, pid) per answer, the problems,
    and the calls as a counter history (for the check's counter procedure)."""
    from .check.record import hammer, regex_extractor

    ops, stats = hammer(
        url, clients, clients, regex_extractor(NUMBER), timeout, burst=True, header="X-Demo-Pid"
    )
    answered = [(op, pid) for op, pid in zip(ops, stats.headers, strict=True) if not op.pending]
    return [(op.result, int(pid or 0)) for op, pid in answered], stats.problems, [op for op, _ in answered]
