"""System checks of the sharedstate store (``manage.py check``, ``check --deploy``, and the
checks Django runs before ``runserver`` or ``migrate``).

They read the settings and build the store object, which parses the URL, loads its driver
and validates every option, but never connect: a check must not wait for a server or
create files.

============== ===========================================================================
``E001``       the store configuration is wrong: bad URL, unknown option, missing driver,
               pickle without a secret key...
``E002``       ``memory://``: it keeps state inside one process, so every worker process
               (gunicorn ``-w``, uWSGI, ``runserver``'s reloader child) has its own copy,
               which is the bug sharedstate exists to fix
``E003``       no ``SHAREDSTATE_URL``, and nothing to derive a store from: the database engine
               has no sharedstate backend and there is no ``BASE_DIR`` setting
``W001``       a SQLite store (shared by the processes of one host only) while the settings
               suggest the project runs on several hosts
``W002``       the database engine (MySQL, Oracle...) has no sharedstate backend: the store
               is a SQLite file in ``BASE_DIR``, one host only
============== ===========================================================================

**The "several hosts" heuristic of W001.** A SQLite file cannot be shared between machines,
and nothing in the settings says how many machines run the project. What does hint at it is
infrastructure reached over the network: a database in ``DATABASES``, or a Redis or
memcached cache in ``CACHES``, on a host other than this one (not ``localhost``, not a
loopback address, not a Unix socket). A project that keeps its data on another machine is
usually one that runs, or will run, on more than one. ``ALLOWED_HOSTS`` is no such hint (it
lists the names the site answers to; one machine often answers to several), nor is
``DEBUG``. Silence the warning with ``SILENCED_SYSTEM_CHECKS = ["sharedstate.W001"]`` when
the project runs on one host.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from django.core.checks import CheckMessage, Error, Warning, register

from ..backends import redact_url
from ..errors import ConfigurationError, SharedStateError
from .conf import engine_kind, store_settings

TAG = "sharedstate"

NETWORK_CACHES = ("redis", "memcached", "memcache", "pylibmc")


@register(TAG)
def check_store(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """The store the settings name, checked without connecting."""
    from django.conf import settings

    try:
        configured = store_settings(settings)
    except ConfigurationError as exc:
        return [
            Error(
                str(exc),
                hint="set SHAREDSTATE_URL, or BASE_DIR for a SQLite file beside the project",
                id="sharedstate.E003",
            )
        ]
    shown = redact_url(configured.url)
    try:
        _build_store(configured.url, configured.connect_options())
    except (SharedStateError, ValueError, TypeError) as exc:
        return [
            Error(
                f"the sharedstate store {shown} ({configured.source}) cannot be used: {exc}",
                hint="see the README's table of store URLs and their options",
                id="sharedstate.E001",
            )
        ]
    scheme = configured.url.split("://", 1)[0].lower()
    messages: list[CheckMessage] = []
    if scheme == "memory":
        messages.append(
            Error(
                f"SHAREDSTATE_URL is {shown}: it keeps shared state inside one process, so "
                "every worker process of the server has its own copy",
                hint="use a store every process reaches: 'sqlite:////path/state.db' (one "
                "host), 'redis://host:6379/0' or 'postgresql://user@host/db' (several hosts), "
                "or leave SHAREDSTATE_URL unset for one derived from DATABASES",
                id="sharedstate.E002",
            )
        )
    if configured.fallback:
        engine = (settings.DATABASES.get("default") or {}).get("ENGINE")
        messages.append(
            Warning(
                f"sharedstate has no backend for the database engine {engine!r}: the store "
                f"is the SQLite file {shown}, shared only by the processes of this host",
                hint="if the project runs on several hosts, set SHAREDSTATE_URL to a server "
                "they all reach ('redis://host:6379/0', 'postgresql://user@host/db')",
                id="sharedstate.W002",
            )
        )
    if scheme == "sqlite":
        hints = several_hosts_hints(settings)
        if hints:
            messages.append(
                Warning(
                    f"the sharedstate store is the SQLite file {shown}, shared only by the "
                    f"processes of one host, while the settings suggest several hosts: "
                    f"{'; '.join(hints)}",
                    hint="set SHAREDSTATE_URL to a server every host reaches, or silence "
                    "sharedstate.W001 if the project runs on one host",
                    id="sharedstate.W001",
                )
            )
    return messages


def _build_store(url: str, options: dict[str, Any]) -> None:
    """Makes the store object, which validates everything but connects nothing."""
    from ..store import Store

    Store(url, **options)


def several_hosts_hints(settings: Any) -> list[str]:
    """What in the settings suggests the project runs on several hosts (see the module
    docstring): databases and network caches on another host."""
    hints = []
    for alias, database in (getattr(settings, "DATABASES", None) or {}).items():
        host = str(database.get("HOST") or "")
        if engine_kind(str(database.get("ENGINE") or "")) != "sqlite" and remote(host):
            hints.append(f"DATABASES[{alias!r}] is on host {host!r}")
    for alias, cache in (getattr(settings, "CACHES", None) or {}).items():
        backend = str(cache.get("BACKEND") or "").lower()
        if "locmem" in backend or not any(kind in backend for kind in NETWORK_CACHES):
            continue
        for location in _locations(cache.get("LOCATION")):
            host = _host_of(location)
            if remote(host):
                hints.append(f"CACHES[{alias!r}] is on host {host!r}")
                break
    return hints


def remote(host: str) -> bool:
    """Whether ``host`` names another machine (not empty, local, loopback or a socket)."""
    host = host.strip().strip("[]")
    if not host or host.startswith("/") or host.lower() in ("localhost", "localhost.localdomain"):
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True  # a host name: another machine, as far as the settings tell


def _locations(location: Any) -> Iterable[str]:
    if isinstance(location, str):
        return [part.strip() for part in location.split(";" if ";" in location else ",")]
    if isinstance(location, (list, tuple)):
        return [str(part) for part in location]
    return []


def _host_of(location: str) -> str:
    """The host of a cache LOCATION (``redis://h:6379/0``, ``h:11211``, ``unix:/path``);
    never its credentials."""
    if "://" in location:
        return urlsplit(location).hostname or ""
    if location.startswith(("unix:", "/")):
        return ""
    host, _, _port = location.rpartition(":") if location.count(":") == 1 else (location, "", "")
    return host


__all__ = ["check_store", "remote", "several_hosts_hints"]
