"""Shared objects, counters and locks declared before their store exists.

Web frameworks declare shared state at import time (an app module, a ``views.py``): before
the app is configured or the settings are read, and before the server forks its workers.
So a declaration returns a stand-in that opens nothing. Each use asks its ``holder``
function for the :class:`StoreHolder` in force (Flask: the app in use; Django: the
project's settings) and calls the real :class:`~sharedstate.SharedObject`, counter or lock,
made there on first use.

The integrations (``sharedstate.flask``, ``sharedstate.quart``, ``sharedstate.django``)
build on this module, so a stand-in behaves the same in each.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from .aio import AsyncStore, connect_async
from .bounded import trim
from .counters import Counter
from .locks import Lease, Lock
from .proxy import SharedObject
from .store import Store, connect

T = TypeVar("T")


class StoreHolder:
    """One store, made on first use from the configuration read at that moment, and what
    has been resolved on it (declaration -> object, name -> counter, ...).

    Subclasses say where the configuration comes from: :attr:`url` and
    :meth:`connect_options`. The store's connections open lazily in each process, so a
    store made before ``fork`` (gunicorn ``--preload``) is still safe in every worker.
    """

    def __init__(self) -> None:
        self._store: Store | None = None
        self._lock = threading.Lock()
        #: bounded (``bounded.py``): an evicted entry is resolved again when used
        self.objects: dict[DeclaredObject[Any], SharedObject[Any]] = {}
        self.counters: dict[str, Counter] = {}
        self.locks: dict[tuple[str, float, float | None], Lock] = {}

    @property
    def url(self) -> str:
        """The store URL in force."""
        raise NotImplementedError

    def connect_options(self) -> dict[str, Any]:
        """Keyword arguments of :func:`sharedstate.connect` besides the URL."""
        return {}

    @property
    def store(self) -> Store:
        store = self._store
        if store is None:
            with self._lock:
                if self._store is None:
                    self._store = connect(self.url, **self.connect_options())
                store = self._store
        return store

    def resolve_object(self, declared: DeclaredObject[Any]) -> SharedObject[Any]:
        found = self.objects.get(declared)
        if found is None:
            store = self.store
            with self._lock:
                found = self.objects.get(declared)
                if found is None:
                    # the store refuses a name already declared with another class
                    found = store.object(
                        _own(declared, "_name"),
                        _own(declared, "_cls"),
                        *_own(declared, "_args"),
                        **_own(declared, "_kwargs"),
                    )
                    self.objects[declared] = found
                    trim(self.objects)
        return found

    def resolve_counter(self, name: str) -> Counter:
        counter = self.counters.get(name)
        if counter is None:
            counter = self.counters.setdefault(name, self.store.counter(name))
            trim(self.counters)
        return counter

    def resolve_lock(self, name: str, ttl: float, timeout: float | None) -> Lock:
        # one Lock per name and settings: ``with`` keeps its lease on the Lock, per thread
        key = (name, ttl, timeout)
        lock = self.locks.get(key)
        if lock is None:
            lock = self.locks.setdefault(key, self.store.lock(name, ttl=ttl, timeout=timeout))
        return lock

    def close(self) -> None:
        """Closes this process's connections (they reopen on next use)."""
        if self._store is not None:
            self._store.close()


class AsyncStoreHolder(StoreHolder):
    """A holder whose store is a :func:`sharedstate.connect_async` store, so what it
    resolves (objects, counters, locks) is awaited. Put before the holder that says where
    the configuration comes from: ``class AppStore(AsyncStoreHolder, AppConfigStore)``."""

    _store: AsyncStore | None  # type: ignore[assignment]

    @property
    def store(self) -> AsyncStore:  # type: ignore[override]
        """The async store (lazy: making it opens nothing; it connects per event loop)."""
        store = self._store
        if store is None:
            with self._lock:
                if self._store is None:
                    self._store = connect_async(self.url, **self.connect_options())
                store = self._store
        return store

    async def aclose(self) -> None:
        """Closes this process's connections in this event loop (they reopen on next use)."""
        if self._store is not None:
            await self._store.aclose()


Holder = Callable[[], StoreHolder]


def check_declared_name(name: Any) -> None:
    if not isinstance(name, str) or not name:
        raise ValueError(f"a shared name must be a non-empty string, not {name!r}")


def _own(proxy: DeclaredObject[Any], field: str) -> Any:
    """A stand-in's own field: read this way only, so no user attribute is ever shadowed."""
    return object.__getattribute__(proxy, field)


class DeclaredObject(Generic[T]):
    """Stands in for a declared shared object: every call goes to the
    :class:`~sharedstate.SharedObject` of the holder in force, made there on first use.

    Every attribute name reaches the user's object, ``_name`` included: the stand-in's
    own fields are read with ``object.__getattribute__`` only, never by name."""

    __slots__ = ("_holder", "_name", "_cls", "_args", "_kwargs", "_methods")

    def __init__(
        self,
        holder: Holder,
        name: str,
        cls: type[T],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> None:
        object.__setattr__(self, "_holder", holder)
        object.__setattr__(self, "_name", name)
        object.__setattr__(self, "_cls", cls)
        object.__setattr__(self, "_args", args)
        object.__setattr__(self, "_kwargs", kwargs)
        object.__setattr__(self, "_methods", {})

    def _resolve(self) -> SharedObject[T]:
        """The shared object of the holder in force (made on first use there)."""
        return _own(self, "_holder")().resolve_object(self)  # type: ignore[no-any-return]

    def __getattribute__(self, name: str) -> Any:
        if name[:2] == "__" and name[-2:] == "__":
            try:
                return object.__getattribute__(self, name)
            except AttributeError:
                raise AttributeError(name) from None
        methods = _own(self, "_methods")
        method = methods.get(name)
        if method is not None:
            return method
        resolve = DeclaredObject._resolve.__get__(self)
        found = getattr(_own(self, "_cls"), name, None)
        if callable(found) and not isinstance(found, type):
            # resolved at call time, so ``query = global_obj.query`` at import still works

            def declared_method(*args: Any, **kwargs: Any) -> Any:
                return getattr(resolve(), name)(*args, **kwargs)

            declared_method.__name__ = name
            declared_method.__doc__ = getattr(found, "__doc__", None)
            methods[name] = declared_method
            return declared_method
        return getattr(resolve(), name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(DeclaredObject._resolve(self), name, value)

    def __delattr__(self, name: str) -> None:
        delattr(DeclaredObject._resolve(self), name)

    def __len__(self) -> int:
        return len(DeclaredObject._resolve(self))  # type: ignore[arg-type]

    def __getitem__(self, key: Any) -> Any:
        return DeclaredObject._resolve(self)[key]  # type: ignore[index]

    def __setitem__(self, key: Any, value: Any) -> None:
        DeclaredObject._resolve(self)[key] = value  # type: ignore[index]

    def __delitem__(self, key: Any) -> None:
        del DeclaredObject._resolve(self)[key]  # type: ignore[attr-defined]

    def __contains__(self, item: Any) -> bool:
        return item in DeclaredObject._resolve(self)  # type: ignore[operator]

    def __iter__(self) -> Iterator[Any]:
        return iter(DeclaredObject._resolve(self))  # type: ignore[call-overload]

    def __reversed__(self) -> Iterator[Any]:
        return reversed(DeclaredObject._resolve(self))  # type: ignore[call-overload]

    def __bool__(self) -> bool:
        return bool(DeclaredObject._resolve(self))

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {_own(self, '_name')!r} of {_own(self, '_cls').__qualname__}>"


class DeclaredCounter:
    """A declared shared counter, resolved in the holder in force."""

    def __init__(self, holder: Holder, name: str) -> None:
        self._holder = holder
        self.name = name

    def _resolve(self) -> Counter:
        return self._holder().resolve_counter(self.name)

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
        return f"<{type(self).__name__} {self.name!r}>"


class DeclaredLock:
    """A declared leased lock; ``with declared_lock as lease:`` in a view."""

    def __init__(self, holder: Holder, name: str, ttl: float, timeout: float | None) -> None:
        if ttl <= 0:
            raise ValueError("a lock's ttl must be positive")
        self._holder = holder
        self.name = name
        self.ttl = ttl
        self.timeout = timeout

    def _resolve(self) -> Lock:
        return self._holder().resolve_lock(self.name, self.ttl, self.timeout)

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
        return f"<{type(self).__name__} {self.name!r}>"


class DeclaredAsyncCounter(DeclaredCounter):
    """A declared shared counter on an async store: every operation is awaited."""

    async def incr(self, amount: int = 1) -> int:  # type: ignore[override]
        """Adds ``amount`` and returns the new value, atomically."""
        return await self._resolve().incr(amount)  # type: ignore[misc]

    async def decr(self, amount: int = 1) -> int:  # type: ignore[override]
        """Subtracts ``amount`` and returns the new value, atomically."""
        return await self._resolve().decr(amount)  # type: ignore[misc]

    async def get(self) -> int:  # type: ignore[override]
        """The current value."""
        return await self._resolve().get()  # type: ignore[misc]

    async def set(self, value: int) -> None:  # type: ignore[override]
        """Sets the value."""
        await self._resolve().set(value)  # type: ignore[func-returns-value,misc]

    def __int__(self) -> int:
        raise TypeError("an async counter is read with `await counter.get()`")


class DeclaredAsyncLock(DeclaredLock):
    """A declared leased lock on an async store: ``async with declared_lock as lease:``."""

    async def acquire(self, timeout: float | None = None) -> Any:  # type: ignore[override]
        """Waits for the lock and returns the lease (``timeout`` None: the lock's own)."""
        lock: Any = self._resolve()
        return await (lock.acquire() if timeout is None else lock.acquire(timeout))

    async def locked(self) -> bool:  # type: ignore[override]
        """Whether someone holds an unexpired lease right now."""
        return await self._resolve().locked()  # type: ignore[misc]

    def __enter__(self) -> Lease:
        raise TypeError("an async lock is taken with `async with`")

    async def __aenter__(self) -> Any:
        return await self._resolve().__aenter__()  # type: ignore[attr-defined]

    async def __aexit__(self, *exc_info: Any) -> None:
        await self._resolve().__aexit__(*exc_info)  # type: ignore[attr-defined]


def resolve_target(holder: StoreHolder, target: Any, declared: dict[str, DeclaredObject[Any]]) -> Any:
    """What ``store.transaction`` takes, for a declared object or its declared name."""
    if isinstance(target, DeclaredObject):
        return holder.resolve_object(target)
    if isinstance(target, str) and target in declared:
        return holder.resolve_object(declared[target])
    return target


__all__ = [
    "AsyncStoreHolder",
    "DeclaredAsyncCounter",
    "DeclaredAsyncLock",
    "DeclaredCounter",
    "DeclaredLock",
    "DeclaredObject",
    "StoreHolder",
    "check_declared_name",
    "resolve_target",
]
