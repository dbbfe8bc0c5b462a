"""The atomic step: the one home of every read-modify-write sharedstate makes.

Objects, locks, transactions and counters all come here; a backend only keeps versioned
records (``backends/base.py``). What this module owns, so that nothing above repeats it:

* **The cache-first compare-and-set.** A per-process cache of the last record seen: when it
  is still current, a step costs one round trip (the compare-and-set); when it is stale, the
  failed compare-and-set returns the current record and the retry costs one more. Where
  reads are far cheaper than a failed write (SQLite), a key other processes keep writing is
  read first, until a read finds that nobody else wrote it since this process did.
* **The deadline.** Every step has one, fixed when its caller called; every wait (for a
  hold, after a broken connection) stops there. Backends bound each request by it too
  (:func:`~sharedstate.backends.base.time_left`).
* **A bound on optimistic retries, then a hold.** After ``OPTIMISTIC_TRIES`` conflicts in a
  row when a try is slow (``SLOW_TRY``), ``FAST_TRIES`` when every try is fast, or once lost
  races took a quarter of its time, a step stops racing:
  it writes a *hold* into the record (a lease: owner and ttl), which makes every other
  writer wait, runs its change on the held state, and writes the result with a
  compare-and-set on the held version. A slow method therefore gets through under any
  traffic, and no user code runs while a database lock is held. The hold's ttl is four
  times the step's slowest try (at least ``HOLD_TTL_MIN``, at most what its deadline
  leaves), so a holder killed meanwhile blocks the others for a moment, not a timeout;
  they poll a held record from ``HOLD_POLL[0]`` up.
* **Holds and their expiry, by the observer's own clock.** A hold stores a duration, not a
  time of day. A process that sees a hold notes when it first saw that version (monotonic
  clock) and treats it as expired one ttl later; the holder counts its ttl from before it
  sent the hold. So no wall clock is compared between hosts: a client whose clock runs 30 s
  ahead cannot take a live hold, and a crashed holder blocks others for at most one ttl from
  when they first see it, whatever its clock said. (Clock *rates* are assumed to agree.)
* **Call ids and outcome resolution.** Each write carries a random call id, and a record
  keeps the last few. When a write's reply is lost (a connection broke after sending, a
  timeout), the step reads the record again, reconnecting until its deadline: if the id is
  there the call took effect and returns its result; if the version moved on without it, the
  write can never apply and the step simply runs again; if the version is unchanged, the
  step writes again with the same id, which makes the lost write impossible. Only when the
  store stays unreachable until the deadline does the caller get
  :class:`~sharedstate.errors.OutcomeUnknownError`. Counters ask the backend
  (``counter_outcome``), which records ids beside the counter.

**Sans-I/O.** The step itself (:meth:`Engine.steps`) is a generator that *yields* what it
needs done and receives the answers; it never touches a socket (``steps.py``: the requests,
and the blocking driver; ``aio/driver.py``: the async one). One logic, two drivers, no
copy. The record format lives in ``frames.py``.

**The cache is bounded** (``bounded.py``): it keeps the newest ``KEEP_NAMES`` keys, so a
process touching a million names stays small. An evicted key costs one more round trip
when it is used again, and one thing more: lost state is noticed only for a record this
process still remembers, so a record that vanishes after its key was evicted here looks
like a new name to this process (as it does to one that never saw it).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

from .backends.base import _DEADLINE, UNKNOWN, Backend, PartsWrite, Record
from .bounded import trim
from .errors import (
    OutcomeUnknownError,
    SharedStateError,
    StateLostError,
    StoreTimeoutError,
    request_sent,
)
from .frames import EMPTY, KEEP_IDS, Frame, Split, decode_frame, new_id
from .steps import CAS, LOAD, SLEEP, Change, Held, NeedParts, Steps, drive

OPTIMISTIC_TRIES = 3  # conflicts in a row before a step takes a hold to get through ...
SLOW_TRY = 0.005  # ... if one of its tries took this long (seconds); fast tries race on
FAST_TRIES = 12  # up to this many conflicts: each lost race is another writer's progress,
# and a hold costs two writes and stalls every other writer (4 processes on one Redis
# object: 0.74x raw INCR holding after 3 fast conflicts)
RACE_SHARE = 0.25  # ... or sooner, once lost races took this share of the time it has
HOLD_POLL = (0.0005, 0.05)  # seconds between reads of a held record: first, and at most
HOLD_TTL_MIN = 0.25  # the shortest hold a step that stopped racing takes (seconds)

#: A write :meth:`Engine.first_try` prepared on the cached record: (record, written frame,
#: data to send, parts, call id, outcome, when the try began); a plain tuple, made on
#: every call's path
FirstTry = tuple[Record, Frame, bytes, "PartsWrite | None", "str | None", Any, float]


class Engine:
    """The atomic step over one backend, for one store (its cache is per process)."""

    def __init__(self, backend: Backend, describe: Callable[[str], str]) -> None:
        self.backend = backend
        self.describe = describe  # key -> "shared object 'x'" etc., for messages
        self.cache: dict[str, Record] = {}
        self._frames: dict[str, tuple[Record, Frame]] = {}  # key -> a decoded cached record
        self._stale: set[str] = set()
        self._seen_holds: dict[str, tuple[int, float]] = {}  # key -> (version, first seen)
        #: key -> the version this process holds the parts of (``load_steps`` then asks
        #: for the parts written since, in the same request as the head)
        self.parts_since: dict[str, int] = {}

    # -- reading -------------------------------------------------------------------------
    def frame_of(self, key: str, record: Record | None) -> Frame:
        if record is None:
            return EMPTY
        known = self._frames.get(key)
        if known is not None and known[0] is record:
            return known[1]
        frame = decode_frame(record.data)
        self._frames[key] = (record, frame)
        trim(self._frames)
        return frame

    def load(self, key: str, deadline: float) -> Record | None:
        """The stored record (one round trip), noted in the cache."""
        return self.drive(self.load_steps(key, deadline))

    def load_steps(self, key: str, deadline: float, since: int | None = None) -> Steps:
        known = self.cache.get(key)
        record = yield (LOAD, key, since, deadline)
        self._note(key, record, known)
        return record

    def _note(self, key: str, record: Record | None, known: Record | None | Any = UNKNOWN) -> None:
        """Keeps the cache; a record this process saw that vanished is lost state.

        ``known``: what the cache held when the request that found ``record`` was sent
        (records are never removed, only tombstoned, so one that existed then must still
        exist; one another thread cached meanwhile proves nothing)."""
        if record is not None:
            cached = self.cache.get(key)
            if cached is None or cached.version <= record.version:  # never step back in time
                self.cache[key] = record
                if cached is None:
                    trim(self.cache, evicted=self._evicted)
            return
        if known is UNKNOWN:
            known = self.cache.get(key)
        if known is not None:
            self.cache.pop(key, None)
            raise StateLostError(
                f"the state of {self.describe(key)} vanished from {self.backend.describe()} "
                "(evicted, flushed, or a server restarted without persistence); it is not "
                "re-created, since that would repeat what it already handed out; restore it, "
                "or delete the name to start again"
            )

    def forget(self, key: str) -> None:
        """Drops everything this process keeps about ``key`` (see also ``bounded.py``)."""
        self.cache.pop(key, None)
        self._evicted(key)

    def _evicted(self, key: str) -> None:
        self._frames.pop(key, None)
        self.parts_since.pop(key, None)
        self._stale.discard(key)
        self._seen_holds.pop(key, None)

    # -- holds ---------------------------------------------------------------------------
    def hold_remaining(self, key: str, record: Record | None, frame: Frame, me: str | None = None) -> float:
        """Seconds this process must still respect the record's hold (0: none, or over).

        The clock starts when this process first saw that version of the record."""
        if frame.hold is None or record is None or frame.hold[0] == me:
            if self._seen_holds:
                self._seen_holds.pop(key, None)
            return 0.0
        now = time.monotonic()
        seen = self._seen_holds.get(key)
        if seen is None or seen[0] != record.version:
            seen = (record.version, now)
            self._seen_holds[key] = seen
            trim(self._seen_holds)
        return max(seen[1] + frame.hold[1] - now, 0.0)

    # -- the step ------------------------------------------------------------------------
    def run(
        self,
        key: str,
        change: Change,
        deadline: float,
        *,
        owner: str | None = None,
        hold: tuple[str, float] | None = None,
        wait: bool = True,
    ) -> tuple[Record | None, Any]:
        """Runs ``change`` as one atomic read-modify-write of ``key`` before ``deadline``;
        returns the record that change left (None if nothing is stored, or if its write's
        reply was lost and writes by others followed it before the step found it applied)
        and the outcome of the change that was applied.

        ``owner``: the caller's own hold on the record, if it has one (others' live holds
        are waited out). ``hold``: the hold the written record carries (None: none).
        ``wait=False``: others' holds are not waited out; ``change`` judges them (a holder
        releasing or extending its own hold learns at once that it was taken over)."""
        if owner is None and hold is None:
            first = self.first_try(key, change, deadline)
            if first is not None:
                record, _, data, parts, call_id, outcome, began = first
                backend = self.backend
                token = _DEADLINE.set(deadline) if backend.reads_deadline else None
                try:
                    if parts is None:
                        ok, current = backend.compare_and_set(key, record.version, data)
                    else:
                        ok, current = backend.compare_and_set(key, record.version, data, parts)
                except SharedStateError as exc:
                    if not request_sent(exc):
                        raise
                    lost = (record.version, outcome)
                    return self.drive(self.steps(key, change, deadline, wait=wait, call_id=call_id, lost_write=lost))
                finally:
                    if token is not None:  # (``deadline_scope``, without its two calls)
                        _DEADLINE.reset(token)
                if ok and current is not None:
                    return self.first_written(key, first, current)
                self.note_conflict(key, current)
                return self.drive(
                    self.steps(key, change, deadline, wait=wait, call_id=call_id, current=current, began=began)
                )
        return self.drive(self.steps(key, change, deadline, owner, hold, wait))

    def first_try(self, key: str, change: Change, deadline: float) -> FirstTry | None:
        """The hot path of a step without holds, by hand rather than through ``steps`` (a
        generator costs about a microsecond a call): when the cached record is current,
        usually because this process wrote it, the step is one compare-and-set. This runs
        the change on the cached record and frames the write for either driver to send;
        None: anything unusual (no cached record, a hold, an error, nothing to write),
        which ``steps`` handles from the start. After the send: :meth:`first_written`,
        or on a conflict or a lost reply ``steps`` goes on from it."""
        record = self.cache.get(key)
        if record is None or key in self._stale:
            return None
        frame = self.frame_of(key, record)
        if frame.hold is not None:
            return None
        began = time.monotonic()
        try:
            payload, outcome = change(record, frame)
        except Exception:
            return None
        if payload is None or time.monotonic() >= deadline:
            return None
        parts: PartsWrite | None = None
        if isinstance(payload, Split):
            parts = payload.parts
            payload = payload.head
        if self.backend.loses_replies:
            call_id: str | None = new_id()
            written = frame.written(call_id, payload)
            return record, written, written.encode(), parts, call_id, outcome, began
        # an embedded store keeps no ids; a record without a hold is all payload
        return record, Frame(payload), payload, parts, None, outcome, began

    def first_written(self, key: str, first: FirstTry, current: Record) -> tuple[Record, Any]:
        """The first try's write applied, leaving ``current``."""
        self.cache[key] = current
        self._frames[key] = (current, first[1])
        return current, first[5]

    def steps(
        self,
        key: str,
        change: Change,
        deadline: float,
        owner: str | None = None,
        hold: tuple[str, float] | None = None,
        wait: bool = True,
        call_id: str | None = None,
        lost_write: tuple[int | None, Any] | None = None,
        current: Any = UNKNOWN,
        began: float | None = None,
    ) -> Steps:
        """The step of :meth:`run`, as the I/O it needs (see the module docstring); its
        return value is ``(record, outcome)``.

        ``lost_write``: (expected version, outcome) of a write already sent with ``call_id``
        whose reply was lost; ``current``: a record a failed compare-and-set returned."""
        if call_id is None and self.backend.loses_replies:
            call_id = new_id()
        record: Any = current
        cached = False
        if record is UNKNOWN and lost_write is None:
            record = self.cache.get(key, UNKNOWN)
            if record is not UNKNOWN and key in self._stale:
                record = UNKNOWN
            cached = record is not UNKNOWN
        conflicts = 0 if current is UNKNOWN else 1
        began = time.monotonic() if began is None else began
        lost: Any = UNKNOWN if lost_write is None else lost_write[0]  # its expected version
        lost_outcome: Any = None if lost_write is None else lost_write[1]
        pause = 0.002
        hold_pause = HOLD_POLL[0]
        since: int | None = None  # the parts a change asked for (``NeedParts``)
        # the longest try (change and compare-and-set) so far; a conflict handed over by
        # ``run`` took one try, from ``began``
        slowest = 0.0 if current is UNKNOWN else time.monotonic() - began
        while True:
            if record is UNKNOWN:
                self.check_deadline(deadline, lost, key)
                before = self.cache.get(key)
                try:
                    record = yield from self.load_steps(key, deadline, self.parts_since.get(key) if since is None else since)
                except StateLostError:
                    raise
                except SharedStateError as exc:
                    if lost is UNKNOWN:
                        # a read the deadline cut short (a wait for a hold ends in one):
                        # the error names what the call waited on, not only the store
                        self.check_deadline(deadline, lost, key, exc)
                        raise
                    pause = yield from self.pause(deadline, pause, exc, lost, key)
                    continue
                cached, since = False, None
                if before is not None and record is not None and record.version == before.version:
                    self._stale.discard(key)  # nobody else wrote since: cache-first again
                if lost is not UNKNOWN:
                    if self._lost_write_applied(key, record, lost, call_id):
                        return _own_record(record, lost), lost_outcome
                    if (record.version if record is not None else None) != lost:
                        lost = UNKNOWN  # the versions moved on without it: it can never apply
                    # (a record still absent after a lost create: that create may yet land)
            frame = self.frame_of(key, record)
            remaining = self.hold_remaining(key, record, frame, owner) if wait else 0.0
            if remaining > 0:
                hold_pause = yield from self._wait_for_hold(key, remaining, deadline, hold_pause)
                record = UNKNOWN
                continue
            if owner is None and lost is UNKNOWN and (
                (conflicts >= OPTIMISTIC_TRIES and (slowest >= SLOW_TRY or conflicts >= FAST_TRIES))
                or (conflicts and time.monotonic() - began > (deadline - began) * RACE_SHARE)
            ):
                through = new_id()  # hold the record, so that the next try is certain to win
                # long enough for one more try as slow as the slowest seen, not much longer:
                # a holder killed meanwhile blocks the others for its ttl
                ttl = min(max(deadline - time.monotonic(), 0.05), max(HOLD_TTL_MIN, 4 * slowest))
                keep = _keep_payload
                yield from self.steps(key, keep, deadline, through, (through, ttl))
                return (yield from self.steps(key, change, deadline, through))
            try_began = time.monotonic()
            try:
                payload, outcome = change(record, frame)
            except Held as held:
                hold_pause = yield from self._wait_for_hold(key, held.remaining, deadline, hold_pause)
                record = UNKNOWN
                continue
            except NeedParts as need:
                since = need.since  # loaded with the head, at the top of the loop
                record = UNKNOWN
                continue
            except Exception:
                if not cached:
                    raise
                record = UNKNOWN  # judged on a cached record, which may trail the store
                continue
            if payload is None and hold is None and (frame.hold is None or owner is None):
                if not cached:
                    return record, outcome
                record = UNKNOWN  # a read of a cached state: validate it on the store
                continue
            if payload is None:
                payload = frame.payload
            parts: PartsWrite | None = None
            if isinstance(payload, Split):
                parts = payload.parts
                payload = payload.head
            written = frame.written(call_id, payload, hold)
            expected = record.version if record is not None else None
            self.check_deadline(deadline, lost, key)
            try:
                ok, current = yield (CAS, key, expected, written.encode(), parts, deadline)
            except SharedStateError as exc:
                if not request_sent(exc) and lost is UNKNOWN:
                    raise
                if lost is UNKNOWN or expected == lost:
                    lost, lost_outcome = expected, outcome
                pause = yield from self.pause(deadline, pause, exc, lost, key)
                record = UNKNOWN
                continue
            slowest = max(slowest, time.monotonic() - try_began)
            if ok:
                known = self.cache.get(key)
                self.cache[key] = current
                self._frames[key] = (current, written)
                if known is None:
                    trim(self.cache, evicted=self._evicted)
                    trim(self._frames)
                return current, outcome
            self.note_conflict(key, current)
            if lost is not UNKNOWN:
                if self._lost_write_applied(key, current, lost, call_id):
                    return _own_record(current, lost), lost_outcome
                lost = UNKNOWN  # this compare-and-set expected the lost one's version: moved
            conflicts += 1
            record, cached = current, False

    def _lost_write_applied(self, key: str, record: Record | None, lost: int | None, call_id: str | None) -> bool:
        """Whether the write sent with ``call_id`` (expecting version ``lost``) took effect,
        judged on ``record``; raises OutcomeUnknownError when the record cannot tell (more
        writes followed it than a record keeps ids of)."""
        if record is None or call_id is None:
            return False
        applied = self.frame_of(key, record).applied(record.version, lost, call_id)
        if applied is None:
            raise OutcomeUnknownError(
                f"a call on {self.describe(key)} lost its reply from {self.backend.describe()}, "
                f"and more than {KEEP_IDS} writes followed before it could ask whether its own "
                "took effect: whether it did is unknown"
            )
        return applied

    def note_conflict(self, key: str, current: Record | None) -> None:
        if self.backend.reads_are_cheap:
            self._stale.add(key)
        self._note(key, current)

    def drive(self, steps: Steps) -> Any:
        """Runs a step against this engine's blocking backend (``steps.drive``)."""
        return drive(self.backend, steps)

    # -- waits and errors ----------------------------------------------------------------
    def pause(self, deadline: float, pause: float, error: SharedStateError, lost: Any, key: str) -> Steps:
        """After a lost reply: wait a little (never past the deadline) before asking again."""
        left = deadline - time.monotonic()
        if left <= 0:
            self.check_deadline(deadline, lost, key, error)
        yield (SLEEP, min(random.uniform(pause / 2, pause), max(left, 0.0)))
        return min(pause * 2, 0.25)

    def check_deadline(self, deadline: float, lost: Any, key: str, cause: BaseException | None = None) -> None:
        if time.monotonic() < deadline:
            return
        where = self.backend.describe()
        if lost is not UNKNOWN:
            raise OutcomeUnknownError(
                f"a call on {self.describe(key)} sent its write to {where}, which then did not "
                "answer before the call's deadline (see ?timeout=): whether it took effect is "
                "unknown"
            ) from cause
        raise StoreTimeoutError(
            f"a call on {self.describe(key)} could not complete before its deadline (see "
            f"?timeout=) on {where}; it did not take effect"
        ) from cause

    def _wait_for_hold(self, key: str, remaining: float, deadline: float, pause: float) -> Steps:
        """Sleeps ``pause`` (never past the hold or the deadline) before the record is
        read again; returns the next pause. Polls start short, since most holds are a
        step that stopped racing and is done within a round trip or two, and grow to
        ``HOLD_POLL[1]`` for a transaction or a lock held for long."""
        left = deadline - time.monotonic()
        if left <= 0:
            raise StoreTimeoutError(
                f"{self.describe(key)} stayed held (by a transaction, a lock or a slow call of "
                "another process) until the call's deadline (see ?timeout=); the call did not "
                "take effect"
            )
        yield (SLEEP, min(remaining + 0.0005, left, random.uniform(pause / 2, pause)))
        return min(pause * 2, HOLD_POLL[1])


def _own_record(record: Record, lost: int | None) -> Record | None:
    """What a step whose lost write took effect returns as its record: the record that
    write made, or None when later writes by others followed it. The outcome belongs to
    the write's own version, so a caller that keeps state beside the returned record (the
    live instance of an object) must not pair that outcome with a newer record."""
    return record if record.version == (lost or 0) + 1 else None


def _keep_payload(record: Record | None, frame: Frame) -> tuple[bytes, None]:
    """The change of a step that only writes a hold: the payload stays as it is."""
    return frame.payload, None


__all__ = ["Change", "Engine", "Held", "Steps"]
