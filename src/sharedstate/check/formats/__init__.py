"""History formats besides our JSON Lines: Jepsen/Knossos EDN and Porcupine's JSON log.

Each reader returns our :class:`~sharedstate.check.history.Operation` list, and the
model the tool's own checker would use (with the tool's start value), so a history
from another tool gets the same verdict here without the user translating anything.
"""

from __future__ import annotations

from pathlib import Path

from ..history import HistoryError, Operation, parse_history
from . import jepsen, porcupine

FORMATS = ("jsonl", "jepsen", "porcupine")


def read_history_as(path: str | Path, fmt: str = "jsonl") -> tuple[list[Operation], str | None]:
    """(operations, the model the format suggests or None) for a history file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise HistoryError(f"cannot read history {path}: {exc.strerror}") from None
    if fmt == "jsonl":
        return parse_history(text.splitlines(), source=str(path)), None
    if fmt == "jepsen":
        ops = jepsen.parse_jepsen(text, source=str(path))
        return ops, jepsen.suggested_model(ops)
    if fmt == "porcupine":
        ops = porcupine.parse_porcupine(text, source=str(path))
        return ops, porcupine.suggested_model(ops)
    raise HistoryError(f"unknown history format {fmt!r}: use {', '.join(FORMATS)}")


def read_jepsen(path: str | Path) -> list[Operation]:
    return read_history_as(path, "jepsen")[0]


def read_porcupine(path: str | Path) -> list[Operation]:
    return read_history_as(path, "porcupine")[0]
