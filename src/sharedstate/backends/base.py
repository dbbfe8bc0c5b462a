"""The one interface every store speaks.

A backend stores opaque, versioned records under string keys, plus integer counters.
That is all the layers above need: the atomic step (``engine.py``: the cache, deadlines,
holds, call ids), combining, the proxies, transactions and locks are written once, on top
of these few operations:

* ``load(key)``: the record and its version, one round trip.
* ``compare_and_set(key, expected, data)``: write ``data`` as the next version only if the
  stored version is still ``expected`` (``None``: only if absent). On a conflict it returns
  the current record, so that a retry costs one more round trip, not a read and a write.
  No backend ever holds a lock while user code runs: the engine runs the method between
  the load and the compare-and-set.
* **Parts** (backends with ``keeps_parts``): a large object is stored as a small head
  record plus *parts* (``Parts``, ``PartsWrite``), so that a call writes only the parts
  it changed, and a process whose copy is at version ``v`` reads only the parts written
  after ``v`` (``load(key, since=v)``), in the same atomic step as the head.
* ``counter_add/get/set``: native atomic counters (Redis ``INCR``, SQL ``UPDATE ... RETURNING``);
  ``counter_outcome`` tells, after a lost reply, whether an add took effect (call ids).

Versions start at 1 and grow by one on every write, so a version seen once is never seen
again for other contents (the store caches records by version).
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Iterable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from ..errors import CounterOverflowError, InvalidURLError


@dataclass(frozen=True, slots=True)
class Parts:
    """The parts of a record that a ``load(key, since=...)`` found, read in the same
    snapshot as its head.

    ``since == 0``: ``changed`` holds every part there is (``removed`` is empty).
    ``since > 0``: ``changed`` holds the parts written at a version after ``since``, and
    ``removed`` the names of parts removed after ``since`` (known from their tombstones)."""

    since: int
    changed: dict[str, bytes]
    removed: tuple[str, ...] = ()


class PartsWrite:
    """What a compare-and-set changes in a record's parts, in the same atomic step as its
    head: each part of ``changed`` is written (``None``: removed, leaving a tombstone),
    stamped with the new version. ``reset``: every part there was is removed first, with
    no tombstones (the writer records the reset in the head, so readers load anew).

    Never changed once made (a plain class: one is made on every call that writes parts)."""

    __slots__ = ("changed", "reset")

    def __init__(self, changed: dict[str, bytes | None], reset: bool = False) -> None:
        self.changed = changed
        self.reset = reset

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PartsWrite):
            return NotImplemented
        return (self.changed, self.reset) == (other.changed, other.reset)

    __hash__ = None  # type: ignore[assignment]  # (it holds a dict)

    def __repr__(self) -> str:
        return f"PartsWrite(changed={self.changed!r}, reset={self.reset!r})"


class Record:
    """A stored value: its bytes and the version that identifies them; ``parts``: what a
    load with ``since`` found of its parts (None: not asked for).

    Never changed once made (a plain class rather than a frozen dataclass: one is made on
    every call's path, and a frozen dataclass costs three times as much to make)."""

    __slots__ = ("version", "data", "parts")

    def __init__(self, version: int, data: bytes, parts: Parts | None = None) -> None:
        self.version = version
        self.data = data
        self.parts = parts

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Record):
            return NotImplemented
        return (self.version, self.data, self.parts) == (other.version, other.data, other.parts)

    def __hash__(self) -> int:
        return hash((self.version, self.data))

    def __repr__(self) -> str:
        return f"Record(version={self.version!r}, data={self.data!r}, parts={self.parts!r})"


#: Versions a tombstone of a removed part is kept for: a write at version V may purge the
#: tombstones stamped V - KEEP_REMOVED or older, so a reader further behind than that
#: must load every part (``since=0``) rather than the changes.
KEEP_REMOVED = 4096


#: "Not known": a record not yet read, an outcome a backend cannot tell.
UNKNOWN: Any = object()

#: The deadline (``time.monotonic()``) of the step the current request belongs to.
_DEADLINE: ContextVar[float | None] = ContextVar("sharedstate_deadline", default=None)


class deadline_scope:  # noqa: N801 - used as a plain ``with`` block
    """Requests made inside belong to a step that must end by ``deadline`` (a class, not a
    generator context manager: it runs on every call's hot path)."""

    __slots__ = ("deadline", "token")

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline

    def __enter__(self) -> None:
        self.token = _DEADLINE.set(self.deadline)

    def __exit__(self, *exc_info: object) -> None:
        _DEADLINE.reset(self.token)


def time_left(default: float) -> float:
    """How long a request may still wait for the store: what is left of its step's deadline
    (never more than ``default``, the backend's own limit, nor less than a millisecond)."""
    deadline = _DEADLINE.get()
    if deadline is None:
        return default
    left = deadline - time.monotonic()  # (comparisons, not min() and max(): every request's path)
    if left >= default:
        return default
    return left if left > 0.001 else 0.001


#: A counter's range: what SQLite's INTEGER, PostgreSQL's bigint and Redis's INCRBY hold
#: exactly. One range for every backend, so that moving a store never changes what a
#: counter may hold; past it an add or set is refused (``CounterOverflowError``), since the
#: stores would otherwise go wrong each its own way (SQLite turns to a float and returns one
#: value twice, memcached wraps around to negative numbers).
COUNTER_MIN, COUNTER_MAX = -(2**63), 2**63 - 1


class Backend(ABC):
    """A place to keep versioned records and counters; one subclass per URL scheme."""

    #: the URL schemes this backend serves
    schemes: ClassVar[tuple[str, ...]] = ()
    #: query parameters this backend understands (beyond the store's own)
    parameters: ClassVar[frozenset[str]] = frozenset()
    #: True where stored records may vanish on their own (memcached evicts)
    may_evict: ClassVar[bool] = False
    #: True where a read costs far less than a failed ``compare_and_set`` (an embedded
    #: store, where the write waits for a lock; not a server, whose failed
    #: compare-and-set returns the current record in the same round trip)
    reads_are_cheap: ClassVar[bool] = False
    #: True where a request can reach the store while its reply is lost (a server over a
    #: network); records then keep call ids so the engine can learn what happened. An
    #: embedded store answers every request it ran, so it keeps none.
    loses_replies: ClassVar[bool] = True
    #: True where requests bound their waits by the step's deadline (``time_left``); an
    #: embedded store waits only on its own lock, bounded by its busy timeout, so the
    #: engine need not set the deadline for it on the hot path
    reads_deadline: ClassVar[bool] = True
    #: True where records can have parts (``load(key, since)``, ``compare_and_set(...,
    #: parts)``); elsewhere an object is always one record
    keeps_parts: ClassVar[bool] = False
    #: the values (and amounts) a counter takes; memcached's is narrower (see there)
    counter_range: ClassVar[tuple[int, int]] = (COUNTER_MIN, COUNTER_MAX)

    def __init__(self, url: str, options: dict[str, str], timeout: float = 10.0) -> None:
        """``options``: this backend's own query parameters, as text; ``timeout``: the
        store's call deadline in seconds (``options.py`` parsed it, once), which is also the
        longest any one request may wait."""
        unknown = set(options) - self.parameters
        if unknown:
            raise InvalidURLError(
                f"unknown query parameter(s) {', '.join(sorted(unknown))} for {self.schemes[0]}:// "
                f"(known: {', '.join(sorted(self.parameters)) or 'none'})"
            )
        self.url = url
        self.options = options
        self.timeout = timeout

    # -- records -------------------------------------------------------------------------
    @abstractmethod
    def load(self, key: str, since: int | None = None) -> Record | None:
        """The record stored under ``key``, or None.

        ``since`` (only passed to backends with ``keeps_parts``): also the record's parts
        written after version ``since`` and those removed after it (0: every part), read
        in the same snapshot as the head, as ``record.parts``."""

    @abstractmethod
    def compare_and_set(
        self, key: str, expected: int | None, data: bytes, parts: PartsWrite | None = None
    ) -> tuple[bool, Record | None]:
        """Store ``data`` if the version is still ``expected`` (None: only if absent).

        ``parts`` (only passed to backends with ``keeps_parts``): the changes to the
        record's parts, applied in the same atomic step; the written parts are stamped
        with the new version, and tombstones older than ``KEEP_REMOVED`` versions may be
        purged. Without ``parts`` the parts are left as they are.

        Returns ``(True, new_record)`` on success, ``(False, current_record)`` otherwise
        (the records returned carry no ``parts``).
        """

    @abstractmethod
    def delete(self, key: str) -> bool:
        """Remove the record (with its parts) or counter under ``key``; True if there was one."""

    @abstractmethod
    def keys(self, prefix: str) -> Iterable[str]:
        """Every record and counter key that starts with ``prefix``."""

    # -- counters ------------------------------------------------------------------------
    @abstractmethod
    def counter_add(self, key: str, delta: int, call_id: str | None = None) -> int:
        """Add ``delta`` (a missing counter counts as 0) and return the new value.

        With ``call_id``, a backend whose requests can be lost in flight (a server) records
        the id with the value it produced, in the same atomic step, so that
        :meth:`counter_outcome` can tell later whether this add took effect.
        """

    def counter_outcome(self, key: str, call_id: str) -> int | None:
        """After an add with ``call_id`` whose reply was lost (its request may have reached
        the store): the value that add produced if it took effect; otherwise None, and from
        then on that add can never take effect (it is fenced). Raises the backend's errors
        when the store cannot be asked. Backends that cannot tell return ``UNKNOWN``.

        Embedded backends never lose a request in flight, so they never need this.
        """
        return UNKNOWN

    def counter_overflow(self, key: str, what: str) -> CounterOverflowError:
        """The error for an add or set that would leave :attr:`counter_range`."""
        low, high = self.counter_range
        return CounterOverflowError(
            f"counter {key!r} in {self.describe()}: {what}; a counter holds whole numbers "
            f"from {low} to {high} (nothing was changed)"
        )

    def check_counter(self, key: str, number: int, what: str = "value") -> None:
        """Refuses a value to set, or an amount to add, outside :attr:`counter_range`
        before anything is sent."""
        low, high = self.counter_range
        if not low <= number <= high:
            raise self.counter_overflow(key, f"the {what} {number} is out of range")

    @abstractmethod
    def counter_get(self, key: str) -> int:
        """The counter's value (0 when missing)."""

    @abstractmethod
    def counter_set(self, key: str, value: int) -> None:
        """Set the counter to ``value``."""

    # -- lifecycle -----------------------------------------------------------------------
    def close(self) -> None:  # noqa: B027 - optional: backends without connections keep it
        """Release this process's connections. Safe to call more than once."""

    def describe(self) -> str:
        """The URL with any password hidden, for messages and logs."""
        return redact_url(self.url)


def addable_range(delta: int) -> tuple[int, int]:
    """The values to which ``delta`` can be added without leaving the counter range (both
    bounds inside it, so that a store can compare without overflowing)."""
    if delta >= 0:
        return COUNTER_MIN, COUNTER_MAX - delta
    return COUNTER_MIN - delta, COUNTER_MAX


def redact_url(url: str) -> str:
    """The URL with its password and any secret query values replaced by ``***``."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        user, sep, _password = userinfo.partition(":")
        netloc = f"{user}{':***' if sep else ''}@{hostport}"
    query = "&".join(
        f"{k}={'***' if k in SECRET_PARAMETERS else v}" for k, v in parse_qsl(parts.query)
    )
    rebuilt = f"{parts.scheme}://{netloc}{parts.path}"
    return f"{rebuilt}?{query}" if query else rebuilt


def scrub(text: str, url: str) -> str:
    """``text`` (a driver's message, say) with every secret of ``url`` replaced by ``***``:
    drivers quote their connection settings in some errors, and those go to users' logs."""
    parts = urlsplit(url)
    found = {parts.password or "", unquote(parts.password or "")}
    found.update(v for k, v in parse_qsl(parts.query) if k in SECRET_PARAMETERS)
    found.update(quote(v, safe="") for v in list(found))
    for secret in sorted(found, key=len, reverse=True):
        if len(secret) >= 3:  # shorter "secrets" would blank out unrelated text
            text = text.replace(secret, "***")
    return text


SECRET_PARAMETERS = frozenset(
    {"authkey", "password", "key", "secret_key", "sslpassword", "ssl_password"}
)
