"""``sharedstate serve manager://HOST:PORT?authkey=SECRET``: the server of ``manager://`` stores.

Only ``manager://`` has a server of ours; Redis, PostgreSQL and memcached run their own, so
any other URL is refused with a message that says so.

Why loopback unless asked: anyone who can reach the server and holds the authkey makes it
unpickle what they send, and the channel is not encrypted (records' bytes travel in
clear). ``0.0.0.0`` or a public address puts that on the network, so it takes an explicit
``--allow-remote``, and even then the command says loudly what it exposes.
"""

from __future__ import annotations

import ipaddress
import signal
import socket
from typing import Any

import click

from .backends.base import redact_url
from .backends.manager import EXPOSED, Registry, RegistryManager, parse_manager_url
from .errors import InvalidURLError


def serve(url: str) -> None:
    """Runs the server for ``url`` until SIGTERM or Ctrl-C."""
    host, port, authkey = parse_manager_url(url)
    registry = Registry()
    RegistryManager.register("registry", callable=lambda: registry, exposed=EXPOSED)
    manager = RegistryManager(address=(host, port), authkey=authkey)
    server = manager.get_server()
    _no_delay(server)

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    click.echo(f"sharedstate: serving {redact_url(url)} (memory only; Ctrl-C to stop)", err=True)
    server.serve_forever()


def _no_delay(server: Any) -> None:
    """Sets TCP_NODELAY on the listening socket, which the connections it accepts inherit
    (Linux and the BSDs): ``multiprocessing`` sends a reply of more than 16 KB as two
    writes, and with Nagle's algorithm the second waited for the client's delayed ACK,
    about 40 ms a read of a large record."""
    sock = getattr(getattr(getattr(server, "listener", None), "_listener", None), "_socket", None)
    if isinstance(sock, socket.socket) and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def is_loopback(host: str) -> bool:
    """True when ``host`` is only reachable from this machine: a loopback address, or a
    name all of whose addresses are loopback (``localhost``)."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        found = socket.getaddrinfo(host, None)
    except OSError:
        return False
    addresses = {info[4][0] for info in found}
    return bool(addresses) and all(ipaddress.ip_address(a).is_loopback for a in addresses)


@click.command("serve")
@click.argument("url")
@click.option(
    "--allow-remote",
    is_flag=True,
    help="Listen on an address other hosts can reach (e.g. 0.0.0.0); refused without it.",
)
def serve_command(url: str, allow_remote: bool) -> None:
    """Run the server for a manager:// store URL (the clients use the same URL).

    It listens on loopback only unless --allow-remote is given.
    """
    scheme = url.partition("://")[0].lower() if "://" in url else ""
    if scheme != "manager":
        kind = f"a {scheme}:// URL" if scheme else "not a store URL"
        raise click.UsageError(
            f"`sharedstate serve` runs the server of manager:// stores only, and "
            f"{redact_url(url) if scheme else repr(url)} is {kind}; Redis, PostgreSQL and "
            "memcached run their own servers. Example: "
            "sharedstate serve 'manager://127.0.0.1:50000?authkey=<a long random secret>'"
        )
    try:
        host, port, _ = parse_manager_url(url)
    except InvalidURLError as exc:
        raise click.UsageError(str(exc)) from None
    if not is_loopback(host):
        where = "every interface" if host in ("0.0.0.0", "::") else host
        if not allow_remote:
            raise click.UsageError(
                f"{redact_url(url)} would listen on {where}, reachable from other hosts: anyone "
                "there holding the authkey can make this server unpickle what they send, and "
                "the traffic is not encrypted. Use manager://127.0.0.1:PORT, or pass "
                "--allow-remote on a private network you trust"
            )
        click.secho(
            f"WARNING: serving on {where} (port {port}), reachable from other hosts: anyone "
            "there holding the authkey can make this server run code, and the traffic is not "
            "encrypted. Keep it on a private network, behind a firewall.",
            err=True,
            fg="red",
            bold=True,
        )
    try:
        serve(url)
    except InvalidURLError as exc:
        raise click.UsageError(str(exc)) from None
    except OSError as exc:
        raise click.ClickException(f"cannot serve {redact_url(url)}: {exc}") from None


__all__ = ["is_loopback", "serve", "serve_command"]
