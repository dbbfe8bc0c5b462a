"""Running clients and faults: client processes, the fault schedule, the recorded calls.

Why this shape: a fault test is a workload of separately started client processes (see
``client.py``) that runs before, during and after one fault; the test process injects the
fault, checks that it is really in force (the server stops answering a raw probe), heals
it, checks that the server answers again, and then judges the recorded calls
(``accounting.py``). Every time is CLOCK_MONOTONIC, one clock for all processes of the
machine, so calls and the fault window can be compared across processes.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sharedstate

from .models import Adder

ROOT = Path(__file__).resolve().parents[2]


class Child:
    """One client process (``python -m tests.faults.client``) and its events file."""

    def __init__(self, directory: Path, role: str, **config: Any) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.events = directory / "events.jsonl"
        self.config = {"role": role, "events": str(self.events), **config}
        self.stderr = (directory / "stderr").open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.faults.client", json.dumps(self.config)],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=self.stderr,
        )

    def read_events(self) -> list[dict[str, Any]]:
        if not self.events.exists():
            return []
        return [json.loads(line) for line in self.events.read_text().splitlines() if line]

    def wait_event(self, name: str, timeout: float = 30.0) -> dict[str, Any]:
        """The child's event ``name``; fails, with the child's stderr, if it never comes."""
        deadline = time.monotonic() + timeout
        while True:
            for event in self.read_events():
                if event["event"] == name:
                    return event
            exited = self.process.poll() is not None
            if exited or time.monotonic() > deadline:
                if exited:  # one last look: the event may have come just before the exit
                    for event in self.read_events():
                        if event["event"] == name:
                            return event
                why = f"exited with {self.process.returncode}" if exited else f"{timeout} s passed"
                error = (self.directory / "stderr").read_text()[-2000:]
                raise AssertionError(f"client {self.config['role']} never sent {name!r} ({why}); "
                                     f"events {self.read_events()}; stderr:\n{error}")
            time.sleep(0.01)

    def go(self, name: str = "go") -> None:
        (self.directory / name).touch()

    def signal(self, sig: int) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, sig)

    def finish(self, timeout: float) -> bool:
        """Waits for the exit; kills after ``timeout``. True if it exited on its own."""
        try:
            self.process.wait(timeout=timeout)
            return True
        except subprocess.TimeoutExpired:
            self.kill()
            return False
        finally:
            self.stderr.close()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)  # a paused child dies too
            self.process.kill()
        self.process.wait()
        self.stderr.close()


# -- raw probes: is the server really down, frozen or cut off? ----------------------------


def responds(kind: str, host: str, port: int, timeout: float = 0.5) -> bool:
    """A protocol-level answer within ``timeout``: Redis PING, PostgreSQL SSLRequest."""
    request = b"PING\r\n" if kind == "redis" else (8).to_bytes(4, "big") + (80877103).to_bytes(4, "big")
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            sock.sendall(request)
            reply = sock.recv(16)
    except OSError:
        return False
    return reply.startswith(b"+PONG") if kind == "redis" else reply[:1] in (b"N", b"S")


@dataclass
class Fault:
    """What to do, for how long, and how to undo it."""

    name: str
    inject: Callable[[], None]
    heal: Callable[[], None]
    hold: float
    takes_store_down: bool = True  # False only for the control run (no fault)
    cycles: int = 1  # injected this many times, ``gap`` seconds apart
    gap: float = 1.0


@dataclass
class Run:
    """What one workload under one fault left behind, for the judges."""

    backend: str
    fault: str
    timeout: float
    calls: list[dict[str, Any]]
    windows: list[tuple[float, float]]  # monotonic: fault injected .. healed and answering
    finals: dict[str, tuple[float, float, int | None]] = field(default_factory=dict)
    final_errors: list[str] = field(default_factory=list)
    killed_processes: int = 0


def read_calls(logs: list[Path]) -> list[dict[str, Any]]:
    """Joins each call's ``call`` and ``done`` lines; a call without ``done`` never ended."""
    calls: dict[str, dict[str, Any]] = {}
    for log in logs:
        if not log.exists():
            continue
        for line in log.read_text().splitlines():
            if not line.endswith("}"):
                continue  # a line cut short by SIGKILL
            entry = json.loads(line)
            if entry["phase"] == "call":
                calls[entry["id"]] = {**entry, "start": entry["t"], "end": None,
                                      "outcome": None}
            elif entry["id"] in calls:  # (its call line may be the one SIGKILL cut short)
                calls[entry["id"]].update(
                    {k: v for k, v in entry.items() if k not in {"phase", "t"}}, end=entry["t"]
                )
    return sorted(calls.values(), key=lambda c: c["start"])


def read_finals(url: str, run: Run, patience: float = 20.0) -> None:
    """The object's and the counter's final values, read once the fault is healed."""
    deadline = time.monotonic() + patience
    with sharedstate.connect(url) as store:
        for key, read in (("acct", lambda: store.object("acct", Adder, 0).value),
                          ("hits", lambda: store.counter("hits").get())):
            while True:
                started = time.monotonic()
                try:
                    value = read()
                except sharedstate.SharedStateError as exc:
                    if time.monotonic() > deadline:
                        run.final_errors.append(f"{key}: {type(exc).__name__}: {exc}")
                        run.finals[key] = (started, time.monotonic(), None)
                        break
                    time.sleep(0.2)
                    continue
                run.finals[key] = (started, time.monotonic(), value)
                break


def run_workload(
    directory: Path, backend: str, url: str, fault: Fault, probe: Callable[[], bool], *,
    processes: int = 3, threads: int = 3, timeout: float = 2.0, warmup: float = 1.5,
    after: float = 3.0, pace: float = 0.02, seed: int = 1,
) -> Run:
    """``processes`` x ``threads`` clients call the object and the counter (URL with
    ``?timeout=``) from before the fault until ``after`` seconds after it is healed."""
    stop = directory / "stop"
    logs = [directory / f"calls-{i}.jsonl" for i in range(processes)]
    children = [
        Child(directory / f"client{i}", "workload", url=url, process=i, threads=threads,
              log=str(logs[i]), stop=str(stop), seed=seed, pace=pace)
        for i in range(processes)
    ]
    healed = True  # False while a fault is in force
    windows: list[tuple[float, float]] = []
    try:
        for child in children:
            child.wait_event("started", timeout=30)
        time.sleep(warmup)
        assert probe(), f"{backend} does not answer before the fault"
        for cycle in range(fault.cycles):
            if cycle:
                time.sleep(fault.gap)
            began = time.monotonic()
            healed = False
            fault.inject()
            if fault.takes_store_down:
                assert not probe(), f"{fault.name}: {backend} still answers: not in force"
            time.sleep(max(0.0, fault.hold - (time.monotonic() - began)))
            fault.heal()
            healed = True
            deadline = time.monotonic() + 30
            while not probe():
                assert time.monotonic() < deadline, f"{backend} does not answer 30 s after the heal"
                time.sleep(0.02)
            windows.append((began, time.monotonic()))
        time.sleep(after)
    finally:
        if not healed:
            fault.heal()
        stop.touch()
        # every call must end within its timeout + 10%: wait that long, and a little more
        # so that a late call is seen as late (its end time), not just as killed
        deadline = time.monotonic() + timeout * 1.1 + 5
        killed = sum(not child.finish(max(0.1, deadline - time.monotonic())) for child in children)
    run = Run(backend, fault.name, timeout, read_calls(logs), windows, killed_processes=killed)
    read_finals(url, run)
    return run
