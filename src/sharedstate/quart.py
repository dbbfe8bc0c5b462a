"""The Quart extension: the Flask extension's twin on sharedstate's async API.

    from sharedstate.quart import SharedState

    app = Quart(__name__)
    state = SharedState(app)                              # or SharedState(), then init_app
    global_obj = state.object("global_obj", SomeObj, 0)  # was: global_obj = SomeObj(0)

    @app.route("/")
    async def home():
        return str(await global_obj.query())             # was: global_obj.query()

Why it is built this way:

* **The same as** :mod:`sharedstate.flask` **wherever Quart allows.** Quart is Flask's API
  on asyncio, and its users expect the same extension: ``SHAREDSTATE_URL`` and the other
  keys in ``app.config`` (read when the app first uses its store), the default SQLite file
  in the instance folder, ``init_app`` for app factories, one store per app, never per
  process, and declarations at import time that find their app per call (``current_app``,
  or the one app the extension was set up with). The stand-ins are
  :mod:`sharedstate.declared`'s, so they behave as Flask's and Django's do.
* **Awaited, never blocking.** Each app's store is a :func:`sharedstate.connect_async`
  store, so every store round trip is awaited and the event loop serves other requests
  meanwhile. The user's class stays plain, with synchronous methods: only the call is
  awaited (``await global_obj.query()``, ``await global_obj.param``).
* **Closed with the server.** The app's store is closed in ``after_serving``; a store is
  per event loop and per process, so it reopens by itself wherever it is used next.
* **Commands on a synchronous store.** ``quart sharedstate show/reset`` are one-shot
  commands: they open the app's store synchronously, print with the Flask commands' words
  (:mod:`sharedstate.cli_show`) and close it.

Configuration: the ``SHAREDSTATE_*`` keys of :mod:`sharedstate.flask`, with the same
meanings and defaults.

Commands: ``quart sharedstate show [NAME]`` and ``quart sharedstate reset NAME``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import click
from quart import Quart, current_app, has_app_context
from quart.cli import AppGroup, ScriptInfo, pass_script_info

from . import cli_show
from .aio import AsyncStore
from .app_extension import AppConfigStore, AppExtension, ExtensionObject, app_store_of
from .declared import (
    AsyncStoreHolder,
    DeclaredAsyncCounter,
    DeclaredAsyncLock,
    check_declared_name,
    resolve_target,
)
from .store import connect

T = TypeVar("T")


class AppStore(AsyncStoreHolder, AppConfigStore):
    """One app's async store, made on first use from the app's config; kept in
    ``app.extensions["sharedstate"]``. What it resolves (objects, counters, locks) are the
    async store's, whose calls are awaited."""

    def close(self) -> None:
        raise TypeError("an async store is closed with `await app_store.aclose()`")


class AppObject(ExtensionObject[T]):
    """Stands in for a shared object declared on the extension: each method call returns
    the awaitable of the app in use's async object (``await global_obj.query()``), and so
    does each attribute (``await global_obj.param``)."""

    __slots__ = ()


class SharedState(AppExtension[Quart, AppStore]):
    """The Quart extension: ``SharedState(app)``, or ``SharedState()`` then ``init_app(app)``.

    Objects, counters and locks declared on it work in every app it is set up with; each
    app keeps its own store, closed after serving.
    """

    app_store_class = AppStore
    object_class = AppObject
    context_hint = "`async with app.app_context():`"

    def _store_made(self, app: Quart, app_store: AppStore) -> None:
        app.after_serving(app_store.aclose)

    # -- declarations --------------------------------------------------------------------
    def counter(self, name: str) -> AppCounter:
        """The shared integer counter ``name``, resolved in the app in use."""
        check_declared_name(name)
        return AppCounter(self, name)

    def lock(self, name: str, ttl: float = 10.0, timeout: float | None = None) -> AppLock:
        """A leased, fenced lock ``name``: ``async with state_lock as lease:``."""
        check_declared_name(name)
        return AppLock(self, name, ttl, timeout)

    @asynccontextmanager
    async def transaction(self, target: str | Any, ttl: float = 30.0) -> AsyncIterator[Any]:
        """Several calls on one object as one atomic step: ``async with
        state.transaction(global_obj) as obj: obj.query(); obj.query()`` (the calls inside
        are plain, on the object's state; it is stored when the block ends)."""
        app_store = self._app_store()
        target = resolve_target(app_store, target, self._declared)
        async with app_store.store.transaction(target, ttl=ttl) as instance:
            yield instance

    @property
    def store(self) -> AsyncStore:
        """The async store of the app in use."""
        return self._app_store().store

    # -- resolution ----------------------------------------------------------------------
    def _context_app(self) -> Quart | None:
        """``current_app`` inside an app context (every request, every
        ``add_background_task``)."""
        if has_app_context():
            return current_app._get_current_object()  # type: ignore[attr-defined]
        return None


class AppCounter(DeclaredAsyncCounter):
    """A shared counter declared on the extension, resolved in the app in use; awaited."""

    def __init__(self, extension: SharedState, name: str) -> None:
        super().__init__(extension._app_store, name)


class AppLock(DeclaredAsyncLock):
    """A leased, fenced lock declared on the extension: ``async with state_lock as lease:``
    in a view (``lease.token`` is the fencing token). One async Lock per app, name and
    settings, as the Flask extension keeps one Lock."""

    def __init__(
        self, extension: SharedState, name: str, ttl: float, timeout: float | None
    ) -> None:
        super().__init__(extension._app_store, name, ttl, timeout)


# -- `quart sharedstate ...` ----------------------------------------------------------------
sharedstate_cli = AppGroup("sharedstate", help="Show or reset the app's shared state.")


def _app_store(info: ScriptInfo) -> AppStore:
    return app_store_of(info.load_app())


@sharedstate_cli.command("show")
@click.argument("name", required=False)
@pass_script_info
def show_command(info: ScriptInfo, name: str | None) -> None:
    """Lists the stored names, or shows the state of NAME."""
    app_store = _app_store(info)
    with connect(app_store.url, **app_store.connect_options()) as store:
        try:
            cli_show.show(store, app_store.url, app_store.declared_names(), name, click.echo)
        except cli_show.CommandFailed as exc:
            raise click.ClickException(str(exc)) from None


@sharedstate_cli.command("reset")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_script_info
def reset_command(info: ScriptInfo, name: str, yes: bool) -> None:
    """Forgets object or counter NAME: an object's factory runs again on next use."""
    app_store = _app_store(info)
    if not yes:
        click.confirm(cli_show.reset_question(app_store.url, name), abort=True)
    with connect(app_store.url, **app_store.connect_options()) as store:
        try:
            cli_show.reset(store, app_store.url, name, click.echo)
        except cli_show.CommandFailed as exc:
            raise click.ClickException(str(exc)) from None


__all__ = ["AppCounter", "AppLock", "AppObject", "SharedState", "sharedstate_cli"]
