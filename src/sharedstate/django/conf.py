"""The store a Django project uses, read from its settings (at first use, never at import).

================================ ========================================================
``SHAREDSTATE_URL``              store URL; unset: derived from ``DATABASES["default"]``
``SHAREDSTATE_PREFIX``           prefix of every stored name (several projects on one store)
``SHAREDSTATE_CODEC``            ``"json"`` (default) or ``"pickle"`` (needs a secret key)
``SHAREDSTATE_SECRET_KEY``       the key that signs pickled state
``SHAREDSTATE_TIMEOUT``          seconds every call may take (default 10)
================================ ========================================================

Why a default derived from the database: a Django project already runs a database, and
its state should live where its data lives, with no new server to run:

* **PostgreSQL** (``postgresql``, ``postgis``): the same server and database, through
  sharedstate's PostgreSQL backend, in its own tables (``sharedstate_records``,
  ``sharedstate_counters``), never Django's. The URL is built from ``HOST``, ``PORT``,
  ``NAME``, ``USER``, ``PASSWORD`` and the libpq options of ``OPTIONS`` (``sslmode`` ...);
  it is shown only redacted.
* **SQLite**: a file ``sharedstate.db`` beside the project's database file (an in-memory
  database: in ``BASE_DIR``). A separate file, so that a long Django transaction never
  blocks a shared object, nor the other way round.
* **any other engine** (MySQL, Oracle...): sharedstate has no backend for it, so the store
  is ``BASE_DIR / "sharedstate.db"``, a SQLite file, and the system check
  ``sharedstate.W002`` says so: it is shared by the processes of one host only. Without a
  ``BASE_DIR`` setting there is no sensible place for that file: the check reports
  ``sharedstate.E003`` and the first call raises :class:`~sharedstate.ConfigurationError`.

:func:`store_settings` is the one place that reads the settings, so ``state`` and
``astate`` (the async store) always name the same store.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from ..errors import ConfigurationError

DEFAULT_DATABASE = "sharedstate.db"

POSTGRESQL, SQLITE, OTHER = "postgresql", "sqlite", "other"


@dataclass(frozen=True)
class StoreSettings:
    """What the settings ask for: the URL, where it came from, and ``connect()``'s options."""

    url: str
    #: where the URL came from, for messages: "SHAREDSTATE_URL", or how it was derived
    source: str
    prefix: str | None = None
    codec: str | None = None
    secret_key: bytes | str | None = None
    timeout: float | None = None
    #: True when the project's database engine has no sharedstate backend (a SQLite file
    #: in BASE_DIR stands in)
    fallback: bool = False

    def connect_options(self) -> dict[str, Any]:
        return {
            "prefix": self.prefix,
            "codec": self.codec,
            "secret_key": self.secret_key,
            "timeout": self.timeout,
        }


def engine_kind(engine: str) -> str:
    """``postgresql``, ``sqlite`` or ``other``, for a ``DATABASES`` ``ENGINE`` path (GIS
    engines included: they use the same servers)."""
    last = engine.rsplit(".", 1)[-1]
    if last in ("postgresql", "postgresql_psycopg2", "postgis"):
        return POSTGRESQL
    if last in ("sqlite3", "spatialite"):
        return SQLITE
    return OTHER


def postgresql_url(database: dict[str, Any]) -> str:
    """The URL of the PostgreSQL database Django uses: ``postgresql://user:pw@host:port/name``
    with its libpq options (every part quoted; a socket directory as ``HOST`` too)."""
    name = database.get("NAME")
    if not name:
        raise ConfigurationError(
            "DATABASES['default'] names no PostgreSQL database (NAME is empty): set NAME, "
            "or set SHAREDSTATE_URL"
        )
    user = quote(str(database.get("USER") or ""), safe="")
    password = str(database.get("PASSWORD") or "")
    userinfo = f"{user}:{quote(password, safe='')}" if password else user
    host = str(database.get("HOST") or "")
    if host.startswith("/"):
        host = quote(host, safe="")  # a socket directory, as libpq reads it in a URL
    elif ":" in host:
        host = f"[{host}]"  # an IPv6 address
    port = str(database.get("PORT") or "")
    netloc = (f"{userinfo}@" if userinfo else "") + host + (f":{port}" if port else "")
    query = "&".join(
        f"{key}={quote(str(value), safe='')}"
        for key, value in sorted((database.get("OPTIONS") or {}).items())
        if key in _libpq_parameters()
    )
    url = f"postgresql://{netloc}/{quote(str(name), safe='')}"
    return f"{url}?{query}" if query else url


def _libpq_parameters() -> frozenset[str]:
    """The ``OPTIONS`` our PostgreSQL backend passes on to libpq (Django's own, such as
    ``pool`` or ``isolation_level``, are not for it)."""
    try:
        from ..backends.postgres import LIBPQ_PARAMETERS
    except ImportError:  # no psycopg 3: the store itself will say what to install
        return frozenset()
    return LIBPQ_PARAMETERS


def sqlite_url(path: str | os.PathLike[str]) -> str:
    return "sqlite:///" + os.path.abspath(os.fspath(path))  # sqlite:////abs/path.db


def _in_memory(name: Any) -> bool:
    text = os.fspath(name) if isinstance(name, os.PathLike) else str(name or "")
    return not text or text == ":memory:" or (text.startswith("file:") and "mode=memory" in text)


def default_url(databases: dict[str, Any], base_dir: Any) -> tuple[str, str, bool]:
    """(url, source, fallback): the store derived from ``DATABASES["default"]`` (see the
    module docstring); raises ConfigurationError when there is nowhere sensible."""
    database = databases.get("default") or {}
    kind = engine_kind(str(database.get("ENGINE") or ""))
    if kind == POSTGRESQL:
        return postgresql_url(database), "DATABASES['default'] (PostgreSQL)", False
    if kind == SQLITE and not _in_memory(database.get("NAME")):
        directory = os.path.dirname(os.path.abspath(os.fspath(database["NAME"])))
        return (
            sqlite_url(os.path.join(directory, DEFAULT_DATABASE)),
            "beside DATABASES['default'] (SQLite)",
            False,
        )
    if base_dir is None:
        engine = database.get("ENGINE") or "no database"
        raise ConfigurationError(
            f"sharedstate cannot derive a store from DATABASES['default'] ({engine}) and "
            "there is no BASE_DIR setting for a SQLite file: set SHAREDSTATE_URL (e.g. "
            "'redis://host:6379/0', 'postgresql://user@host/db', 'sqlite:////path/state.db')"
        )
    source = "BASE_DIR (SQLite)"
    return sqlite_url(os.path.join(os.fspath(base_dir), DEFAULT_DATABASE)), source, kind != SQLITE


def store_settings(settings: Any = None) -> StoreSettings:
    """Reads the project's settings (``django.conf.settings`` unless given)."""
    if settings is None:
        from django.conf import settings  # type: ignore[no-redef]
    url = getattr(settings, "SHAREDSTATE_URL", None)
    if url:
        source, fallback = "SHAREDSTATE_URL", False
        url = str(url)
    else:
        url, source, fallback = default_url(
            getattr(settings, "DATABASES", {}) or {}, getattr(settings, "BASE_DIR", None)
        )
    return StoreSettings(
        url=url,
        source=source,
        prefix=getattr(settings, "SHAREDSTATE_PREFIX", None),
        codec=getattr(settings, "SHAREDSTATE_CODEC", None),
        secret_key=getattr(settings, "SHAREDSTATE_SECRET_KEY", None),
        timeout=getattr(settings, "SHAREDSTATE_TIMEOUT", None),
        fallback=fallback,
    )


__all__ = ["StoreSettings", "default_url", "engine_kind", "postgresql_url", "store_settings"]
