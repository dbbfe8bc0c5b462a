"""The async proxy of a shared object: ``await obj.method(...)``, ``await obj.attribute``.

The user's class stays plain, with sync methods: a method runs on the event loop thread,
inside the engine's atomic step, exactly as under the sync store (and may run more than
once after a conflict). Only the store's I/O is awaited. Each call is queued on its name's
combiner for this event loop (``combining.py``), which runs batches through the engine
with the async driver; attribute reads load the latest stored state.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from ..objects import ObjectSpec

if TYPE_CHECKING:
    from .store import AsyncStore

T = TypeVar("T")


class AsyncSharedObject(Generic[T]):
    """Stands in for the user's object in async code: each method returns an awaitable of
    one atomic, linearizable call; each attribute read is an awaitable of a fresh copy of
    the latest stored value."""

    __slots__ = ("_store", "_spec", "_methods")

    def __init__(self, store: AsyncStore, spec: ObjectSpec) -> None:
        object.__setattr__(self, "_store", store)
        object.__setattr__(self, "_spec", spec)
        object.__setattr__(self, "_methods", {})

    def __getattr__(self, name: str) -> Any:
        methods: dict[str, Callable[..., Any]] = object.__getattribute__(self, "_methods")
        method = methods.get(name)
        if method is not None:
            return method
        spec: ObjectSpec = object.__getattribute__(self, "_spec")
        store: AsyncStore = object.__getattribute__(self, "_store")
        kind = spec.kind_of(name)
        if kind == "method":

            async def shared_method(*args: Any, **kwargs: Any) -> Any:
                return await store._call(spec, name, args, kwargs)

            shared_method.__name__ = name
            shared_method.__doc__ = getattr(spec.cls, name).__doc__
            methods[name] = shared_method
            return shared_method
        if kind == "static":
            return getattr(spec.cls, name)
        if kind == "async":
            raise TypeError(
                f"{spec.cls.__qualname__}.{name} is async: an async method cannot run as one "
                "atomic step (it may suspend half-way); make it a plain method (the async "
                "proxy awaits the store for it)"
            )
        return store._read(spec, name)

    def __setattr__(self, name: str, value: Any) -> None:
        spec: ObjectSpec = object.__getattribute__(self, "_spec")
        raise TypeError(
            f"cannot set {name!r} on async shared object {spec.name!r}: an assignment cannot "
            "be awaited; write a method that sets it, or use store.transaction()"
        )

    def __repr__(self) -> str:
        spec: ObjectSpec = object.__getattribute__(self, "_spec")
        return f"<AsyncSharedObject {spec.name!r} of {spec.cls.__qualname__}>"


__all__ = ["AsyncSharedObject"]
