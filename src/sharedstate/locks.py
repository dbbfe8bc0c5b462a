"""Leased, fenced locks, as holds on a record of the engine (``engine.py``).

A lock is a record whose hold is the lease: owner and ttl. Granting it is one atomic step
that waits out a live hold and writes a new hold with the fencing token grown by one, so
tokens strictly increase with every grant and are never reset; a protected resource that
remembers the largest token it has seen can refuse a stale holder. Expiry follows the
engine's rule: the holder counts its ttl from before it asked, and others from when they
first saw the hold, each on its own monotonic clock, so no wall clocks are compared.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .backends.base import UNKNOWN, Record
from .bounded import trim
from .errors import ConfigurationError, CorruptStoreError, LeaseExpiredError, StateLostError
from .frames import Frame, new_id
from .steps import Change

if TYPE_CHECKING:
    from .store import Store

#: see ``Store._tokens``
TOKEN_NAMES = 100_000

FOREVER = 10.0 * 365 * 24 * 3600  # the deadline of a wait with no timeout


@dataclass
class Lease:
    """A granted lock. ``token`` is a fencing token: it strictly increases with every grant
    of this lock name, so a resource that remembers the largest token it has seen can refuse
    the write of a holder whose lease expired while it was paused."""

    lock: Lock
    token: int
    owner: str
    expires_at: float  # wall clock (time.time()) estimate, for display
    _ends: float = field(default=0.0, repr=False)  # time.monotonic() when the lease ends

    @property
    def expired(self) -> bool:
        return time.monotonic() >= self._ends

    def extend(self, ttl: float | None = None) -> None:
        """Pushes the expiry to ``ttl`` (default: the lock's ttl) seconds from now; raises
        LeaseExpiredError if the lease already ended."""
        self.lock._extend(self, ttl if ttl is not None else self.lock.ttl)

    def release(self) -> None:
        """Gives the lock up; raises LeaseExpiredError if another holder has it by now."""
        self.lock._release(self)


class LeaseRules:
    """What a lock's record means, apart from how its steps are driven (shared by
    :class:`Lock` and the async lock): the fencing token it holds, and the changes that
    grant, extend and release a lease."""

    name: str
    key: str
    store: Any  # has ``_tokens``: the largest token this process saw per lock key

    def _token(self, frame: Frame) -> int:
        if not frame.payload:
            return 0
        try:
            state = json.loads(frame.payload)
            token = state["t"]
            if type(token) is not int:
                raise ValueError("the token is not an integer")
            return token
        except (ValueError, KeyError, TypeError) as exc:
            raise CorruptStoreError(f"the lease record of lock {self.name!r} is damaged: {exc}") from exc

    def grant_change(self) -> Change:
        """The change that grants the lock: the token grows by one (never below the
        largest this process saw); its outcome is the new token."""

        def grant(record: Record | None, frame: Frame) -> tuple[bytes, int]:
            token = max(self._token(frame), self.store._tokens.get(self.key, 0)) + 1
            return json.dumps({"t": token}).encode(), token

        return grant

    def keep_change(self, lease: Any) -> Change:
        """The change of an extend or a release: the record stays as it is, provided the
        lease is still the one it holds."""

        def keep(record: Record | None, frame: Frame) -> tuple[bytes, Any]:
            self._mine(lease, frame)
            return frame.payload, None

        return keep

    def _mine(self, lease: Any, frame: Frame) -> None:
        token = self._token(frame)
        if frame.hold is None or frame.hold[0] != lease.owner or token != lease.token:
            raise LeaseExpiredError(
                f"the lease on lock {self.name!r} (token {lease.token}) expired and the lock "
                f"was granted again (token {token}); what it protected may have been "
                "changed by the next holder"
            )


class Lock(LeaseRules):
    """A leased, fenced lock on a name; use ``with store.lock(name, ttl) as lease:``."""

    def __init__(self, store: Store, name: str, key: str, ttl: float, timeout: float | None) -> None:
        self.store = store
        self.name = name
        self.ttl = ttl
        self.timeout = timeout
        self.key = key
        #: leases held per thread (greenlet) and lock key, shared by every Lock of the store
        self._held: threading.local = store._leases
        self._entered = threading.local()  # the lease ``with lock:`` took, per thread

    def acquire(self, timeout: float | None | object = UNKNOWN) -> Lease:
        """Waits for the lock (up to ``timeout`` seconds) and returns the new lease."""
        held = self._lease_here()
        if held is not None and not held.expired:
            raise ConfigurationError(
                f"this thread already holds lock {self.name!r} (token {held.token}); the lock "
                "is not re-entrant: waiting for it would wait for itself"
            )
        limit = self.timeout if timeout is UNKNOWN else timeout
        deadline = time.monotonic() + (FOREVER if limit is None else float(limit))  # type: ignore[arg-type]
        owner = new_id()
        ttl = self.ttl
        grant = self.grant_change()
        started = time.monotonic()
        try:
            _, token = self.store._engine.run(self.key, grant, deadline, owner=owner, hold=(owner, ttl))
        except StateLostError:  # the record vanished: tokens go on from the largest seen here
            _, token = self.store._engine.run(self.key, grant, deadline, owner=owner, hold=(owner, ttl))
        tokens = self.store._tokens
        known = tokens.get(self.key)
        tokens[self.key] = max(known or 0, token)
        if known is None:
            trim(tokens, TOKEN_NAMES)
        lease = Lease(self, token, owner, time.time() + ttl, started + ttl)
        self._held.__dict__.setdefault("leases", {})[self.key] = lease
        return lease

    def _lease_here(self) -> Lease | None:
        """The lease this thread holds on this lock, if any."""
        return getattr(self._held, "leases", {}).get(self.key)

    def _extend(self, lease: Lease, ttl: float) -> None:
        if lease.expired:
            raise LeaseExpiredError(f"the lease on lock {self.name!r} expired before it was extended")
        started = time.monotonic()
        self.store._engine.run(
            self.key, self.keep_change(lease), started + self.store.timeout, owner=lease.owner, hold=(lease.owner, ttl), wait=False
        )
        lease._ends, lease.expires_at = started + ttl, time.time() + ttl

    def _release(self, lease: Lease) -> None:
        try:
            self.store._engine.run(
                self.key, self.keep_change(lease), time.monotonic() + self.store.timeout, owner=lease.owner, wait=False
            )
        finally:
            if self._lease_here() is lease:
                del self._held.leases[self.key]

    def locked(self) -> bool:
        """Whether someone holds a lease that this process does not yet count as expired."""
        engine = self.store._engine
        record = engine.load(self.key, time.monotonic() + self.store.timeout)
        return engine.hold_remaining(self.key, record, engine.frame_of(self.key, record)) > 0

    def __enter__(self) -> Lease:
        self._entered.lease = self.acquire()
        return self._entered.lease

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        lease = getattr(self._entered, "lease", None)
        self._entered.lease = None
        if lease is None:
            return
        try:
            lease.release()
        except LeaseExpiredError:
            if exc_type is None:
                raise


__all__ = ["Lease", "LeaseRules", "Lock"]
