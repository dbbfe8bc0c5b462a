"""What a shared name may be: any non-empty text every store can hold as a key.

Two kinds of text some stores cannot hold, refused for every store so that an app that
works on one store works on all (and the error comes at once, naming the name, rather
than from deep inside a driver, or only after a move to another store):

* a NUL byte: PostgreSQL's ``text`` cannot contain it;
* a lone surrogate (``"\\udc80"``, as ``os.fsdecode`` and the ``surrogateescape`` error
  handler make): it is not valid Unicode, and no driver can encode it as UTF-8.
"""

from __future__ import annotations

from typing import Any

from .errors import InvalidNameError


def check_name(name: Any, what: str = "shared name") -> str:
    """Returns ``name`` when every store can hold it; else raises
    :class:`~sharedstate.errors.InvalidNameError` saying why."""
    if not isinstance(name, str) or not name:
        raise InvalidNameError(f"a {what} must be a non-empty string, not {name!r}")
    if "\x00" in name:
        raise InvalidNameError(
            f"the {what} {name!r} contains a NUL byte ('\\x00'), which PostgreSQL cannot "
            "store in a key; use a name without it"
        )
    try:
        name.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidNameError(
            f"the {what} {name!r} contains the lone surrogate {name[exc.start]!r}, which is not "
            "valid Unicode text (no store can encode it); decode the name's bytes properly, "
            "e.g. with errors='replace'"
        ) from None
    return name


__all__ = ["check_name"]
