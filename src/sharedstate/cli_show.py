"""What ``flask sharedstate`` and ``manage.py sharedstate`` print: one module, so that both
commands list, show and reset in the same words, and a script written against one reads
the other.

The functions write through an ``echo`` function and report failures as
:class:`CommandFailed`; each framework turns that into its own error (click's
``ClickException``, Django's ``CommandError``), which exits with status 1. URLs are always
printed redacted: a password in ``SHAREDSTATE_URL`` never reaches a terminal or a log.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from .backends import redact_url
from .errors import SharedStateError
from .store import Store

Echo = Callable[[str], None]


class CommandFailed(Exception):
    """A reason the command cannot do what was asked (the message is for the user)."""


def show(store: Store, url: str, declared: dict[str, str], name: str | None, echo: Echo) -> None:
    """Lists every stored or declared name (``name`` None), or shows one name's state.

    ``declared`` maps names declared in the app (not necessarily stored yet) to their
    class's name. State is read without its classes (``Store.inspect``); an object that
    cannot be read at all is reported as such, never as a traceback."""
    stored = dict((each, kind) for kind, each in store.names())
    if name is None:
        echo(f"store: {redact_url(url)}")
        if store.prefix:
            echo(f"prefix: {store.prefix}")
        if not stored and not declared:
            echo("nothing stored yet")
        for each in sorted(set(stored) | set(declared)):
            kind = stored.get(each)
            if kind is None:
                echo(f"  object   {each}  ({declared[each]}, declared, nothing stored yet)")
            elif kind == "object":
                try:
                    inspected = store.inspect(each) or {}
                except SharedStateError as exc:  # one unreadable name never hides the others
                    echo(f"  object   {each}  (unreadable: {exc})")
                    continue
                echo(f"  object   {each}  {format_state(inspected.get('state'))}")
            elif kind == "counter":
                echo(f"  counter  {each}  {store.counter(each).get()}")
            else:
                echo(f"  lock     {each}  {lock_state(store, each)}")
        return
    kind = stored.get(name)
    if kind == "object":
        try:
            inspected = store.inspect(name) or {}
        except SharedStateError as exc:
            raise CommandFailed(f"object {name} cannot be read: {exc}") from None
        echo(f"object {name} ({inspected.get('class')}, version {inspected.get('version')})")
        state = inspected.get("state")
        for attribute, value in state.items() if isinstance(state, dict) else [("state", state)]:
            echo(f"  {attribute} = {value!r}")
        if "items" in inspected:
            echo(f"  items = {inspected['items']!r}")
    elif kind == "counter":
        echo(f"counter {name} = {store.counter(name).get()}")
    elif kind == "lock":
        echo(f"lock {name}: {lock_state(store, name)}")
    elif name in declared:
        echo(f"object {name} ({declared[name]}): declared, nothing stored yet")
    else:
        raise CommandFailed(f"nothing named {name!r} in {redact_url(url)}")


def reset_question(url: str, name: str) -> str:
    """The confirmation asked before a reset (answered by ``--yes`` in scripts)."""
    return f"Reset {name!r} in {redact_url(url)}? Its state is lost"


def reset(store: Store, url: str, name: str, echo: Echo) -> None:
    """Forgets object or counter ``name`` (an object's factory runs again on next use)."""
    if not store.delete(name):
        raise CommandFailed(f"nothing named {name!r} in {redact_url(url)}")
    echo(f"reset {name}")


def format_state(state: Any) -> str:
    """An object's attributes on one line, cut at 100 characters."""
    if not isinstance(state, dict):
        return repr(state)
    text = ", ".join(f"{k}={v!r}" for k, v in state.items())
    return text if len(text) <= 100 else text[:97] + "..."


def lock_state(store: Store, name: str) -> str:
    """Whether lock ``name`` is held, by which token and for how long, read from its record."""
    record = store.backend.load(store.prefix + "l:" + name)
    try:
        state: Any = json.loads(record.data) if record is not None and record.data else {}
    except ValueError:
        return "damaged lease record"
    if state.get("o") and state.get("e", 0) > time.time():
        return f"held (token {state.get('t')}, {state.get('e') - time.time():.1f} s left)"
    return f"free (last token {state.get('t', 0)})"


__all__ = ["CommandFailed", "format_state", "lock_state", "reset", "reset_question", "show"]
