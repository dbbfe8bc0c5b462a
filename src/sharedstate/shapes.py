"""What a user's class looks like to sharedstate: where its state lives, how to read it out
of an instance and put it back, and how each attribute is served by the proxy.

Inspected once per class, when ``store.object(name, cls, ...)`` is called, and cached
(:func:`shape_of`); the call path only runs the small functions chosen here. A class whose
state sharedstate could not keep is refused then, with :class:`UnsupportedClassError`,
rather than losing writes later.

Where state lives:

* **attributes**: the instance's ``__dict__`` and ``__slots__`` (a plain class, a
  dataclass); a class attribute holding a list, dict, set (a *mutable class attribute*) is
  copied into each instance when it is made or restored, so that ``self.items.append(x)``
  changes the object's state, not the class shared by every instance of a process. It is
  stored only once it differs from the class's value, so a table of constants stays the
  class's (and a new version of it reaches every object);
* **items**: a subclass of ``dict`` (``OrderedDict``, ``Counter``, ``defaultdict``),
  ``list`` or ``set`` keeps its items in the builtin part; they are stored beside the
  attributes. A ``defaultdict``'s ``default_factory`` is code, not state: it comes from the
  factory given to ``store.object`` (run once per process to learn it).
* ``__getstate__`` / ``__setstate__``, where the class defines them, decide what is stored
  and how it comes back (Python's protocol, as for pickle and copy). sharedstate then
  neither fills in nor drops anything: that is where a class migrates old state.

Classes change between deploys. Without ``__setstate__``, restoring a stored state:

* gives an attribute the state lacks its default: a dataclass field's ``default`` or
  ``default_factory``, a class attribute (Python's own lookup), or, for an attribute only
  ``__init__`` sets, the value a fresh instance made by the declared factory holds (made
  once per process, and only after a call met the attribute missing: see ``objects.py``);
* keeps a stored attribute the class does not know in the instance's ``__dict__``, unused,
  so that a worker still running the old class never erases what a new one stored (a
  rolling deploy); a class without ``__dict__`` (``__slots__`` only) drops it;
* never stores a ``functools.cached_property`` value: it is recomputed from the state.
"""

from __future__ import annotations

import collections
import copy
import dataclasses
import functools
import inspect
import typing
import weakref
from collections.abc import Callable
from typing import Any

from .errors import UnsupportedClassError

#: builtin (C) classes whose instances keep state sharedstate can store: their items
ITEM_BASES: tuple[type, ...] = (collections.OrderedDict, collections.defaultdict, dict, list, set)
#: other C classes that add no state of their own
_NEUTRAL_BASES = frozenset({object, typing.Generic})
_HEAPTYPE = 1 << 9  # Py_TPFLAGS_HEAPTYPE: a class written in Python
_MUTABLE = (list, dict, set, bytearray)
_MISSING = object()

#: how the proxy serves an attribute of the class
METHOD, UNCACHED, STATIC, ASYNC, READ = "method", "uncached", "static", "async", "read"


def class_path(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def _defines(cls: type, name: str) -> bool:
    """Whether ``cls`` or a base other than the builtins defines ``name`` (Python 3.11 gives
    every object a ``__getstate__``; only a user's own counts)."""
    for klass in cls.__mro__:
        if name in vars(klass):
            found = vars(klass)[name]
            # dataclass(slots=True) writes its own, storing fields by position: not the user's
            return bool(klass.__flags__ & _HEAPTYPE) and getattr(found, "__module__", "") != "dataclasses"
    return False


def _slots_of(cls: type) -> tuple[str, ...]:
    names = []
    for klass in cls.__mro__:
        slots = vars(klass).get("__slots__", ())
        for slot in (slots,) if isinstance(slots, str) else slots:
            if slot not in ("__dict__", "__weakref__"):
                names.append(slot)
    return tuple(names)


class Shape:
    """One class, inspected: see the module docstring."""

    def __init__(self, cls: type) -> None:
        self.cls = cls
        self.path = class_path(cls)
        self.item_base = _item_base(cls)
        self.slots = _slots_of(cls)
        # a class written in Python without __slots__ (or naming "__dict__" in them) gives
        # its instances a __dict__
        self.has_dict = any(
            "__slots__" not in vars(k) or "__dict__" in vars(k)["__slots__"]
            for k in cls.__mro__
            if k.__flags__ & _HEAPTYPE
        )
        self.custom_get = _defines(cls, "__getstate__")
        self.custom_set = _defines(cls, "__setstate__")
        self.fields: dict[str, Callable[[], Any]] = {}
        if dataclasses.is_dataclass(cls):
            for f in dataclasses.fields(cls):
                if f.default_factory is not dataclasses.MISSING:
                    self.fields[f.name] = f.default_factory
                elif f.default is not dataclasses.MISSING:
                    self.fields[f.name] = functools.partial(copy.deepcopy, f.default)
        self.transient = frozenset(
            name
            for klass in cls.__mro__
            for name, value in vars(klass).items()
            if isinstance(value, functools.cached_property)
        )
        self.class_mutables = _class_mutables(cls)
        if self.class_mutables and not self.has_dict:
            name = next(iter(self.class_mutables))
            raise UnsupportedClassError(
                f"class {self.path}: its attribute {name!r} is a mutable class attribute (one "
                "object shared by every instance of a process), and its instances have no "
                "__dict__ to hold a copy of their own, so changes to it would never reach the "
                f"store; set self.{name} in __init__ and add it to __slots__"
            )
        self.kinds: dict[str, str] = {}
        self.get_state: Callable[[Any], tuple[Any, Any]] = self._choose_get_state()

    # -- reading state out of an instance ------------------------------------------------
    def _choose_get_state(self) -> Callable[[Any], tuple[Any, Any]]:
        """The function the call path runs: the plainest one that fits this class."""
        if (
            not self.custom_get
            and self.item_base is None
            and self.has_dict
            and not self.slots
            and not self.transient
            and not self.class_mutables
        ):
            return _dict_state
        return self._general_state

    def _general_state(self, instance: Any) -> tuple[Any, Any]:
        if self.custom_get:
            state = instance.__getstate__()
        else:
            state = self.attributes(instance)
        return state, self.items(instance)

    def attributes(self, instance: Any) -> dict[str, Any]:
        """The attributes that make up an instance's state (the default protocol)."""
        state = dict(instance.__dict__) if self.has_dict and hasattr(instance, "__dict__") else {}
        for slot in self.slots:
            value = getattr(instance, slot, _MISSING)
            if value is not _MISSING:
                state[slot] = value
        for name in self.transient:
            state.pop(name, None)
        for name, value in self.class_mutables.items():
            if name in state and state[name] == value:
                del state[name]  # unchanged: the class's own value, copied again on restore
        return state

    def items(self, instance: Any) -> Any:
        base = self.item_base
        if base is None:
            return None
        if base is collections.OrderedDict:
            return dict(collections.OrderedDict.items(instance))
        if base is list:
            return list.copy(instance)
        if base is set:
            return set.copy(instance)
        return dict.copy(instance)

    # -- putting state into a new instance -----------------------------------------------
    def restore(
        self,
        state: Any,
        items: Any = None,
        defaults: dict[str, Any] | None = None,
        default_factory: Any = None,
    ) -> Any:
        """An instance holding ``state`` (and ``items``), made without running ``__init__``.

        ``defaults``: attribute values a fresh instance holds (see ``objects.py``), given to
        the attributes the stored state lacks."""
        cls: Any = self.cls
        instance = cls.__new__(cls)
        base = self.item_base
        if base is not None and items:
            if base is collections.OrderedDict:
                collections.OrderedDict.update(instance, items)
            elif base is list:
                list.extend(instance, items)
            elif base is set:
                set.update(instance, items)
            else:
                dict.update(instance, items)
        if base is collections.defaultdict:
            instance.default_factory = default_factory
        if self.custom_set:
            instance.__setstate__(state)
        elif self.custom_get and isinstance(state, tuple) and len(state) == 2:
            self._put(instance, {**(state[0] or {}), **(state[1] or {})}, defaults)
        elif isinstance(state, dict):
            self._put(instance, state, defaults)
        elif state is not None:
            raise TypeError(
                f"the stored state of {self.path} is a {type(state).__name__}, written by a "
                "__getstate__ the class no longer has; define __setstate__ to read it"
            )
        self.prepare(instance)
        return instance

    def _put(self, instance: Any, state: dict[str, Any], defaults: dict[str, Any] | None) -> None:
        missing = {}
        for name, make in self.fields.items():
            if name not in state:
                missing[name] = make()
        if defaults:
            for name, value in defaults.items():
                if name not in state and name not in missing:
                    missing[name] = copy.deepcopy(value)
        if missing:
            state = {**missing, **state}
        if self.transient:
            state = {k: v for k, v in state.items() if k not in self.transient}
        if self.has_dict and not self.slots:
            instance.__dict__.update(state)
            return
        slots = self.slots
        for name, value in state.items():
            if name in slots:
                object.__setattr__(instance, name, value)
            elif self.has_dict:
                instance.__dict__[name] = value
            # else: a stored attribute this class has no place for is dropped

    def prepare(self, instance: Any) -> None:
        """Gives the instance its own copy of each mutable class attribute it lacks."""
        if self.class_mutables:
            own = instance.__dict__
            for name, value in self.class_mutables.items():
                if name not in own:
                    own[name] = copy.deepcopy(value)

    # -- how the proxy serves attributes -------------------------------------------------
    def kind_of(self, name: str) -> str:
        kind = self.kinds.get(name)
        if kind is None:
            kind = self.kinds[name] = _kind(self.cls, name)
        return kind

    def uncached(self, name: str) -> Callable[..., Any]:
        """The function under an ``lru_cache``/``cache`` on a method: see :func:`_kind`."""
        return inspect.getattr_static(self.cls, name).__wrapped__


def _dict_state(instance: Any) -> tuple[dict[str, Any], None]:
    return instance.__dict__, None


def _item_base(cls: type) -> type | None:
    """The builtin class holding the instances' items, if any; refuses other builtins."""
    found = None
    for klass in cls.__mro__:
        if klass.__flags__ & _HEAPTYPE or klass in _NEUTRAL_BASES:
            continue
        if klass in ITEM_BASES:
            found = found or klass
            continue
        raise UnsupportedClassError(
            f"class {class_path(cls)} derives from {klass.__qualname__}, whose contents "
            "sharedstate cannot store (only the items of dict, list and set subclasses, and "
            "attributes); keep the data in an attribute of a plain class instead"
        )
    return found


def _class_mutables(cls: type) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        if not klass.__flags__ & _HEAPTYPE:
            continue
        for name, value in vars(klass).items():
            if name.startswith("__") and name.endswith("__"):
                continue
            if isinstance(value, _MUTABLE):
                found[name] = value
            else:
                found.pop(name, None)
    return found


def _kind(cls: type, name: str) -> str:
    """How the proxy serves ``cls``'s attribute ``name``.

    Anything on the class that makes a callable runs inside the atomic step, on the private
    instance, exactly as Python would call it (``getattr(instance, name)(...)``): a plain
    method, a ``functools.partialmethod``, a builtin method of ``dict``, a class-based
    decorator, a descriptor. ``lru_cache``/``cache`` on a method is bypassed (UNCACHED): it
    would key its cache on a private instance and return old results while the state
    changes. Properties and other data descriptors are reads of the state."""
    found = inspect.getattr_static(cls, name, _MISSING)
    if found is _MISSING:
        return READ
    if isinstance(found, (staticmethod, classmethod, type)):
        return STATIC
    if isinstance(found, (property, functools.cached_property)):
        return READ
    target = found.func if isinstance(found, functools.partialmethod) else found
    if inspect.iscoroutinefunction(target) or inspect.isasyncgenfunction(target):
        return ASYNC
    if inspect.isfunction(found):
        return METHOD
    if hasattr(found, "cache_info") and inspect.isfunction(getattr(found, "__wrapped__", None)):
        return UNCACHED
    kind = type(found)
    if hasattr(kind, "__set__") or hasattr(kind, "__delete__"):
        return READ
    if callable(found) or hasattr(kind, "__get__"):
        return METHOD
    return READ


_SHAPES: weakref.WeakKeyDictionary[type, Shape] = weakref.WeakKeyDictionary()


def shape_of(cls: type) -> Shape:
    """The class's shape, inspected once (refusing what cannot be kept)."""
    shape = _SHAPES.get(cls)
    if shape is None:
        shape = _SHAPES[cls] = Shape(cls)
    return shape


__all__ = ["ITEM_BASES", "Shape", "class_path", "shape_of"]
