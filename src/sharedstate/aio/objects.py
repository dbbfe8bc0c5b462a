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

from ..errors import UnsupportedClassError
from ..objects import ObjectSpec
from ..shapes import ASYNC, METHOD, STATIC, UNCACHED

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

    def __getattribute__(self, name: str) -> Any:
        """Every name reaches the user's object (``_store``, ``_spec`` too): the proxy's own
        fields are read with ``object.__getattribute__`` only."""
        if name[:2] == "__" and name[-2:] == "__":
            try:
                return object.__getattribute__(self, name)
            except AttributeError:
                pass
        methods: dict[str, Callable[..., Any]] = object.__getattribute__(self, "_methods")
        method = methods.get(name)
        if method is not None:
            return method
        spec: ObjectSpec = object.__getattribute__(self, "_spec")
        store: AsyncStore = object.__getattribute__(self, "_store")
        kind = spec.kind_of(name)
        if kind == METHOD or kind == UNCACHED:
            payload: Any = name if kind == METHOD else spec.shape.uncached(name)

            async def shared_method(*args: Any, **kwargs: Any) -> Any:
                return await store._call(spec, payload, args, kwargs)

            shared_method.__name__ = name
            shared_method.__doc__ = getattr(getattr(spec.cls, name, None), "__doc__", None)
            methods[name] = shared_method
            return shared_method
        if kind == STATIC:
            return getattr(spec.cls, name)
        if kind == ASYNC:
            raise UnsupportedClassError(
                f"{spec.class_path}.{name} is async: an async method cannot run as one atomic "
                "step (it may suspend half-way); make it a plain method (the async proxy "
                "awaits the store for it)"
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
