"""Async leased, fenced locks: ``async with store.lock(name, ttl) as lease:``.

The lock's rules (its token, the grant, the checks of extend and release) are the sync
lock's (``locks.LeaseRules``); only the driving differs. A grant runs in a task of its own
(``driver.run_guarded``): a caller cancelled while it waits is withdrawn at the next safe
point, and if its grant was already on the wire and took effect, the lease is released at
once in the background, so a cancelled waiter never leaves the lock held for its ttl.
Leases are held per task: a task that asks again for a lock it holds gets
:class:`~sharedstate.errors.ConfigurationError` at once (it would wait for itself).
"""

from __future__ import annotations

import asyncio
import time
import weakref
from typing import TYPE_CHECKING, Any

from ..backends.base import UNKNOWN
from ..errors import ConfigurationError, LeaseExpiredError, StateLostError
from ..frames import new_id
from ..locks import FOREVER, LeaseRules
from .driver import drive_async, in_background, run_guarded

if TYPE_CHECKING:
    from .store import AsyncStore


class AsyncLease:
    """A granted lock; ``token`` strictly increases with every grant of the lock's name."""

    def __init__(self, lock: AsyncLock, token: int, owner: str, ttl: float, started: float) -> None:
        self.lock = lock
        self.token = token
        self.owner = owner
        self.expires_at = time.time() + ttl  # wall clock estimate, for display
        self._ends = started + ttl  # time.monotonic() when the lease ends

    @property
    def expired(self) -> bool:
        return time.monotonic() >= self._ends

    async def extend(self, ttl: float | None = None) -> None:
        """Pushes the expiry to ``ttl`` (default: the lock's) seconds from now; raises
        LeaseExpiredError if the lease already ended."""
        await self.lock._extend(self, ttl if ttl is not None else self.lock.ttl)

    async def release(self) -> None:
        """Gives the lock up; raises LeaseExpiredError if another holder has it by now."""
        await self.lock._release(self)

    def __repr__(self) -> str:
        return f"<AsyncLease {self.lock.name!r} token={self.token}>"


class AsyncLock(LeaseRules):
    """A leased, fenced lock on a name, for async code."""

    def __init__(self, store: AsyncStore, name: str, key: str, ttl: float, timeout: float | None) -> None:
        self.store = store
        self.name = name
        self.key = key
        self.ttl = ttl
        self.timeout = timeout
        self._entered: weakref.WeakKeyDictionary[asyncio.Task[Any], AsyncLease] = weakref.WeakKeyDictionary()

    def _held_here(self) -> dict[str, AsyncLease]:
        task = asyncio.current_task()
        assert task is not None
        return self.store._leases.setdefault(task, {})

    async def acquire(self, timeout: float | None | object = UNKNOWN) -> AsyncLease:
        """Waits for the lock (up to ``timeout`` seconds) and returns the new lease."""
        held = self._held_here().get(self.key)
        if held is not None and not held.expired:
            raise ConfigurationError(
                f"this task already holds lock {self.name!r} (token {held.token}); the lock is "
                "not re-entrant: waiting for it would wait for itself"
            )
        limit = self.timeout if timeout is UNKNOWN else timeout
        deadline = time.monotonic() + (FOREVER if limit is None else float(limit))  # type: ignore[arg-type]
        owner, ttl = new_id(), self.ttl
        engine, backend = self.store._engine, self.store._here().backend
        started = time.monotonic()

        async def orphaned(result: tuple[Any, int]) -> None:  # granted to a caller now gone
            await self._release(AsyncLease(self, result[1], owner, ttl, started))

        def grant() -> Any:
            return engine.steps(self.key, self.grant_change(), deadline, owner, (owner, ttl))

        try:
            _, token = await run_guarded(grant(), backend, orphaned)
        except StateLostError:  # the record vanished: tokens go on from the largest seen here
            _, token = await run_guarded(grant(), backend, orphaned)
        self.store._tokens[self.key] = max(self.store._tokens.get(self.key, 0), token)
        lease = AsyncLease(self, token, owner, ttl, started)
        self._held_here()[self.key] = lease
        return lease

    async def _extend(self, lease: AsyncLease, ttl: float) -> None:
        if lease.expired:
            raise LeaseExpiredError(f"the lease on lock {self.name!r} expired before it was extended")
        engine, backend = self.store._engine, self.store._here().backend
        started = time.monotonic()
        steps = engine.steps(
            self.key, self.keep_change(lease), started + self.store.timeout, lease.owner, (lease.owner, ttl), False
        )
        await drive_async(steps, backend)
        lease._ends, lease.expires_at = started + ttl, time.time() + ttl

    async def _release(self, lease: AsyncLease) -> None:
        engine, backend = self.store._engine, self.store._here().backend
        steps = engine.steps(
            self.key, self.keep_change(lease), time.monotonic() + self.store.timeout, lease.owner, None, False
        )
        try:
            # shielded: a release cancelled half-way still ends (a lock is never left held)
            await asyncio.shield(in_background(drive_async(steps, backend)))
        finally:
            task = asyncio.current_task()
            leases = self.store._leases.get(task) if task is not None else None
            if leases is not None and leases.get(self.key) is lease:
                del leases[self.key]

    async def locked(self) -> bool:
        """Whether someone holds a lease that this process does not yet count as expired."""
        engine, backend = self.store._engine, self.store._here().backend
        record = await drive_async(engine.load_steps(self.key, time.monotonic() + self.store.timeout), backend)
        return engine.hold_remaining(self.key, record, engine.frame_of(self.key, record)) > 0

    async def __aenter__(self) -> AsyncLease:
        lease = await self.acquire()
        task = asyncio.current_task()
        assert task is not None
        self._entered[task] = lease
        return lease

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        task = asyncio.current_task()
        lease = self._entered.pop(task, None) if task is not None else None
        if lease is None:
            return
        try:
            await lease.release()
        except LeaseExpiredError:
            if exc_type is None:
                raise

    def __repr__(self) -> str:
        return f"<AsyncLock {self.name!r}>"


__all__ = ["AsyncLease", "AsyncLock"]
