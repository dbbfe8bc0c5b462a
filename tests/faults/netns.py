"""A network namespace of the test's own, so a server can be cut off by firewall rules.

Why a namespace: a partition must drop packets silently (what a real network does), not
refuse them, and it must not touch the machine's own network or its services. The server
runs inside a namespace reached through a veth pair with link-local addresses
(169.254.X.Y/30); ``iptables -j DROP`` inside the namespace partitions it, deleting the
rules heals it. The host side gets an ``unreachable`` route for the /30 (a higher metric
than the link's own route), so that when the link is down nothing for that subnet leaks
to the default route. Nothing here addresses anything but the namespace's own /30.

Needs root, ``ip netns`` and ``iptables``; :func:`require_netns` skips otherwise (and
fails under ``CI=true``, where the partition tests must run).
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import secrets
import shutil
import subprocess

import pytest

IPTABLES_RULES = (("INPUT", "-j", "DROP"), ("OUTPUT", "-j", "DROP"))


def _run(*command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, check=check, capture_output=True, text=True, timeout=30)


def unavailable(reason: str) -> None:
    """Skips on a developer's machine; fails under CI, where the partitions must run."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI must run the partition tests, but: {reason}", pytrace=False)
    pytest.skip(reason)


def require_netns() -> None:
    """Skips (fails under CI) unless namespaces and firewall rules can be made here."""
    if os.geteuid() != 0:
        unavailable("partition tests need root (ip netns, iptables)")
    if shutil.which("ip") is None:
        unavailable("partition tests need `ip` (iproute2)")
    if shutil.which("iptables") is None and not os.path.exists("/usr/sbin/iptables"):
        unavailable("partition tests need iptables (apt-get install iptables)")
    probe = f"ssprobe{secrets.token_hex(3)}"
    made = _run("ip", "netns", "add", probe, check=False)
    if made.returncode != 0:
        unavailable(f"`ip netns add` does not work here: {made.stderr.strip()}")
    try:
        rule = _run("ip", "netns", "exec", probe, "iptables", "-w", "-L", "-n", check=False)
        if rule.returncode != 0:
            unavailable(f"iptables does not work in a namespace: {rule.stderr.strip()}")
    finally:
        _run("ip", "netns", "del", probe, check=False)


def _used_networks() -> list[ipaddress.IPv4Network]:
    out = _run("ip", "-4", "-o", "addr", "show").stdout
    nets = [ipaddress.ip_interface(line.split()[3]).network for line in out.splitlines()]
    routes = _run("ip", "-4", "route", "show", "table", "all").stdout
    for line in routes.splitlines():
        words = line.split()
        target = words[1] if words and words[0] in {"unreachable", "local", "broadcast"} else words[0]
        with contextlib.suppress(ValueError, IndexError):
            if target != "default":
                nets.append(ipaddress.ip_network(target, strict=False))
    return nets


class Namespace:
    """``ip netns`` + a veth pair + a /30 of 169.254.0.0/16; removed by :meth:`remove`."""

    def __init__(self) -> None:
        tag = secrets.token_hex(3)
        self.name = f"ssfault-{tag}"
        self.host_if, self.ns_if = f"ssf{tag}h", f"ssf{tag}n"  # at most 15 characters
        used = _used_networks()
        for _ in range(200):
            third, fourth = 100 + secrets.randbelow(100), 4 * secrets.randbelow(64)
            net = ipaddress.ip_network(f"169.254.{third}.{fourth}/30")
            if not any(net.overlaps(other) for other in used):
                break
        else:  # pragma: no cover - 200 tries on a machine using most of 169.254/16
            raise RuntimeError("no free /30 in 169.254.100.0-169.254.199.255")
        self.network = net
        self.host_ip, self.ns_ip = str(net[1]), str(net[2])
        self.partitioned = False
        self.made: list[str] = []

    def create(self) -> Namespace:
        try:
            _run("ip", "netns", "add", self.name)
            self.made.append("netns")
            _run("ip", "link", "add", self.host_if, "type", "veth", "peer", "name", self.ns_if)
            self.made.append("veth")
            _run("ip", "link", "set", self.ns_if, "netns", self.name)
            _run("ip", "addr", "add", f"{self.host_ip}/30", "dev", self.host_if)
            _run("ip", "link", "set", self.host_if, "up")
            self.exec("ip", "addr", "add", f"{self.ns_ip}/30", "dev", self.ns_if)
            self.exec("ip", "link", "set", self.ns_if, "up")
            self.exec("ip", "link", "set", "lo", "up")
            _run("ip", "route", "add", "unreachable", str(self.network), "metric", "4000")
            self.made.append("route")
        except subprocess.CalledProcessError as exc:
            self.remove()
            raise RuntimeError(f"cannot set up namespace {self.name}: {exc.stderr}") from exc
        return self

    def prefix(self) -> list[str]:
        """The command prefix that runs a program inside the namespace."""
        return ["ip", "netns", "exec", self.name]

    def exec(self, *command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return _run(*self.prefix(), *command, check=check)

    def partition(self) -> None:
        """Drops every packet in and out of the namespace: the server sees nothing, the
        clients' packets vanish (no reset, no refusal), as in a real network partition."""
        for chain, *rule in IPTABLES_RULES:
            self.exec("iptables", "-w", "-A", chain, *rule)
        self.partitioned = True

    def heal(self) -> None:
        for chain, *rule in IPTABLES_RULES:
            self.exec("iptables", "-w", "-D", chain, *rule, check=False)
        self.partitioned = False

    def set_link(self, up: bool) -> None:
        """The host end of the veth up or down (down: the unreachable route takes over)."""
        _run("ip", "link", "set", self.host_if, "up" if up else "down")

    def route_to_namespace(self) -> subprocess.CompletedProcess[str]:
        return _run("ip", "route", "get", self.ns_ip, check=False)

    def rules(self) -> str:
        return self.exec("iptables", "-w", "-S", check=False).stdout

    def pids(self) -> list[int]:
        out = _run("ip", "netns", "pids", self.name, check=False).stdout
        return [int(p) for p in out.split() if p.isdigit()]

    def remove(self) -> None:
        """Undoes everything :meth:`create` made; safe to call twice, and after a failure."""
        if "netns" in self.made:
            self.heal()
            for pid in self.pids():  # only our servers run in here
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, 9)
        if "route" in self.made:
            _run("ip", "route", "del", "unreachable", str(self.network), "metric", "4000", check=False)
        if "veth" in self.made:
            _run("ip", "link", "del", self.host_if, check=False)  # also deletes its peer
        if "netns" in self.made:
            _run("ip", "netns", "del", self.name, check=False)
        self.made.clear()

    def exists(self) -> bool:
        return self.name in _run("ip", "netns", "list", check=False).stdout
