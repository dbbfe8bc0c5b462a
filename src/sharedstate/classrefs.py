"""Classes named inside stored state: finding them again, and reading state without them.

A codec stores a nested dataclass or Enum member with its class's path (``module:Qualname``),
so that reading it gives back the same type. Two things make a path harder to follow than
``importlib.import_module``:

* **``__main__``.** ``python app.py`` names the classes of ``app.py`` ``__main__:Point``;
  ``gunicorn app:app`` names them ``app:Point``. A path written by one must read under the
  other: ``__main__:Point`` is looked up in ``__main__`` first, then in the module of the
  shared class being read (a script's nested classes live beside its shared class, and
  ``gunicorn app:app`` imported that module as ``app``); ``app:Point``,
  while ``app.py`` runs as ``__main__`` and ``app`` was never imported, is the class of
  ``__main__`` (importing the script a second time would make a second, different class,
  and run its module code again).
* **Reading without the class** (``Store.inspect``, ``flask sharedstate show``): a tool
  shows state whose classes it cannot import. There a class that cannot be found becomes a
  :class:`Stored` stand-in that shows its path and its fields, instead of an error.

Classes change between deploys: :func:`make_dataclass` builds a stored dataclass value
with the fields its class has now (a missing field takes its default or default_factory, a
field the class no longer has is dropped), for every codec.
"""

from __future__ import annotations

import dataclasses
import importlib
import io
import os
import pickle
import sys
import threading
from typing import Any

from .errors import CorruptStoreError

_FOUND: dict[Any, type] = {}
_LOCK = threading.Lock()
_MAIN = threading.local()  # .module: where this thread's decode looks for __main__ classes


def main_module(module: str | None) -> str | None:
    """Sets the module in which this thread looks for ``__main__`` classes (that of the
    shared class being read: nested classes of a script live beside its shared class);
    returns the previous one, to set back."""
    previous = getattr(_MAIN, "module", None)
    _MAIN.module = module
    return previous


def same_class(stored: str, expected: str) -> bool:
    """Class paths match; a class run as ``__main__`` matches its importable twin, since
    ``python app.py`` and ``gunicorn app:app`` name the same class differently."""
    if stored == expected:
        return True
    stored_module, _, stored_name = stored.partition(":")
    expected_module, _, expected_name = expected.partition(":")
    return stored_name == expected_name and "__main__" in (stored_module, expected_module)


def import_class(path: str) -> type:
    """The class stored as ``path`` (see the module docstring); found once per process."""
    key: Any = path
    if path.startswith("__main__:"):
        key = (path, getattr(_MAIN, "module", None))
    found = _FOUND.get(key)
    if found is None:
        module_name, _, qualname = path.partition(":")
        found = _find(module_name, qualname)
        if found is None:
            raise CorruptStoreError(f"stored value refers to class {path!r}, which cannot be imported")
        with _LOCK:
            _FOUND[key] = found
    return found


def _attribute_path(module: Any, qualname: str) -> Any:
    target = module
    for part in qualname.split("."):
        target = getattr(target, part, None)
        if target is None:
            return None
    return target if isinstance(target, type) else None


def _main_twin(module_name: str) -> Any:
    """``__main__`` when it is the file that ``module_name`` names (``python app.py``)."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if not path or module_name in sys.modules:
        return None
    stem = os.path.splitext(os.path.basename(path))[0]
    return main if stem == module_name.rpartition(".")[2] else None


def _find(module_name: str, qualname: str) -> type | None:
    if module_name == "__main__":
        main = sys.modules.get("__main__")
        found = _attribute_path(main, qualname) if main is not None else None
        if found is not None:
            return found
        twin_name = getattr(_MAIN, "module", None)
        if twin_name and twin_name != "__main__" and twin_name in sys.modules:
            return _attribute_path(sys.modules[twin_name], qualname)
        return None
    twin = _main_twin(module_name)
    if twin is not None:
        found = _attribute_path(twin, qualname)
        if found is not None:
            return found
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return None
    return _attribute_path(module, qualname)


def make_dataclass(cls: type, fields: dict[str, Any], path: str = "") -> Any:
    """A dataclass value with ``fields``, built without ``__init__``/``__post_init__``
    (restoring state must not run the user's constructor logic), fitted to the class as it
    is now: a field the stored value lacks takes its default or default_factory (one
    without either stays unset, for the shared class's ``__setstate__`` to fill), a stored
    field the class no longer has is dropped."""
    if not dataclasses.is_dataclass(cls):
        raise CorruptStoreError(f"{path or cls!r} is stored as a dataclass but is not one")
    if not isinstance(fields, dict):
        raise CorruptStoreError(f"stored dataclass value {path!r} is malformed: its fields are not a mapping")
    instance = cls.__new__(cls)
    for field in dataclasses.fields(cls):
        if field.name in fields:
            value = fields[field.name]
        elif field.default is not dataclasses.MISSING:
            value = field.default
        elif field.default_factory is not dataclasses.MISSING:
            value = field.default_factory()
        else:
            continue
        object.__setattr__(instance, field.name, value)
    return instance


def pickled_dataclass(path: str, fields: dict[str, Any]) -> Any:
    """What a pickled dataclass value calls when it is read (see :class:`EvolvingPickler`)."""
    return make_dataclass(import_class(path), fields, path)


class EvolvingPickler(pickle.Pickler):
    """Pickles dataclass values by their class path and fields, so that reading them follows
    the class as it is then (:func:`make_dataclass`) and finds a ``__main__`` class under
    another name, as the JSON codec does."""

    def reducer_override(self, obj: Any) -> Any:
        kind = type(obj)
        if "__dataclass_fields__" in getattr(kind, "__dict__", ()) and not isinstance(obj, type):
            fields = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj) if hasattr(obj, f.name)}
            return pickled_dataclass, (f"{kind.__module__}:{kind.__qualname__}", fields)
        return NotImplemented


def pickle_dumps(value: Any) -> bytes:
    buffer = io.BytesIO()
    EvolvingPickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(value)
    return buffer.getvalue()


class Stored:
    """A stored instance or Enum member whose class this process cannot import, as a tool
    shows it: ``app:Point(x=1, y=2)``, ``app:Color(1)``."""

    def __init__(self, path: str, fields: dict[str, Any] | None = None, args: tuple[Any, ...] = ()) -> None:
        self.path = path
        self.fields = dict(fields or {})
        self.args = args

    def __repr__(self) -> str:
        inside = [repr(a) for a in self.args] + [f"{k}={v!r}" for k, v in self.fields.items()]
        return f"{self.path}({', '.join(inside)})"

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Stored)
            and (self.path, self.fields, self.args) == (other.path, other.fields, other.args)
        )

    __hash__ = None  # type: ignore[assignment]


class _Placeholder:
    """Made per missing class while unpickling without it (see :class:`ToolUnpickler`)."""

    _path = ""

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        instance = super().__new__(cls)
        instance.__dict__["_args"] = args
        return instance

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        self.__dict__["_state"] = state


class ToolUnpickler(pickle.Unpickler):
    """Unpickles with stand-ins for classes this process cannot import."""

    def find_class(self, module: str, name: str) -> Any:
        if module == __name__ and name == "pickled_dataclass":
            return _tool_dataclass
        try:
            return super().find_class(module, name)
        except (ImportError, AttributeError):
            try:
                return import_class(f"{module}:{name}")
            except CorruptStoreError:
                return type(name, (_Placeholder,), {"_path": f"{module}:{name}"})


def _tool_dataclass(path: str, fields: dict[str, Any]) -> Any:
    try:
        return pickled_dataclass(path, fields)
    except CorruptStoreError:
        return Stored(path, fields)


def shown(value: Any) -> Any:
    """``value`` with placeholders from :class:`ToolUnpickler` turned into :class:`Stored`."""
    if isinstance(value, _Placeholder):
        state = value.__dict__.get("_state")
        fields = state if isinstance(state, dict) else ({"state": state} if state is not None else {})
        return Stored(type(value)._path, {k: shown(v) for k, v in fields.items()}, value.__dict__["_args"])
    if isinstance(value, Stored):
        return Stored(value.path, shown(value.fields), shown(value.args))
    if isinstance(value, dict):
        return {k: shown(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return type(value)(shown(v) for v in value)
    return value


class MainAwareUnpickler(pickle.Unpickler):
    """Finds a class pickled as ``__main__``'s under its importable name, and the reverse."""

    def find_class(self, module: str, name: str) -> Any:
        if module == "__main__" or _main_twin(module) is not None:
            try:
                return import_class(f"{module}:{name}")
            except CorruptStoreError:
                pass
        return super().find_class(module, name)


__all__ = [
    "EvolvingPickler",
    "MainAwareUnpickler",
    "Stored",
    "ToolUnpickler",
    "import_class",
    "main_module",
    "make_dataclass",
    "pickle_dumps",
    "shown",
]
