"""The stored form of a record, and the call ids its writes carry.

A record is a small frame around the payload (an object's encoded state, a lock's token):
``b"\\0S" ids "|" hold "\\n" payload``. The ids are those of the last writes, one per
version in version order, so the engine can tell whether a write whose reply was lost took
effect; the hold is a lease (owner, ttl in seconds) that makes other writers wait. A record
without the frame (written by an embedded store, which keeps no ids, or by an earlier
version) is all payload. An empty payload is a tombstone: a deleted object, whose versions
never restart.
"""

from __future__ import annotations

import base64
import itertools
import os
from typing import TYPE_CHECKING

from .errors import CorruptStoreError

if TYPE_CHECKING:
    from .backends.base import PartsWrite

MAGIC = b"\x00S"
KEEP_IDS = 16  # call ids a record keeps: writes by others while a lost reply is resolved


class _Ids:
    """Call ids: a random per-process prefix and a counter (cheaper than os.urandom per
    call); a forked child draws a new prefix, so parent and child never share an id."""

    def __init__(self) -> None:
        self.reseed()

    def reseed(self) -> None:
        # 48 random bits in 8 characters (no ',', '|', ':' or newline among them): every
        # write carries the ids of the last ones, so each character is sent 16 times
        self.prefix = base64.urlsafe_b64encode(os.urandom(6)).decode("ascii")
        self.count = itertools.count(1)


_IDS = _Ids()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_IDS.reseed)


def new_id() -> str:
    """A call id unique across processes and hosts (48 random bits per process, then a
    per-process sequence number)."""
    return f"{_IDS.prefix}{next(_IDS.count):x}"


class Frame:
    """A record's contents: the payload, the recent call ids, and a hold if one is set.

    The ids are kept as stored (``id_text``: ASCII, comma-separated, oldest first, and
    ``id_count`` of them): a write drops the oldest and appends its own to that text, and a
    read takes it as it is, rather than splitting and joining sixteen strings on every
    call's path. Never changed once made (a plain class rather than a frozen dataclass: one
    is made on every call's hot path, and a frozen dataclass costs three times as much to
    make)."""

    __slots__ = ("payload", "id_text", "id_count", "hold")

    def __init__(
        self, payload: bytes, id_text: bytes = b"", id_count: int = 0,
        hold: tuple[str, float] | None = None,
    ) -> None:
        self.payload = payload
        self.id_text = id_text
        self.id_count = id_count
        self.hold = hold  # (owner, ttl in seconds)

    @property
    def ids(self) -> tuple[str, ...]:
        """The call ids, oldest first."""
        return tuple(self.id_text.decode("ascii").split(",")) if self.id_text else ()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Frame):
            return NotImplemented
        return (self.payload, self.id_text, self.hold) == (other.payload, other.id_text, other.hold)

    def __hash__(self) -> int:
        return hash((self.payload, self.id_text, self.hold))

    def __repr__(self) -> str:
        return f"Frame(payload={self.payload!r}, ids={self.ids!r}, hold={self.hold!r})"

    def encode(self) -> bytes:
        if self.hold is None:
            if not self.id_text:
                return self.payload  # no frame needed (what an embedded store always writes)
            return b"".join((MAGIC, self.id_text, b"|\n", self.payload))
        hold = f"{self.hold[0]}:{self.hold[1]!r}".encode()
        return b"".join((MAGIC, self.id_text, b"|", hold, b"\n", self.payload))

    def written(self, call_id: str | None, payload: bytes, hold: tuple[str, float] | None = None) -> Frame:
        """The frame a write with ``call_id`` leaves behind (None: a store that never loses
        a reply keeps no ids): the last ``KEEP_IDS`` ids, its own last."""
        if call_id is None:
            return Frame(payload, b"", 0, hold)
        count = self.id_count
        if not count:
            return Frame(payload, call_id.encode(), 1, hold)
        text = self.id_text
        if count < KEEP_IDS:
            return Frame(payload, text + b"," + call_id.encode(), count + 1, hold)
        if count == KEEP_IDS:  # the usual case: drop the oldest
            text = text[text.index(b",") + 1 :]
        else:
            text = b",".join(text.split(b",")[-(KEEP_IDS - 1) :])
        return Frame(payload, text + b"," + call_id.encode(), KEEP_IDS, hold)

    def applied(self, version: int, expected: int | None, call_id: str) -> bool | None:
        """Whether the write with ``call_id`` that expected version ``expected`` is part of
        this frame's record (at ``version``): ids sit in version order, the last one at
        ``version``, so the write, had it applied, sits at a known place. None: that place
        is beyond the ids kept, so the record cannot tell."""
        ids = self.ids
        place = len(ids) - 1 - (version - ((expected or 0) + 1))
        if place >= len(ids):
            return False  # the record is older than the write would have made it
        if place < 0:
            return None
        return ids[place] == call_id


class Split:
    """What a change writes to a record with parts: the head's payload and the changes to
    its parts (``backends.base.PartsWrite``), written in one atomic step."""

    __slots__ = ("head", "parts")

    def __init__(self, head: bytes, parts: PartsWrite) -> None:
        self.head = head
        self.parts = parts


EMPTY = Frame(b"")


def decode_frame(data: bytes) -> Frame:
    """The frame of a stored record; a damaged frame is a corrupt store, never a guess."""
    if not data.startswith(MAGIC):
        return Frame(data)
    end = data.find(b"\n")
    if end < 0 or not data[2:end].isascii():
        raise CorruptStoreError(
            "a stored record's header is damaged: "
            + ("it has no end" if end < 0 else "it is not ASCII")
        )
    bar = data.find(b"|", 2, end)
    if bar < 0:  # ids and no hold
        bar = end
    held = None
    if bar + 1 < end:  # a hold
        owner, _, ttl = data[bar + 1 : end].decode("ascii").partition(":")
        try:
            held = (owner, float(ttl))
        except ValueError as exc:  # a ttl that is no number
            raise CorruptStoreError(f"a stored record's header is damaged: {exc}") from None
    ids = data[2:bar]
    return Frame(data[end + 1 :], ids, ids.count(b",") + 1 if ids else 0, held)


__all__ = ["EMPTY", "KEEP_IDS", "MAGIC", "Frame", "Split", "decode_frame", "new_id"]
