"""Where, in a state that cannot be stored, the offending value sits.

A codec that fails raises :class:`~sharedstate.errors.SerializationError` with a ``path``
(``["s", "attribute", 3, "key"]``), so that the store can name the attribute and the user
can find the value. These walks run only after encoding failed: the hot path pays nothing
for the messages. Kept apart from ``codecs.py`` so that the codecs stay readable.
"""

from __future__ import annotations

import dataclasses
import enum
import pickle
from collections.abc import Callable
from typing import Any

from .errors import SerializationError

#: deeper than this, nested state is refused even without a cycle (Python's own recursion
#: limit would stop the encoder a little further down, with a less useful message)
MAX_DEPTH = 500


class Unencodable(Exception):
    """Internal: a value the codec cannot store (the public error is built from it)."""


def _children(value: Any) -> list[tuple[Any, Any]] | None:
    """The (key, child) pairs a codec walks into, or None for a leaf."""
    if isinstance(value, dict):
        return list(value.items())
    if isinstance(value, (list, tuple)):
        return list(enumerate(value))
    if isinstance(value, (set, frozenset)):
        return list(enumerate(value))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [(f.name, getattr(value, f.name)) for f in dataclasses.fields(value)]
    if isinstance(value, enum.Enum):
        return [("value", value.value)]
    return None


def find_unencodable(value: Any, to_plain: Callable[[Any], Any]) -> tuple[list[Any], Any] | None:
    """Returns (path, value) of the first value ``to_plain`` cannot convert, or None."""
    try:
        to_plain(value)
        return None
    except Unencodable:
        pass
    children = _children(value)
    if children is None or isinstance(value, enum.Enum):
        return [], value
    for key, child in children:
        if isinstance(value, dict):
            found = find_unencodable(key, to_plain)
            if found is not None:
                return [key, *found[0]], found[1]
        found = find_unencodable(child, to_plain)
        if found is not None:
            return [key, *found[0]], found[1]
    return [], value


def find_cycle(value: Any) -> tuple[list[Any], bool] | None:
    """The path to the first container found inside itself (True), or to where nesting
    passes :data:`MAX_DEPTH` (False); None when neither. Iterative, since the state that
    got here already exhausted the recursion limit once."""
    on_path: set[int] = set()
    stack: list[tuple[Any, list[Any], bool]] = [(value, [], False)]
    while stack:
        node, path, leaving = stack.pop()
        if leaving:
            on_path.discard(id(node))
            continue
        children = _children(node)
        if children is None:
            continue
        if id(node) in on_path:
            return path, True
        if len(path) > MAX_DEPTH:
            return path, False
        on_path.add(id(node))
        stack.append((node, path, True))
        stack.extend((child, [*path, key], False) for key, child in reversed(children))
    return None


def find_bad_text(value: Any) -> tuple[list[Any], str] | None:
    """The path of the first string (value or dict key) that is not valid Unicode text (a
    lone surrogate, as ``os.fsdecode`` or ``surrogateescape`` produce), and that string."""
    stack: list[tuple[Any, list[Any]]] = [(value, [])]
    while stack:
        node, path = stack.pop()
        if isinstance(node, str):
            try:
                node.encode("utf-8")
            except UnicodeEncodeError:
                return path, node
            continue
        children = _children(node)
        if children is None:
            continue
        if isinstance(node, dict):
            stack.extend((key, [*path, key]) for key in node)
        stack.extend((child, [*path, key]) for key, child in reversed(children))
    return None


def find_unpicklable(value: Any) -> tuple[list[Any], Any]:
    """The path of the first value pickle refuses, descending into dicts, lists, tuples."""

    def probe(item: Any) -> bool:
        try:
            pickle.dumps(item)
            return True
        except Exception:
            return False

    path: list[Any] = []
    while True:
        if isinstance(value, dict):
            children = list(value.items())
        elif isinstance(value, (list, tuple)):
            children = list(enumerate(value))
        else:
            return path, value
        for key, child in children:
            if not probe(child):
                path.append(key)
                value = child
                break
        else:
            return path, value


def where(path: list[Any]) -> str:
    """``['s']['items'][0]``, or "top level"."""
    return "".join(f"[{p!r}]" for p in path) or "top level"


def serialization_error(message: str, path: list[Any]) -> SerializationError:
    """The public error, carrying the path the store turns into an attribute name."""
    error = SerializationError(message)
    error.path = path  # type: ignore[attr-defined]
    return error


def unencodable_error(
    codec: str, path: list[Any], bad: Any, cause: BaseException | None = None
) -> SerializationError:
    detail = f" ({cause})" if cause is not None else ""
    return serialization_error(
        f"the {codec} codec cannot store a value of type {type(bad).__name__} at "
        f"{where(path)}{detail}",
        path,
    )


def nesting_error(codec: str, value: Any) -> SerializationError:
    """For a state that overflowed the recursion limit: a cycle, or nesting too deep."""
    found = find_cycle(value)
    if found is None:
        return serialization_error(
            f"the {codec} codec cannot store this state: it is nested too deeply", []
        )
    path, cycle = found
    if cycle:
        return serialization_error(
            f"the {codec} codec cannot store a value that contains itself, at {where(path)} "
            "(JSON has no references): break the cycle, or use codec='pickle'",
            path,
        )
    return serialization_error(
        f"the {codec} codec cannot store state nested more than {MAX_DEPTH} levels deep, "
        f"at {where(path[:4])}...",
        path,
    )


def bad_text_error(codec: str, value: Any, cause: UnicodeEncodeError) -> SerializationError:
    """For a state holding a string that is not valid Unicode (UTF-8 cannot encode it)."""
    found = find_bad_text(value)
    path, text = found if found is not None else ([], cause.object)
    bad = text[cause.start : cause.end] if found is None else _first_surrogate(text)
    return serialization_error(
        f"the {codec} codec cannot store a string holding the lone surrogate {bad!r} at "
        f"{where(path)}: it is not valid Unicode text; store it as bytes (e.g. "
        "text.encode('utf-8', 'surrogateescape')), or use codec='pickle'",
        path,
    )


def _first_surrogate(text: str) -> str:
    return next((ch for ch in text if 0xD800 <= ord(ch) <= 0xDFFF), "")
