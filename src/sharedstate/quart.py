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

Configuration, as for Flask:

================================ ========================================================
``SHAREDSTATE_URL``              store URL; default ``sqlite:///<instance_path>/sharedstate.db``
``SHAREDSTATE_PREFIX``           prefix of every stored name (several apps on one store)
``SHAREDSTATE_CODEC``            ``"json"`` (default) or ``"pickle"`` (needs a secret key)
``SHAREDSTATE_SECRET_KEY``       the key that signs pickled state
``SHAREDSTATE_TIMEOUT``          seconds to wait for a busy store (default 10)
================================ ========================================================

Commands: ``quart sharedstate show [NAME]`` and ``quart sharedstate reset NAME``.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import click
from quart import Quart, current_app, has_app_context
from quart.cli import AppGroup, ScriptInfo, pass_script_info

from . import cli_show
from .aio import AsyncStore, connect_async
from .backends import split_url
from .bounded import trim
from .declared import (
    DeclaredObject,
    StoreHolder,
    check_declared_name,
    resolve_target,
)
from .errors import ConfigurationError
from .shapes import shape_of
from .store import connect

T = TypeVar("T")

EXTENSION_KEY = "sharedstate"
DEFAULT_DATABASE = "sharedstate.db"
CONFIG_KEYS = (
    "SHAREDSTATE_URL",
    "SHAREDSTATE_PREFIX",
    "SHAREDSTATE_CODEC",
    "SHAREDSTATE_SECRET_KEY",
    "SHAREDSTATE_TIMEOUT",
)


class AppStore(StoreHolder):
    """One app's async store, made on first use from the app's config; kept in
    ``app.extensions["sharedstate"]``. What it resolves (objects, counters, locks) are the
    async store's, whose calls are awaited."""

    def __init__(self, app: Quart) -> None:
        super().__init__()
        self.app = app
        #: every extension set up on this app (their declarations, for ``quart sharedstate show``)
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

    @property
    def store(self) -> AsyncStore:  # type: ignore[override]
        """The app's :class:`~sharedstate.AsyncStore` (lazy: making it opens nothing)."""
        store = self._store
        if store is None:
            with self._lock:
                if self._store is None:
                    self._store = connect_async(self.url, **self.connect_options())
                store = self._store
        return store

    def close(self) -> None:
        raise TypeError("an async store is closed with `await app_store.aclose()`")

    async def aclose(self) -> None:
        """Closes this process's connections in this event loop (they reopen on next use)."""
        if self._store is not None:
            await self._store.aclose()


class SharedState:
    """The Quart extension: ``SharedState(app)``, or ``SharedState()`` then ``init_app(app)``.

    Objects, counters and locks declared on it work in every app it is set up with; each
    app keeps its own store.
    """

    def __init__(self, app: Quart | None = None) -> None:
        self._apps: list[Quart] = []
        self._declared: dict[str, AppObject[Any]] = {}
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Quart) -> None:
        """Sets the app up: config defaults, its store (made on first use, closed after
        serving)."""
        for key in CONFIG_KEYS:
            app.config.setdefault(key, None)
        if app.config["SHAREDSTATE_URL"]:
            split_url(app.config["SHAREDSTATE_URL"])  # a bad URL fails here, not mid-request
        app_store = app.extensions.get(EXTENSION_KEY)
        if app_store is None:
            app_store = app.extensions[EXTENSION_KEY] = AppStore(app)
            app.after_serving(app_store.aclose)
        if self not in app_store.extensions:
            app_store.extensions.append(self)
        if app not in self._apps:
            self._apps.append(app)

    # -- declarations --------------------------------------------------------------------
    def object(self, name: str, cls: type[T], *args: Any, **kwargs: Any) -> T:
        """The shared object ``name`` of class ``cls`` (``cls(*args, **kwargs)`` makes its
        first state, only when none is stored). Safe at import time: nothing opens until
        the first call, in the app then in use. Calls and attributes are awaited."""
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
    def _app(self) -> Quart:
        """The app in use: ``current_app`` inside an app context (every request, every
        ``add_background_task``), otherwise the one app this extension was set up with."""
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
            "call it inside `async with app.app_context():` so it knows which app's store "
            "to use"
        )

    def _app_store(self) -> AppStore:
        return self._app().extensions[EXTENSION_KEY]


class AppObject(DeclaredObject[T]):
    """Stands in for a shared object declared on the extension: each method call returns
    the awaitable of the app in use's async object (``await global_obj.query()``), and so
    does each attribute (``await global_obj.param``)."""

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


class AppCounter:
    """A shared counter declared on the extension, resolved in the app in use; awaited."""

    def __init__(self, extension: SharedState, name: str) -> None:
        self._holder = extension._app_store
        self.name = name

    def _resolve(self) -> Any:
        return self._holder().resolve_counter(self.name)

    async def incr(self, amount: int = 1) -> int:
        """Adds ``amount`` and returns the new value, atomically."""
        return await self._resolve().incr(amount)

    async def decr(self, amount: int = 1) -> int:
        """Subtracts ``amount`` and returns the new value, atomically."""
        return await self._resolve().decr(amount)

    async def get(self) -> int:
        """The current value."""
        return await self._resolve().get()

    async def set(self, value: int) -> None:
        """Sets the value."""
        await self._resolve().set(value)

    def __repr__(self) -> str:
        return f"<AppCounter {self.name!r}>"


class AppLock:
    """A leased, fenced lock declared on the extension: ``async with state_lock as lease:``
    in a view (``lease.token`` is the fencing token)."""

    def __init__(
        self, extension: SharedState, name: str, ttl: float, timeout: float | None
    ) -> None:
        if ttl <= 0:
            raise ValueError("a lock's ttl must be positive")
        self._holder = extension._app_store
        self.name = name
        self.ttl = ttl
        self.timeout = timeout

    def _resolve(self) -> Any:
        # one async Lock per app, name and settings, as the Flask extension keeps one Lock
        return self._holder().resolve_lock(self.name, self.ttl, self.timeout)

    async def acquire(self, timeout: float | None = None) -> Any:
        """Waits for the lock and returns the lease (``timeout`` None: the lock's own)."""
        lock = self._resolve()
        return await (lock.acquire() if timeout is None else lock.acquire(timeout))

    async def locked(self) -> bool:
        """Whether someone holds an unexpired lease right now."""
        return await self._resolve().locked()

    async def __aenter__(self) -> Any:
        return await self._resolve().__aenter__()

    async def __aexit__(self, *exc_info: Any) -> None:
        await self._resolve().__aexit__(*exc_info)

    def __repr__(self) -> str:
        return f"<AppLock {self.name!r}>"


# -- `quart sharedstate ...` ----------------------------------------------------------------
sharedstate_cli = AppGroup("sharedstate", help="Show or reset the app's shared state.")


def _app_store(info: ScriptInfo) -> AppStore:
    app = info.load_app()
    app_store = app.extensions.get(EXTENSION_KEY)
    if app_store is None:
        raise click.ClickException(
            f"the app {app.name!r} does not use sharedstate: set it up with "
            "SharedState(app) or state.init_app(app)"
        )
    return app_store


def _declared_names(app_store: AppStore) -> dict[str, str]:
    return {
        name: object.__getattribute__(obj, "_cls").__qualname__
        for extension in app_store.extensions
        for name, obj in extension._declared.items()
    }


@sharedstate_cli.command("show")
@click.argument("name", required=False)
@pass_script_info
def show_command(info: ScriptInfo, name: str | None) -> None:
    """Lists the stored names, or shows the state of NAME."""
    app_store = _app_store(info)
    with connect(app_store.url, **app_store.connect_options()) as store:
        try:
            cli_show.show(store, app_store.url, _declared_names(app_store), name, click.echo)
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
