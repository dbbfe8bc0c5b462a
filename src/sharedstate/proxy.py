"""The proxy a user holds in place of the object: :class:`SharedObject`.

Every method call on it becomes one atomic step of the store (``objects.py`` runs the
step); every attribute read returns a copy of the latest stored state. It is kept apart
from ``objects.py`` because it is the user's side of the line: a class whose attribute
names are the user's, all of them, down to ``_store`` and ``_spec`` (the proxy's own
fields are read from their slots, never by name).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from .errors import UnsupportedClassError
from .shapes import ASYNC, METHOD, STATIC, UNCACHED

if TYPE_CHECKING:
    from .objects import ObjectSpec
    from .store import Store

T = TypeVar("T")


def _spec(proxy: SharedObject[Any]) -> ObjectSpec:
    return object.__getattribute__(proxy, "_spec")


def _dunder(proxy: SharedObject[Any], method: str | Callable[..., Any], *args: Any) -> Any:
    """Runs ``method`` on the shared state as one atomic step."""
    return object.__getattribute__(proxy, "_store")._call(_spec(proxy), method, args, {})


def _attribute(proxy: SharedObject[Any], name: str) -> Any:
    """``proxy.name``: a method of the user's class (made once per name), or a read."""
    spec = _spec(proxy)
    method = spec.methods.get(name)
    if method is not None:
        return method
    store: Store = object.__getattribute__(proxy, "_store")
    kind = spec.kind_of(name)
    if kind == METHOD or kind == UNCACHED:
        payload: Any = name if kind == METHOD else spec.shape.uncached(name)

        def shared_method(*args: Any, **kwargs: Any) -> Any:
            return store._call(spec, payload, args, kwargs)

        shared_method.__name__ = name
        shared_method.__doc__ = getattr(getattr(spec.cls, name, None), "__doc__", None)
        spec.methods[name] = shared_method
        return shared_method
    if kind == STATIC:
        return getattr(spec.cls, name)
    if kind == ASYNC:
        raise UnsupportedClassError(
            f"{spec.class_path}.{name} is async: an async method cannot run as one atomic "
            "step (it may suspend half-way); make it a plain method"
        )
    return store._objects.read(spec, name)


class SharedObject(Generic[T]):
    """Stands in for the user's object: each method call is one atomic, linearizable step
    on the shared state; attribute reads return the latest stored state.

    Every attribute name reaches the user's object, even ``_store`` or ``_spec``: the
    proxy's own fields are read with ``object.__getattribute__`` only, never by name."""

    __slots__ = ("_store", "_spec")

    def __init__(self, store: Store, spec: ObjectSpec) -> None:
        object.__setattr__(self, "_store", store)
        object.__setattr__(self, "_spec", spec)

    def __getattribute__(self, name: str) -> Any:
        if name[:1] == "_" and name[:2] == "__" and name[-2:] == "__":  # the proxy's own special methods
            try:
                return object.__getattribute__(self, name)
            except AttributeError:
                pass
        method = _SPEC_OF(self).methods.get(name)  # a method made before: every call's path
        return method if method is not None else _attribute(self, name)

    def __setattr__(self, name: str, value: Any) -> None:
        _dunder(self, "__setattr__", name, value)

    def __delattr__(self, name: str) -> None:
        _dunder(self, "__delattr__", name)

    def __len__(self) -> int:
        return _dunder(self, "__len__")

    def __getitem__(self, key: Any) -> Any:
        return _dunder(self, "__getitem__", key)

    def __setitem__(self, key: Any, value: Any) -> None:
        _dunder(self, "__setitem__", key, value)

    def __delitem__(self, key: Any) -> None:
        _dunder(self, "__delitem__", key)

    def __contains__(self, item: Any) -> bool:
        return _dunder(self, "__contains__", item)

    def __iter__(self) -> Iterator[Any]:
        """Iterates over a snapshot taken in one atomic step."""
        return iter(_dunder(self, list))

    def __reversed__(self) -> Iterator[Any]:
        """Iterates backwards over a snapshot taken in one atomic step."""
        return iter(_dunder(self, _reversed_list))

    def __bool__(self) -> bool:
        cls = _spec(self).cls
        if hasattr(cls, "__bool__") or hasattr(cls, "__len__"):
            return bool(_dunder(self, "__bool__" if hasattr(cls, "__bool__") else "__len__"))
        return True

    def __repr__(self) -> str:
        spec = _spec(self)
        return f"<SharedObject {spec.name!r} of {spec.cls.__qualname__}>"



#: reads a proxy's spec straight from its slot (``object.__getattribute__`` costs a lookup)
_SPEC_OF = SharedObject.__dict__["_spec"].__get__


def _reversed_list(instance: Any) -> list[Any]:
    return list(reversed(instance))
