"""The async store: ``store = sharedstate.connect_async(url)``; every store trip awaited.

An :class:`AsyncStore` is a thin async facade over the parts of a sync
:class:`~sharedstate.store.Store` that carry no I/O: the parsed URL and options, the codec,
the engine (its per-process cache of records), the object layer's encoding and changes,
and the lock tokens seen. The I/O (the async backend of ``backends/``) and the combiners
are per event loop; the engine's steps are driven with ``driver.drive_async``. So the sync
and the async stores share one record format and one step logic, and a sync worker and an
async worker of one deployment (same URL and name) see one object.

Lazy and safe at import time: nothing connects before the first awaited call. Per event
loop: a store used from two loops (in tests, or one loop per thread) keeps connections,
combiners and I/O threads for each. Per process: after ``fork`` the child drops what
the parent's loops held (never touching its connections) and opens its own.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

from ..backends.base import _DEADLINE
from ..backends.pool import forks
from ..bounded import trim
from ..errors import ConfigurationError, SharedStateError, StateLostError
from ..frames import Split, new_id
from ..objects import ObjectSpec
from ..store import COUNTER, LEASE, OBJECT, Store, _check_seconds, tombstone, unhold
from .backends import AsyncBackend, open_async_backend
from .combining import AsyncCall, AsyncCombiner
from .counters import AsyncCounter
from .driver import Guard, drive_async, in_background, run_async, run_guarded
from .locks import AsyncLease, AsyncLock
from .objects import AsyncSharedObject

T = TypeVar("T")

#: key -> (task, when its hold ends) of the transactions the current task is inside
_HOLDING: ContextVar[dict[str, tuple[Any, float]] | None] = ContextVar("sharedstate_async_holding", default=None)


def _NO_LOOP() -> None:  # noqa: N802 - stands for a dead weak reference
    return None


class _PerLoop:
    """What a store keeps for one event loop: its async backend and its combiners."""

    __slots__ = ("backend", "combiners", "__weakref__")

    def __init__(self, backend: AsyncBackend) -> None:
        self.backend = backend
        self.combiners: dict[str, AsyncCombiner] = {}

    def combiner(self, key: str, make: Callable[[], AsyncCombiner]) -> AsyncCombiner:
        """This loop's combiner of ``key``, made on first use. Only the newest names keep
        theirs (``bounded.py``): one evicted while busy merely stops batching with the
        next one made, since the engine's compare-and-set orders them anyway."""
        combiner = self.combiners.get(key)
        if combiner is None:
            combiner = self.combiners[key] = make()
            trim(self.combiners)
        return combiner


class AsyncStore:
    """A store URL for async code: shared objects, counters, locks and transactions whose
    every store trip is awaited, so the event loop never waits for the store."""

    def __init__(
        self,
        url: str,
        *,
        codec: str | None = None,
        secret_key: bytes | str | None = None,
        prefix: str | None = None,
        timeout: float | None = None,
    ) -> None:
        self._sync = Store(url, codec=codec, secret_key=secret_key, prefix=prefix, timeout=timeout)
        self.url = url
        self.prefix = self._sync.prefix
        self.timeout = self._sync.timeout
        self.codec = self._sync.codec
        self._engine = self._sync._engine
        self._objects = self._sync._objects
        self._tokens = self._sync._tokens
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _PerLoop] = weakref.WeakKeyDictionary()
        self._pid = os.getpid()
        self._inherited: list[Any] = []  # what the parent's loops held, after a fork
        # event loops in several threads may share this store: the table of loops is
        # changed under this lock (the lookup of an existing entry needs none)
        self._loops_lock = threading.Lock()
        #: (weak reference to a loop, its entry, fork count when found): see ``_here``
        self._last: tuple[Callable[[], Any], Any, int] = (_NO_LOOP, None, -1)
        #: leases held per task and lock key (see AsyncLock)
        self._leases: weakref.WeakKeyDictionary[asyncio.Task[Any], dict[str, AsyncLease]] = (
            weakref.WeakKeyDictionary()
        )

    # -- public API ----------------------------------------------------------------------
    def object(self, name: str, cls: type[T], *args: Any, **kwargs: Any) -> Any:
        """The shared object ``name`` of class ``cls`` (see ``Store.object``); its methods
        and attribute reads are awaited."""
        proxy = self._sync.object(name, cls, *args, **kwargs)
        return AsyncSharedObject(self, object.__getattribute__(proxy, "_spec"))

    def counter(self, name: str) -> AsyncCounter:
        """The shared integer counter ``name`` (0 until first changed)."""
        Store._check_name(name)
        return AsyncCounter(self, name, self.prefix + COUNTER + name)

    def lock(self, name: str, ttl: float = 10.0, timeout: float | None = None) -> AsyncLock:
        """A leased lock (see ``Store.lock``): ``async with store.lock(name) as lease:``."""
        Store._check_name(name)
        _check_seconds("a lock's ttl", ttl)
        if timeout is not None:
            _check_seconds("a lock's timeout", timeout, zero_ok=True)
        return AsyncLock(self, name, self.prefix + LEASE + name, ttl, timeout)

    @asynccontextmanager
    async def transaction(self, target: str | Any, ttl: float | None = None) -> AsyncIterator[Any]:
        """Several calls on one object as one atomic step (see ``Store.transaction``):
        ``async with store.transaction("name") as o:`` gives a private instance, whose
        plain sync methods the block calls; what it leaves there is written at the end."""
        ttl = self.timeout / 2 if ttl is None else ttl
        _check_seconds("a transaction's ttl", ttl)
        spec = self._spec_for(target)
        self._check_not_holding(spec)
        here = self._here()
        objects, engine, key = self._objects, self._engine, spec.key
        owner = new_id()
        started = time.monotonic()

        async def end(data: bytes | Split | None) -> None:
            change = objects.release_change(spec, owner, data, ttl)
            steps = engine.steps(key, change, time.monotonic() + self.timeout, owner, None, False)
            await drive_async(steps, here.backend)

        async def orphaned(result: Any) -> None:  # taken for a caller now gone
            await end(None)

        take = engine.steps(key, objects.take_change(spec), started + self.timeout, owner, (owner, ttl))
        _, instance = await run_guarded(take, here.backend, orphaned)
        objects.parting.states.pop(key, None)
        holding = dict(_HOLDING.get() or {})
        holding[key] = (asyncio.current_task(), started + ttl)
        token = _HOLDING.set(holding)
        try:
            yield instance
            data = objects.transaction_write(spec, instance)
        except BaseException:
            _HOLDING.reset(token)
            try:  # release the hold; the block's own exception is the one to report
                await asyncio.shield(in_background(end(None)))
            except (SharedStateError, asyncio.CancelledError):
                pass  # the hold then ends with its ttl (or the release goes on regardless)
            raise
        _HOLDING.reset(token)
        # shielded: a cancelled caller does not cut the write off half-way; it completes
        await asyncio.shield(in_background(end(data)))

    async def delete(self, name: str) -> bool:
        """Forgets object or counter ``name`` and frees lock ``name`` (see ``Store.delete``)."""
        backend = self._here().backend
        key = self.prefix + OBJECT + name
        self._engine.forget(key)
        try:
            steps = self._engine.steps(key, tombstone, time.monotonic() + self.timeout)
            _, removed_object = await drive_async(steps, backend)
        except StateLostError:  # evicted state: deleting the name is how to start again
            removed_object = await self._bounded(backend.delete, key)
        self._engine.forget(key)
        if await self._bounded(backend.delete, self.prefix + COUNTER + name):
            return True
        try:
            lock_key = self.prefix + LEASE + name
            steps = self._engine.steps(lock_key, unhold, time.monotonic() + self.timeout, wait=False)
            _, freed = await drive_async(steps, backend)
        except StateLostError:
            freed = False
        return bool(freed) or bool(removed_object)

    async def aclose(self) -> None:
        """Closes this event loop's connections (and I/O threads); the store opens them
        again if used afterwards."""
        if self._pid != os.getpid():
            return
        loop = asyncio.get_running_loop()
        with self._loops_lock:
            here = self._loops.pop(loop, None)
            self._last = (_NO_LOOP, None, -1)
        if here is not None:
            await here.backend.aclose()

    async def __aenter__(self) -> AsyncStore:
        return self

    async def __aexit__(self, *exc_info: Any) -> None:  # (``object`` is a method here)
        await self.aclose()

    def __repr__(self) -> str:
        return f"<sharedstate.AsyncStore {self._sync.backend.describe()}>"

    # -- per event loop, per process -----------------------------------------------------
    def _here(self) -> _PerLoop:
        """This event loop's backend and combiners, made on first use in this process.

        The last one found is kept beside the table, with a weak reference to its loop and
        the process's fork count: the usual lookup is then two comparisons (the table's
        costs a weak reference made per lookup, and the fork check a system call)."""
        loop = asyncio.get_running_loop()
        last = self._last
        if last[0]() is loop and last[2] == forks[0]:
            return last[1]  # type: ignore[no-any-return]
        here = self._find_here(loop)
        self._last = (weakref.ref(loop), here, forks[0])
        return here

    def _find_here(self, loop: asyncio.AbstractEventLoop) -> _PerLoop:
        if self._pid != os.getpid():  # a forked child: the parent's loops are not ours
            # kept referenced, never used: no finalizer may touch the parent's sockets
            self._inherited.append(self._loops)
            self._loops = weakref.WeakKeyDictionary()
            self._leases = weakref.WeakKeyDictionary()
            self._loops_lock = threading.Lock()  # a parent's thread may have held it
            self._pid = os.getpid()
        here = self._loops.get(loop)
        if here is None:
            with self._loops_lock:
                here = self._loops.get(loop)
                if here is None:
                    # a loop's connections refer to it, so its entry would keep it alive for
                    # good: entries of loops closed meanwhile (one per test, say) go here
                    for closed in [other for other in list(self._loops) if other.is_closed()]:
                        self._loops.pop(closed, None)
                    here = self._loops[loop] = _PerLoop(open_async_backend(self._sync.backend))
        return here

    async def _bounded(self, request: Callable[..., Any], *args: Any) -> Any:
        token = _DEADLINE.set(time.monotonic() + self.timeout)
        try:
            return await request(*args)
        finally:
            _DEADLINE.reset(token)

    # -- objects -------------------------------------------------------------------------
    def _call(self, spec: ObjectSpec, method: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Awaitable[Any]:
        """The call, as its combiner's awaitable (the proxy's method awaits it: a plain
        function here, not a coroutine of its own, on every call's path)."""
        deadline = time.monotonic() + self.timeout
        self._check_not_holding(spec)
        here = self._here()
        combiner = here.combiners.get(spec.key) or here.combiner(
            spec.key,
            lambda: AsyncCombiner(
                self._batch_runner(here, spec), f"a call on shared object {spec.name!r}", self._one_runner(here, spec)
            ),
        )
        return combiner.submit((method, args, kwargs), deadline)

    def _one_runner(self, here: _PerLoop, spec: ObjectSpec) -> Callable[[Any, float], Awaitable[Any]]:
        """A lone call, in its caller's own task and context: the batch path without its
        bookkeeping (``Objects.run_one``'s twin, sharing its change and its finish)."""
        objects, engine, key = self._objects, self._engine, spec.key

        async def run_one(payload: Any, deadline: float) -> Any:
            change = objects.one_change(spec, payload)
            record, outcome = await run_async(engine, key, change, deadline, here.backend)
            return objects.finish_one(spec, payload, record, outcome)

        return run_one

    def _batch_runner(self, here: _PerLoop, spec: ObjectSpec) -> Callable[[list[AsyncCall], Guard], Any]:
        objects, engine, key = self._objects, self._engine, spec.key

        async def run_batch(batch: list[AsyncCall], guard: Guard) -> None:
            """One atomic step for the batch; calls cancelled before the step computes
            the write that applies are left out of it (see ``combining.py``)."""
            deadline = min(call.deadline for call in batch)

            def change(record: Any, frame: Any) -> tuple[bytes | Split | None, Any]:
                live = [call for call in batch if not call.cancelled]
                if not live:
                    guard.withdrawn = True  # nobody left: stop at the next wait
                    return None, (live, None)
                payload, outcome = objects.batch_change(spec, live)(record, frame)  # type: ignore[arg-type]
                return payload, (live, outcome)

            record, (live, outcome) = await run_async(engine, key, change, deadline, here.backend, guard)
            if live:
                objects.finish_batch(spec, live, record, outcome)

        return run_batch

    async def _read(self, spec: ObjectSpec, attribute: str) -> Any:
        """An attribute of the latest stored state (a fresh copy)."""
        steps = self._objects.read_steps(spec, attribute, time.monotonic() + self.timeout)
        return await drive_async(steps, self._here().backend)

    def _check_not_holding(self, spec: ObjectSpec) -> None:
        """A task inside its own transaction on ``spec`` must not wait for itself."""
        found = (_HOLDING.get() or {}).get(spec.key)
        if found is not None and found[0] is asyncio.current_task() and time.monotonic() < found[1]:
            raise ConfigurationError(
                f"this task is inside store.transaction({spec.name!r}): a call on the shared "
                "object would wait for that transaction's own hold; call the methods on the "
                "instance the transaction gave you instead"
            )

    def _spec_for(self, target: str | Any) -> ObjectSpec:
        if isinstance(target, AsyncSharedObject):
            if object.__getattribute__(target, "_store") is not self:
                spec = object.__getattribute__(target, "_spec")
                raise ConfigurationError(
                    f"store.transaction() got shared object {spec.name!r} of another store; "
                    "call transaction() on the store the object was declared with"
                )
            return object.__getattribute__(target, "_spec")
        return self._sync._spec_for(target)


def connect_async(
    url: str,
    *,
    codec: str | None = None,
    secret_key: bytes | str | None = None,
    prefix: str | None = None,
    timeout: float | None = None,
) -> AsyncStore:
    """Opens the store at ``url`` for async code (not awaited: nothing connects before the
    first awaited call, in each event loop and process). Options as for ``connect()``."""
    return AsyncStore(url, codec=codec, secret_key=secret_key, prefix=prefix, timeout=timeout)


__all__ = ["AsyncStore", "connect_async"]
