"""A dict that knows which of its keys a call changed: how a large dict attribute is
stored one entry per part (``parted.py``) without comparing the whole dict after a call.

A dict attribute stored per entry comes back as a :class:`TrackedDict`: a ``dict``
subclass, so the user's code sees a dict (``isinstance``, equality, ``json.dumps``,
iteration, ``copy()`` giving a plain dict). Each method that changes it notes, for each
key it changes, the value the key had before (its undo log), so that:

* the write after a call sends only the entries of the keys in the log;
* a call that raises, or an attempt the engine runs again after a conflict, is undone by
  putting those values back, at the cost of what the call changed.

Only dicts whose keys are ``str`` or ``int`` and whose values are immutable (numbers,
strings, bytes, None, and tuples or frozensets of those) are stored per entry: a value
that can change in place (a list in the dict) could change without the dict seeing it.
Storing such a value, or ``clear()``, marks the dict *spoiled*: the next write stores it
again as a whole (and decides anew how to store it).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

_ABSENT: Any = object()
SCALARS = frozenset(
    {str, int, float, bool, bytes, type(None), complex, Decimal, uuid.UUID}
    | {dt.datetime, dt.date, dt.time, dt.timedelta}
)


def immutable(value: Any) -> bool:
    """Whether ``value`` can never change in place (so an unchanged identity is an
    unchanged value)."""
    kind = type(value)
    if kind in SCALARS:
        return True
    if kind is tuple or kind is frozenset:
        return all(immutable(item) for item in value)
    return False


def keyable(key: Any) -> bool:
    """Whether ``key`` can name a part (see ``parted.py``): a str that UTF-8 can encode
    and that holds no NUL (which SQL text cannot), or an int."""
    kind = type(key)
    if kind is int:
        return True
    if kind is not str or "\x00" in key:
        return False
    if key.isascii():
        return True
    try:
        key.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class TrackedDict(dict):  # type: ignore[type-arg]
    """A dict noting the keys a call changed (see the module docstring)."""

    __slots__ = ("undo", "inserted", "spoiled")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.undo: dict[Any, Any] = {}  # key -> its value before the changes (or _ABSENT)
        #: the keys the changes put in (new, or deleted and set again: now at the end), in
        #: the order they went in; a dict's order is part of its state
        self.inserted: dict[Any, None] = {}
        self.spoiled = False

    # -- bookkeeping ---------------------------------------------------------------------
    def _note(self, key: Any) -> None:
        if key not in self.undo:
            self.undo[key] = dict.get(self, key, _ABSENT)

    def _check(self, key: Any, value: Any) -> None:
        if not self.spoiled and not (keyable(key) and immutable(value)):
            self.spoiled = True

    def changed_keys(self) -> Iterable[Any]:
        return self.undo.keys()

    def commit(self) -> None:
        """The changes are stored: the log starts again."""
        self.undo.clear()
        self.inserted.clear()

    def rollback(self) -> bool:
        """Puts back every value changed since the last commit; False when a key that was
        deleted had to be put back, which puts it at the end rather than where it was (the
        caller then reads the dict anew)."""
        in_place = True
        for key, value in self.undo.items():
            if value is _ABSENT:
                dict.pop(self, key, None)
            else:
                if key not in self:
                    in_place = False
                dict.__setitem__(self, key, value)
        self.undo.clear()
        self.inserted.clear()
        self.spoiled = False
        return in_place

    def load(self, key: Any, value: Any, to_end: bool = False) -> None:
        """Sets an entry read from the store (not a change of this process); ``to_end``:
        it was put in anew, after every key there is."""
        if to_end:
            dict.pop(self, key, None)
        dict.__setitem__(self, key, value)

    def unload(self, key: Any) -> None:
        dict.pop(self, key, None)

    # -- the changing methods of dict ----------------------------------------------------
    def __setitem__(self, key: Any, value: Any) -> None:
        self._check(key, value)
        self._note(key)
        if key not in self:
            self.inserted[key] = None
        dict.__setitem__(self, key, value)

    def __delitem__(self, key: Any) -> None:
        if key in self:
            self._note(key)
            self.inserted.pop(key, None)
        dict.__delitem__(self, key)

    def pop(self, key: Any, *default: Any) -> Any:
        if key in self:
            self._note(key)
            self.inserted.pop(key, None)
        return dict.pop(self, key, *default)

    def popitem(self) -> tuple[Any, Any]:
        if self:
            last = next(reversed(self))
            self._note(last)
            self.inserted.pop(last, None)
        return dict.popitem(self)

    def setdefault(self, key: Any, default: Any = None) -> Any:
        if key not in self:
            self._check(key, default)
            self._note(key)
            self.inserted[key] = None
        return dict.setdefault(self, key, default)

    def update(self, *args: Any, **kwargs: Any) -> None:
        for key, value in dict(*args, **kwargs).items():
            self[key] = value

    def __ior__(self, other: Any) -> TrackedDict:  # type: ignore[override,misc]
        self.update(other)
        return self

    def clear(self) -> None:
        for key in self:
            self._note(key)
        self.spoiled = True
        dict.clear(self)

    # -- what makes it a plain dict outside ----------------------------------------------
    def __reduce_ex__(self, protocol: Any) -> Any:
        """Copies and pickles of it are plain dicts."""
        return (dict, (dict(self),))

    def __repr__(self) -> str:
        return dict.__repr__(self)


def plain(value: Any) -> Any:
    """``value``, a tracked dict made a plain one (what a read hands out)."""
    return dict(value) if type(value) is TrackedDict else value


__all__ = ["TrackedDict", "immutable", "keyable", "plain"]
