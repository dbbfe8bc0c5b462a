"""What the Flask and Quart extensions share: the app's config, its store holder, the
choice of the app in use and the declarations.

Quart is Flask's API on asyncio, so its extension is meant to behave as Flask's does in
everything but awaiting: the same ``SHAREDSTATE_*`` keys, the same default SQLite file in
the instance folder, the same rule for which app a call belongs to and the same errors.
Keeping that in one place is what keeps the two from drifting apart; each framework's
module adds only what differs (the store it makes, sync or async stand-ins, its commands).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, ClassVar, Generic, TypeVar

import click

from .backends import split_url
from .bounded import trim
from .declared import DeclaredObject, StoreHolder, check_declared_name
from .errors import ConfigurationError
from .shapes import shape_of

T = TypeVar("T")


#: a Flask or Quart app: what is read of it is ``name``, ``instance_path``, ``config`` and
#: ``extensions``, which both frameworks have
App = Any
AppT = TypeVar("AppT", bound=App)

EXTENSION_KEY = "sharedstate"
DEFAULT_DATABASE = "sharedstate.db"
CONFIG_KEYS = (
    "SHAREDSTATE_URL",
    "SHAREDSTATE_PREFIX",
    "SHAREDSTATE_CODEC",
    "SHAREDSTATE_SECRET_KEY",
    "SHAREDSTATE_TIMEOUT",
)


class AppConfigStore(StoreHolder):
    """One app's store holder, configured from ``app.config`` when first used (so the
    config may still change after ``init_app``); kept in ``app.extensions["sharedstate"]``."""

    def __init__(self, app: App) -> None:
        super().__init__()
        self.app = app
        #: every extension set up on this app (their declarations, for the ``show`` command)
        self.extensions: list[AppExtension[Any, Any]] = []

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

    def declared_names(self) -> dict[str, str]:
        """Each name declared on this app's extensions -> its class's name: what ``show``
        prints beside the stored names."""
        return {
            name: object.__getattribute__(obj, "_cls").__qualname__
            for extension in self.extensions
            for name, obj in extension._declared.items()
        }


StoreT = TypeVar("StoreT", bound=AppConfigStore)


class AppExtension(Generic[AppT, StoreT]):
    """The framework-neutral half of ``SharedState``: which apps it is set up with, what is
    declared on it, and which app a call belongs to.

    A subclass names its framework's classes (:attr:`app_store_class`,
    :attr:`object_class`) and says how to find the app of the active context
    (:meth:`_context_app`), because that is all that differs between Flask and Quart here.
    """

    app_store_class: type[StoreT]
    #: makes the stand-in of a declaration: ``object_class(extension, name, cls, args, kwargs)``
    object_class: ClassVar[Callable[..., DeclaredObject[Any]]]
    #: how a user enters an app context, for the error raised when none is active
    context_hint: ClassVar[str] = "`with app.app_context():`"

    def __init__(self, app: AppT | None = None) -> None:
        self._apps: list[AppT] = []
        self._declared: dict[str, DeclaredObject[Any]] = {}
        if app is not None:
            self.init_app(app)

    def init_app(self, app: AppT) -> None:
        """Sets the app up: config defaults, and its store holder (the store is made on
        first use)."""
        for key in CONFIG_KEYS:
            app.config.setdefault(key, None)
        if app.config["SHAREDSTATE_URL"]:
            split_url(app.config["SHAREDSTATE_URL"])  # a bad URL fails here, not mid-request
        app_store = app.extensions.get(EXTENSION_KEY)
        if app_store is None:
            app_store = app.extensions[EXTENSION_KEY] = self.app_store_class(app)
            self._store_made(app, app_store)
        if self not in app_store.extensions:
            app_store.extensions.append(self)
        if app not in self._apps:
            self._apps.append(app)

    def _store_made(self, app: AppT, app_store: StoreT) -> None:
        """Called once per app, when its store holder is made (Quart closes it after
        serving)."""

    def object(self, name: str, cls: type[T], *args: Any, **kwargs: Any) -> T:
        """The shared object ``name`` of class ``cls`` (``cls(*args, **kwargs)`` makes its
        first state, only when none is stored). Safe at import time: nothing opens until
        the first call, in the app then in use."""
        if not isinstance(cls, type):
            raise TypeError(f"state.object({name!r}, ...) needs a class, got {cls!r}")
        check_declared_name(name)
        shape_of(cls)  # a class whose state cannot be kept is refused here, at declaration
        declared = self.object_class(self, name, cls, args, kwargs)
        self._declared.pop(name, None)
        self._declared[name] = declared
        trim(self._declared)
        return declared  # type: ignore[return-value]

    # -- resolution ----------------------------------------------------------------------
    def _context_app(self) -> AppT | None:
        """The app of the active app context, or None outside one."""
        raise NotImplementedError

    def _app(self) -> AppT:
        """The app in use: the active context's app, otherwise the one app this extension
        was set up with (a script, a background thread)."""
        app = self._context_app()
        if app is not None:
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
            f"call it inside {self.context_hint} so it knows which app's store to use"
        )

    def _app_store(self) -> StoreT:
        return self._app().extensions[EXTENSION_KEY]


class ExtensionObject(DeclaredObject[T]):
    """A stand-in declared on an extension: it finds its store through the extension, so
    each call goes to the app in use."""

    __slots__ = ()

    def __init__(
        self,
        extension: AppExtension[Any, Any],
        name: str,
        cls: type[T],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> None:
        super().__init__(extension._app_store, name, cls, args, kwargs)


def app_store_of(app: App) -> Any:
    """The app's store holder, for a command; a click error when the app does not use
    sharedstate, so the command says so instead of a traceback."""
    app_store = app.extensions.get(EXTENSION_KEY)
    if app_store is None:
        raise click.ClickException(
            f"the app {app.name!r} does not use sharedstate: set it up with "
            "SharedState(app) or state.init_app(app)"
        )
    return app_store
