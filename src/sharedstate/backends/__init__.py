"""Backends, one module per URL scheme, all behind :class:`~.base.Backend`.

A backend module is imported only when its scheme is used, so the optional driver it
needs (redis-py, psycopg, pymemcache) is only required by those who use it.
"""

from __future__ import annotations

import importlib
import re
from urllib.parse import parse_qsl, urlsplit

from ..errors import InvalidURLError
from .base import Backend, Record, redact_url

#: URL scheme -> (module, class, pip extra that provides its driver)
SCHEMES: dict[str, tuple[str, str, str | None]] = {
    "memory": ("memory", "MemoryBackend", None),
    "sqlite": ("sqlite", "SQLiteBackend", None),
    "redis": ("redis", "RedisBackend", "redis"),
    "rediss": ("redis", "RedisBackend", "redis"),
    "postgresql": ("postgres", "PostgresBackend", "postgresql"),
    "postgres": ("postgres", "PostgresBackend", "postgresql"),
    "memcached": ("memcached", "MemcachedBackend", "memcached"),
    "manager": ("manager", "ManagerBackend", None),
}


def split_url(url: str) -> tuple[str, dict[str, str]]:
    """The scheme and the query parameters of a store URL, with clear errors."""
    if not isinstance(url, str) or "://" not in url:
        raise InvalidURLError(
            f"not a store URL: {_mask(url)!r}; expected e.g. 'sqlite:///state.db', 'memory://', "
            "'redis://localhost:6379/0'"
        )
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise InvalidURLError(
            f"unknown store URL scheme {scheme!r} in {redact_url(url)}; "
            f"known: {', '.join(sorted(SCHEMES))}"
        )
    try:
        pairs = parse_qsl(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
    except ValueError as exc:
        raise InvalidURLError(f"malformed query string in {redact_url(url)}: {exc}") from None
    options: dict[str, str] = {}
    for key, value in pairs:
        if key in options:
            raise InvalidURLError(f"query parameter {key!r} given twice in {redact_url(url)}")
        options[key] = value
    return scheme, options


def _mask(text: object) -> object:
    """A string that is not a URL, with what may be a password (``:secret@``) hidden."""
    return re.sub(r":[^:@/]*@", ":***@", text) if isinstance(text, str) else text


def open_backend(url: str, options: dict[str, str], timeout: float) -> Backend:
    """The backend for ``url`` (nothing is connected yet: connections open lazily).

    ``options`` are the backend's own query parameters; ``timeout`` is the store's call
    deadline, which a backend also uses as the longest any one request may wait."""
    scheme, _ = split_url(url)
    module_name, class_name, extra = SCHEMES[scheme]
    try:
        module = importlib.import_module(f"{__name__}.{module_name}")
    except ImportError as exc:
        hint = f"pip install 'sharedstate[{extra}]'" if extra else "reinstall sharedstate"
        raise InvalidURLError(
            f"{scheme}:// needs a driver that is not installed ({exc.name}): {hint}"
        ) from exc
    backend_class: type[Backend] = getattr(module, class_name)
    return backend_class(url, options, timeout)


__all__ = ["Backend", "Record", "SCHEMES", "open_backend", "redact_url", "split_url"]
