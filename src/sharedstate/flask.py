"""The Flask extension: a module global made one shared, atomic object, in two lines.

    from sharedstate.flask import SharedState

    app = Flask(__name__)
    state = SharedState(app)                              # or SharedState(), then init_app
    global_obj = state.object("global_obj", SomeObj, 0)  # was: global_obj = SomeObj(0)

Why it is built this way:

* **Declared at import time, resolved at call time.** ``state.object(...)`` runs when the
  module is imported: before the app is configured (app factories), before gunicorn forks
  its workers. So it returns a stand-in (:class:`AppObject`) that opens nothing; each call
  finds the app in use (``current_app``, or the one app the extension was set up with) and
  that app's store, then calls the :class:`~sharedstate.SharedObject` made there.
* **One store per app, never per process.** The store lives in
  ``app.extensions["sharedstate"]``; there is no module-level store, so two apps with
  different ``SHAREDSTATE_URL`` never share state, even when they share one extension.
* **Per-process connections.** The store is made on first use and its connections open
  lazily in each process (and again after ``fork``), so a store touched in gunicorn's master
  (``--preload``) is still safe in every worker: a connection inherited through ``fork`` and
  used by two processes mixes their messages.

Configuration (read when the app first uses its store, so it may be set after ``init_app``):

================================ ========================================================
``SHAREDSTATE_URL``              store URL; default ``sqlite:///<instance_path>/sharedstate.db``
``SHAREDSTATE_PREFIX``           prefix of every stored name (several apps on one store)
``SHAREDSTATE_CODEC``            ``"json"`` (default) or ``"pickle"`` (needs a secret key)
``SHAREDSTATE_SECRET_KEY``       the key that signs pickled state
``SHAREDSTATE_TIMEOUT``          seconds to wait for a busy store (default 10)
================================ ========================================================

Commands: ``flask sharedstate show [NAME]`` and ``flask sharedstate reset NAME``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import click
from flask import Flask, current_app, has_app_context
from flask.cli import AppGroup, with_appcontext

from . import cli_show
from .backends import split_url
from .bounded import trim
from .declared import (
    DeclaredCounter,
    DeclaredLock,
    DeclaredObject,
    StoreHolder,
    check_declared_name,
    resolve_target,
)
from .errors import ConfigurationError
from .shapes import shape_of
from .store import Store

T = TypeVar("T")

EXTENSION_KEY = "sharedstate"
DEFAULT_DATABASE = "sharedstate.db"


class AppStore(StoreHolder):
    """One app's store, made on first use from the app's config; kept in
    ``app.extensions["sharedstate"]``."""

    def __init__(self, app: Flask) -> None:
        super().__init__()
        self.app = app
        #: every extension set up on this app (their declarations, for ``flask sharedstate show``)
        self.extensions: list[SharedState] = []

    @property
    def url(self) -> str:
        """The configured URL, or the default SQLite file in the app's instance folder."""
        url = self.app.config.get("SHAREDSTATE_URL")
        if url:
            return str(url)
        path = os.path.join(self.app.instance_path, DEFAULT_DATABASE)
        return "sqlite:///" + path  # instance_path is absolute: sqlite:////abs/path.db

    def connect_options(self) -> dict[str, Any]:
        config = self.app.config
        return {
            "prefix": config.get("SHAREDSTATE_PREFIX"),
            "codec": config.get("SHAREDSTATE_CODEC"),
            "secret_key": config.get("SHAREDSTATE_SECRET_KEY"),
            "timeout": config.get("SHAREDSTATE_TIMEOUT"),
        }


class SharedState:
    """The Flask extension: ``SharedState(app)``, or ``SharedState()`` then ``init_app(app)``.

    Objects, counters and locks declared on it work in every app it is set up with; each
    app keeps its own store.
    """

    def __init__(self, app: Flask | None = None) -> None:
        self._apps: list[Flask] = []
        self._declared: dict[str, AppObject[Any]] = {}
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Sets the app up: config defaults, its store (made on first use), the commands."""
        app.config.setdefault("SHAREDSTATE_URL", None)
        app.config.setdefault("SHAREDSTATE_PREFIX", None)
        app.config.setdefault("SHAREDSTATE_CODEC", None)
        app.config.setdefault("SHAREDSTATE_SECRET_KEY", None)
        app.config.setdefault("SHAREDSTATE_TIMEOUT", None)
        if app.config["SHAREDSTATE_URL"]:
            split_url(app.config["SHAREDSTATE_URL"])  # a bad URL fails here, not mid-request
        app_store = app.extensions.get(EXTENSION_KEY)
        if app_store is None:
            app_store = app.extensions[EXTENSION_KEY] = AppStore(app)
        if self not in app_store.extensions:
            app_store.extensions.append(self)
        if app not in self._apps:
            self._apps.append(app)

    # -- declarations --------------------------------------------------------------------
    def object(self, name: str, cls: type[T], *args: Any, **kwargs: Any) -> T:
        """The shared object ``name`` of class ``cls`` (``cls(*args, **kwargs)`` makes its
        first state, only when none is stored). Safe at import time: nothing opens until
        the first call, in the app then in use."""
        if not isinstance(cls, type):
            raise TypeError(f"state.object({name!r}, ...) needs a class, got {cls!r}")
        check_declared_name(name)
        shape_of(cls)  # a class whose state cannot be kept is refused here, at declaration
        declared: AppObject[Any] = AppObject(self, name, cls, args, kwargs)
        self._declared.pop(name, None)
        self._declared[name] = declared
        trim(self._declared)
        return declared  # type: ignore[return-value]

    def counter(self, name: str) -> AppCounter:
        """The shared integer counter ``name``, resolved in the app in use."""
        check_declared_name(name)
        return AppCounter(self, name)

    def lock(self, name: str, ttl: float = 10.0, timeout: float | None = None) -> AppLock:
        """A leased, fenced lock ``name`` (see :meth:`sharedstate.Store.lock`)."""
        return AppLock(self, name, ttl, timeout)

    @contextmanager
    def transaction(self, target: str | Any, ttl: float = 30.0) -> Iterator[Any]:
        """Several calls on one object as one atomic step (see
        :meth:`sharedstate.Store.transaction`); takes the object or its name."""
        app_store = self._app_store()
        target = resolve_target(app_store, target, self._declared)
        with app_store.store.transaction(target, ttl=ttl) as instance:
            yield instance

    @property
    def store(self) -> Store:
        """The store of the app in use."""
        return self._app_store().store

    # -- resolution ----------------------------------------------------------------------
    def _app(self) -> Flask:
        """The app in use: ``current_app`` inside an app context, otherwise the one app this
        extension was set up with (a script, a background thread)."""
        if has_app_context():
            app = current_app._get_current_object()  # type: ignore[attr-defined]
            if app in self._apps:
                return app
            raise ConfigurationError(
                f"the app {app.name!r} is not set up with this SharedState: call "
                "state.init_app(app) (or SharedState(app)) when you create the app"
            )
        if len(self._apps) == 1:
            return self._apps[0]
        if not self._apps:
            raise ConfigurationError(
                "this SharedState is not set up with an app yet: call state.init_app(app) "
                "(or SharedState(app)) before the first call on a shared object"
            )
        raise ConfigurationError(
            "this SharedState is set up with several apps and no app context is active: "
            "call it inside `with app.app_context():` so it knows which app's store to use"
        )

    def _app_store(self) -> AppStore:
        return self._app().extensions[EXTENSION_KEY]


class AppObject(DeclaredObject[T]):
    """Stands in for a shared object declared on the extension: every call goes to the
    :class:`~sharedstate.SharedObject` of the app in use, made there on first use."""

    __slots__ = ()

    def __init__(
        self,
        extension: SharedState,
        name: str,
        cls: type[T],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> None:
        super().__init__(extension._app_store, name, cls, args, kwargs)


class AppCounter(DeclaredCounter):
    """A shared counter declared on the extension, resolved in the app in use."""

    def __init__(self, extension: SharedState, name: str) -> None:
        super().__init__(extension._app_store, name)


class AppLock(DeclaredLock):
    """A leased lock declared on the extension; ``with state_lock as lease:`` in a view."""

    def __init__(
        self, extension: SharedState, name: str, ttl: float, timeout: float | None
    ) -> None:
        super().__init__(extension._app_store, name, ttl, timeout)


# -- `flask sharedstate ...` ----------------------------------------------------------------
sharedstate_cli = AppGroup("sharedstate", help="Show or reset the app's shared state.")


def _current_app_store() -> AppStore:
    app_store = current_app.extensions.get(EXTENSION_KEY)
    if app_store is None:
        raise click.ClickException(
            f"the app {current_app.name!r} does not use sharedstate: set it up with "
            "SharedState(app) or state.init_app(app)"
        )
    return app_store


def _declared_names(app_store: AppStore) -> dict[str, str]:
    declared: dict[str, str] = {}
    for extension in app_store.extensions:
        for name, obj in extension._declared.items():
            declared[name] = object.__getattribute__(obj, "_cls").__qualname__
    return declared


@sharedstate_cli.command("show")
@click.argument("name", required=False)
@with_appcontext
def show_command(name: str | None) -> None:
    """Lists the stored names, or shows the state of NAME."""
    app_store = _current_app_store()
    try:
        cli_show.show(app_store.store, app_store.url, _declared_names(app_store), name, click.echo)
    except cli_show.CommandFailed as exc:
        raise click.ClickException(str(exc)) from None


@sharedstate_cli.command("reset")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@with_appcontext
def reset_command(name: str, yes: bool) -> None:
    """Forgets object or counter NAME: an object's factory runs again on next use."""
    app_store = _current_app_store()
    if not yes:
        click.confirm(cli_show.reset_question(app_store.url, name), abort=True)
    try:
        cli_show.reset(app_store.store, app_store.url, name, click.echo)
    except cli_show.CommandFailed as exc:
        raise click.ClickException(str(exc)) from None


__all__ = ["AppCounter", "AppLock", "AppObject", "SharedState", "sharedstate_cli"]
