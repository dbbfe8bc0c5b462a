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

import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Generic, TypeVar

import click
from flask import Flask, current_app, has_app_context
from flask.cli import AppGroup, with_appcontext

from .backends import redact_url, split_url
from .counters import Counter
from .errors import ConfigurationError
from .locks import Lease, Lock
from .objects import SharedObject
from .store import Store, connect

T = TypeVar("T")

EXTENSION_KEY = "sharedstate"
DEFAULT_DATABASE = "sharedstate.db"


class AppStore:
    """One app's store, made on first use from the app's config; kept in
    ``app.extensions["sharedstate"]``."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self._store: Store | None = None
        self._lock = threading.Lock()
        #: what this app has resolved: declaration -> the store's SharedObject, and so on
        self.objects: dict[AppObject[Any], SharedObject[Any]] = {}
        self.counters: dict[str, Counter] = {}
        self.locks: dict[tuple[str, float, float | None], Lock] = {}
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

    @property
    def store(self) -> Store:
        store = self._store
        if store is None:
            with self._lock:
                if self._store is None:
                    config = self.app.config
                    self._store = connect(
                        self.url,
                        prefix=config.get("SHAREDSTATE_PREFIX"),
                        codec=config.get("SHAREDSTATE_CODEC"),
                        secret_key=config.get("SHAREDSTATE_SECRET_KEY"),
                        timeout=config.get("SHAREDSTATE_TIMEOUT"),
                    )
                store = self._store
        return store

    def resolve_object(self, declared: AppObject[Any]) -> SharedObject[Any]:
        found = self.objects.get(declared)
        if found is None:
            store = self.store
            with self._lock:
                found = self.objects.get(declared)
                if found is None:
                    # the store refuses a name already declared with another class
                    found = store.object(
                        declared._name, declared._cls, *declared._args, **declared._kwargs
                    )
                    self.objects[declared] = found
        return found

    def close(self) -> None:
        """Closes this process's connections (they reopen on next use)."""
        if self._store is not None:
            self._store.close()


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
        if not isinstance(name, str) or not name:
            raise ValueError(f"a shared name must be a non-empty string, not {name!r}")
        declared: AppObject[Any] = AppObject(self, name, cls, args, kwargs)
        self._declared[name] = declared
        return declared  # type: ignore[return-value]

    def counter(self, name: str) -> AppCounter:
        """The shared integer counter ``name``, resolved in the app in use."""
        if not isinstance(name, str) or not name:
            raise ValueError(f"a shared name must be a non-empty string, not {name!r}")
        return AppCounter(self, name)

    def lock(self, name: str, ttl: float = 10.0, timeout: float | None = None) -> AppLock:
        """A leased, fenced lock ``name`` (see :meth:`sharedstate.Store.lock`)."""
        if ttl <= 0:
            raise ValueError("a lock's ttl must be positive")
        return AppLock(self, name, ttl, timeout)

    @contextmanager
    def transaction(self, target: str | Any, ttl: float = 30.0) -> Iterator[Any]:
        """Several calls on one object as one atomic step (see
        :meth:`sharedstate.Store.transaction`); takes the object or its name."""
        app_store = self._app_store()
        if isinstance(target, AppObject):
            target = app_store.resolve_object(target)
        elif isinstance(target, str) and target in self._declared:
            target = app_store.resolve_object(self._declared[target])
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


class AppObject(Generic[T]):
    """Stands in for a shared object declared on the extension: every call goes to the
    :class:`~sharedstate.SharedObject` of the app in use, made there on first use."""

    __slots__ = ("_extension", "_name", "_cls", "_args", "_kwargs", "_methods")

    def __init__(
        self,
        extension: SharedState,
        name: str,
        cls: type[T],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> None:
        self._extension = extension
        self._name = name
        self._cls = cls
        self._args = args
        self._kwargs = kwargs
        self._methods: dict[str, Callable[..., Any]] = {}

    def _resolve(self) -> SharedObject[T]:
        """The shared object of the app in use (made on first use in that app)."""
        return self._extension._app_store().resolve_object(self)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        method = self._methods.get(name)
        if method is not None:
            return method
        found = getattr(self._cls, name, None)
        if callable(found) and not isinstance(found, type):
            # resolved at call time, so ``query = global_obj.query`` at import still works
            resolve = self._resolve

            def app_method(*args: Any, **kwargs: Any) -> Any:
                return getattr(resolve(), name)(*args, **kwargs)

            app_method.__name__ = name
            app_method.__doc__ = getattr(found, "__doc__", None)
            self._methods[name] = app_method
            return app_method
        return getattr(self._resolve(), name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in AppObject.__slots__:
            object.__setattr__(self, name, value)
        else:
            setattr(self._resolve(), name, value)

    def __delattr__(self, name: str) -> None:
        delattr(self._resolve(), name)

    def __len__(self) -> int:
        return len(self._resolve())  # type: ignore[arg-type]

    def __getitem__(self, key: Any) -> Any:
        return self._resolve()[key]  # type: ignore[index]

    def __setitem__(self, key: Any, value: Any) -> None:
        self._resolve()[key] = value  # type: ignore[index]

    def __delitem__(self, key: Any) -> None:
        del self._resolve()[key]  # type: ignore[attr-defined]

    def __contains__(self, item: Any) -> bool:
        return item in self._resolve()  # type: ignore[operator]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._resolve())  # type: ignore[call-overload]

    def __bool__(self) -> bool:
        return bool(self._resolve())

    def __repr__(self) -> str:
        return f"<AppObject {self._name!r} of {self._cls.__qualname__}>"


class AppCounter:
    """A shared counter declared on the extension, resolved in the app in use."""

    def __init__(self, extension: SharedState, name: str) -> None:
        self.extension = extension
        self.name = name

    def _resolve(self) -> Counter:
        app_store = self.extension._app_store()
        counter = app_store.counters.get(self.name)
        if counter is None:
            counter = app_store.counters.setdefault(self.name, app_store.store.counter(self.name))
        return counter

    def incr(self, amount: int = 1) -> int:
        """Adds ``amount`` and returns the new value, atomically."""
        return self._resolve().incr(amount)

    def decr(self, amount: int = 1) -> int:
        """Subtracts ``amount`` and returns the new value, atomically."""
        return self._resolve().decr(amount)

    def get(self) -> int:
        """The current value."""
        return self._resolve().get()

    def set(self, value: int) -> None:
        """Sets the value."""
        self._resolve().set(value)

    def __int__(self) -> int:
        return self.get()

    def __repr__(self) -> str:
        return f"<AppCounter {self.name!r}>"


class AppLock:
    """A leased lock declared on the extension; ``with state_lock as lease:`` in a view."""

    def __init__(
        self, extension: SharedState, name: str, ttl: float, timeout: float | None
    ) -> None:
        self.extension = extension
        self.name = name
        self.ttl = ttl
        self.timeout = timeout

    def _resolve(self) -> Lock:
        # one Lock per app and name: ``with`` keeps its lease on the Lock, per thread
        app_store = self.extension._app_store()
        key = (self.name, self.ttl, self.timeout)
        lock = app_store.locks.get(key)
        if lock is None:
            lock = app_store.locks.setdefault(
                key, app_store.store.lock(self.name, ttl=self.ttl, timeout=self.timeout)
            )
        return lock

    def acquire(self, timeout: float | None = None) -> Lease:
        """Waits for the lock and returns the lease (``timeout`` None: the lock's own)."""
        lock = self._resolve()
        return lock.acquire() if timeout is None else lock.acquire(timeout)

    def locked(self) -> bool:
        """Whether someone holds an unexpired lease right now."""
        return self._resolve().locked()

    def __enter__(self) -> Lease:
        return self._resolve().__enter__()

    def __exit__(self, *exc_info: Any) -> None:
        self._resolve().__exit__(*exc_info)

    def __repr__(self) -> str:
        return f"<AppLock {self.name!r}>"


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
            declared[name] = obj._cls.__qualname__
    return declared


def _lock_state(store: Store, name: str) -> str:
    record = store.backend.load(store.prefix + "l:" + name)
    try:
        state = json.loads(record.data) if record is not None and record.data else {}
    except ValueError:
        return "damaged lease record"
    if state.get("o") and state.get("e", 0) > time.time():
        return f"held (token {state.get('t')}, {state.get('e') - time.time():.1f} s left)"
    return f"free (last token {state.get('t', 0)})"


@sharedstate_cli.command("show")
@click.argument("name", required=False)
@with_appcontext
def show_command(name: str | None) -> None:
    """Lists the stored names, or shows the state of NAME."""
    app_store = _current_app_store()
    store = app_store.store
    stored = dict((n, kind) for kind, n in store.names())
    declared = _declared_names(app_store)
    if name is None:
        click.echo(f"store: {redact_url(app_store.url)}")
        if store.prefix:
            click.echo(f"prefix: {store.prefix}")
        if not stored and not declared:
            click.echo("nothing stored yet")
        for each in sorted(set(stored) | set(declared)):
            kind = stored.get(each)
            if kind is None:
                click.echo(f"  object   {each}  ({declared[each]}, declared, nothing stored yet)")
            elif kind == "object":
                inspected = store.inspect(each) or {}
                click.echo(f"  object   {each}  {_format_state(inspected.get('state'))}")
            elif kind == "counter":
                click.echo(f"  counter  {each}  {store.counter(each).get()}")
            else:
                click.echo(f"  lock     {each}  {_lock_state(store, each)}")
        return
    kind = stored.get(name)
    if kind == "object":
        inspected = store.inspect(name) or {}
        click.echo(f"object {name} ({inspected.get('class')}, version {inspected.get('version')})")
        for attribute, value in (inspected.get("state") or {}).items():
            click.echo(f"  {attribute} = {value!r}")
    elif kind == "counter":
        click.echo(f"counter {name} = {store.counter(name).get()}")
    elif kind == "lock":
        click.echo(f"lock {name}: {_lock_state(store, name)}")
    elif name in declared:
        click.echo(f"object {name} ({declared[name]}): declared, nothing stored yet")
    else:
        raise click.ClickException(f"nothing named {name!r} in {redact_url(app_store.url)}")


def _format_state(state: Any) -> str:
    if not isinstance(state, dict):
        return repr(state)
    text = ", ".join(f"{k}={v!r}" for k, v in state.items())
    return text if len(text) <= 100 else text[:97] + "..."


@sharedstate_cli.command("reset")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@with_appcontext
def reset_command(name: str, yes: bool) -> None:
    """Forgets object or counter NAME: an object's factory runs again on next use."""
    app_store = _current_app_store()
    if not yes:
        click.confirm(
            f"Reset {name!r} in {redact_url(app_store.url)}? Its state is lost", abort=True
        )
    if not app_store.store.delete(name):
        raise click.ClickException(f"nothing named {name!r} in {redact_url(app_store.url)}")
    click.echo(f"reset {name}")


__all__ = ["AppCounter", "AppLock", "AppObject", "SharedState", "sharedstate_cli"]
