"""Large objects as a head and parts: a call costs what it changes, not what the object holds.

An object is one record while it is small. Once one of its attributes encodes to more than
``PART_FROM`` bytes (and the store keeps parts: ``Backend.keeps_parts``), the object is
stored *parted*: a small head record plus parts (``backends/base.py``):

* the head: the class, the small attributes, the layout (which attributes are parts) and a
  *generation*, a random id drawn whenever the layout is written anew;
* a large dict attribute whose keys are str or int and whose values are immutable: a
  *base* part, ``b<attribute>``, the whole dict as the layout was written, and one
  *override* part per entry changed since, ``e<attribute>\\x1f<key>`` (empty: deleted);
  it comes back as a :class:`~sharedstate.tracked.TrackedDict`, which notes the keys a
  call changes. Once more than half the dict's keys (at least ``COMPACT_FROM``) have
  overrides, the layout is written anew, the overrides folded into the base: a write of
  the whole dict for every so many one-key writes, so a call costs O(1) on average and
  the parts stay O(size of the dict);
* any other large attribute: one part, ``a<attribute>``, written when its encoding
  changed (an attribute whose value is immutable and still the same object is not even
  encoded).

A call then writes the head and the parts it changed; a call that changes only small
attributes writes the head alone, as a small object does. The instance of this process is
kept between calls (:class:`PartedState`), together with the record it holds: when another
process wrote meanwhile, the engine loads the parts written since that record
(``Engine.parts_since``) and they are applied to the instance, so a stale process reads
what changed, not the whole object. Each attempt can be undone at the cost of what it
changed (a call that raises changes nothing; an attempt that lost a race runs again on
the newer state).

The layout is written anew (every part, ``reset``) when it no longer fits: an attribute
grew past ``PART_FROM``, a parted attribute was replaced or removed, or a tracked dict was
cleared or given a mutable value. Such a call costs what a call on a one-record object of
that size costs. Only plain classes (state in ``__dict__``, no ``__getstate__`` /
``__setstate__``, no items of their own) are parted.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .backends.base import Record
from .errors import CorruptStoreError
from .tracked import SCALARS, TrackedDict, immutable, keyable

if TYPE_CHECKING:
    from .codecs import Codec
    from .objects import Objects, ObjectSpec

#: what a parted head's payload starts with (no codec's output does)
PARTED = b"\x01P"
#: an attribute whose encoding is longer than this (bytes) is stored as part(s) of its own
PART_FROM = 8192
#: overridden keys of a dict before its base is written anew (or half its keys, if more)
COMPACT_FROM = 1024
SEP = "\x1f"


def is_parted(payload: bytes) -> bool:
    return payload[:2] == PARTED


def can_part(objects: Objects, spec: ObjectSpec) -> bool:
    """Whether objects of ``spec``'s class may be stored parted in this store."""
    shape = spec.shape
    return (
        objects.engine.backend.keeps_parts
        and shape.has_dict
        and not shape.custom_get
        and not shape.custom_set
        and shape.item_base is None
        and not shape.slots
        and not shape.transient
        and not shape.class_mutables
    )


def entry_part(name: str, key: Any) -> str:
    """The name of the override part of ``key`` of the dict attribute ``name``."""
    return f"e{name}{SEP}{'s' if type(key) is str else 'i'}{key}"


def key_of_part(code: str) -> Any:
    """The dict key an override part's name codes (see :func:`entry_part`)."""
    return code[1:] if code[0] == "s" else int(code[1:])


class Head:
    """A parted head's payload: ``PARTED``, the length of the layout, the layout (class,
    part attributes, generation) and the small attributes, each as the codec writes it."""

    __slots__ = ("small_bytes", "wholes", "exploded", "generation", "class_path")

    def __init__(self, codec: Codec, payload: bytes, tool: bool = False) -> None:
        try:
            size, _, rest = payload[len(PARTED) :].partition(b":")
            cut = int(size)
            layout = codec.loads(rest[:cut], tool)
            self.small_bytes = rest[cut:]
            self.class_path: str = layout["c"]
            self.wholes: list[str] = layout["w"]
            self.exploded: list[str] = layout["e"]
            self.generation: str = layout["g"]
        except (ValueError, KeyError, TypeError) as exc:
            raise CorruptStoreError(f"a stored object's head is damaged: {exc!r}") from None

    @staticmethod
    def layout(codec: Codec, spec: ObjectSpec, wholes: Sequence[str], exploded: Sequence[str], generation: str) -> bytes:
        """The head's bytes before its small attributes (the same for every call until the
        layout is written anew)."""
        layout = codec.dumps({"c": spec.class_path, "w": sorted(wholes), "e": sorted(exploded), "g": generation})
        return b"%s%d:%s" % (PARTED, len(layout), layout)


class PartedState:
    """The instance of a parted object this process keeps, and the record it holds."""

    __slots__ = (
        "record", "instance", "small", "wholes", "exploded", "generation", "snapshot", "pending", "aliased",
        "overridden", "pending_keys", "layout", "broken",
    )

    def __init__(
        self, record: Record | None, instance: Any, small: bytes, wholes: dict[str, bytes],
        exploded: frozenset[str], generation: str,
    ) -> None:
        self.record = record
        self.instance = instance
        self.small = small  # the head's small attributes, as encoded
        self.wholes = wholes  # attribute -> its part, as stored
        self.exploded = exploded  # attributes stored one entry per part
        self.generation = generation
        self.snapshot: dict[str, Any] | None = None  # the instance's attributes before the attempt
        #: what the attempt's write stores, taken over once it applied: (small, wholes,
        #: exploded, generation)
        self.pending: tuple[bytes, dict[str, bytes], frozenset[str], str] | None = None
        #: a call's argument or result could not be copied: the caller may hold a
        #: handle into the instance, which is then not kept
        self.aliased = False
        #: per dict stored as a base and overrides: the keys that have an override part,
        #: with their place (see ``stamped``)
        self.overridden: dict[str, dict[Any, int]] = {name: {} for name in exploded}
        #: the overrides the attempt writes (taken over once it applied)
        self.pending_keys: list[tuple[str, Any, int]] = []
        #: an undo could not put a dict's order back: the state is read anew
        self.broken = False
        self.layout: bytes | None = None  # the head's layout part, as encoded (``Head``)


def stamped(data: bytes) -> tuple[int, bytes]:
    """An override's place and value. Its place: 0, where the key is in the base; else the
    stamp of the write that put it in, ``(version << 32) + its rank in that write``, so
    keys put in anew follow the base in the order they went in."""
    stamp, _, value = data.partition(b":")
    try:
        return int(stamp), value
    except ValueError:
        raise CorruptStoreError(f"a stored entry's place is damaged: {stamp[:20]!r}") from None


def explodable(name: str, value: Any) -> bool:
    """Whether a large attribute is a dict kept as a base and overrides."""
    if type(value) not in (dict, TrackedDict) or SEP in name:
        return False
    scalars = SCALARS
    for key, item in value.items():
        if (type(key) is not str or not key.isascii() or "\x00" in key) and not keyable(key):
            return False
        if type(item) not in scalars and not immutable(item):
            return False
    return True


__all__ = ["COMPACT_FROM", "PARTED", "PART_FROM", "SEP", "Head", "PartedState", "can_part", "entry_part", "explodable", "is_parted", "key_of_part", "stamped"]
