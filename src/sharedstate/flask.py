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

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import click
from flask import Flask, current_app, has_app_context
from flask.cli import AppGroup, with_appcontext

from . import cli_show
from .app_extension import AppConfigStore, AppExtension, ExtensionObject, app_store_of
from .declared import (
    DeclaredCounter,
    DeclaredLock,
    check_declared_name,
    resolve_target,
)
from .store import Store

T = TypeVar("T")


class AppStore(AppConfigStore):
    """One Flask app's store, made on first use from the app's config; kept in
    ``app.extensions["sharedstate"]``."""


class AppObject(ExtensionObject[T]):
    """Stands in for a shared object declared on the extension: every call goes to the
    :class:`~sharedstate.SharedObject` of the app in use, made there on first use."""

    __slots__ = ()


class SharedState(AppExtension[Flask, AppStore]):
    """The Flask extension: ``SharedState(app)``, or ``SharedState()`` then ``init_app(app)``.

    Objects, counters and locks declared on it work in every app it is set up with; each
    app keeps its own store.
    """

    app_store_class = AppStore
    object_class = AppObject

    # -- declarations --------------------------------------------------------------------
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
    def _context_app(self) -> Flask | None:
        """``current_app`` inside an app context (a request, a CLI command)."""
        if has_app_context():
            return current_app._get_current_object()  # type: ignore[attr-defined]
        return None


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
    return app_store_of(current_app)


@sharedstate_cli.command("show")
@click.argument("name", required=False)
@with_appcontext
def show_command(name: str | None) -> None:
    """Lists the stored names, or shows the state of NAME."""
    app_store = _current_app_store()
    try:
        cli_show.show(app_store.store, app_store.url, app_store.declared_names(), name, click.echo)
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
