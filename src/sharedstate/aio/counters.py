"""The async counter: ``await hits.incr()``, the backend's native atomic add.

Concurrent increments of one counter in one event loop are combined into one add of their
sum (the batch logic is the sync counter's, ``counters.incr_batch_steps``, driven by the
async driver); each caller gets the value it would have seen had the calls run one after
another. A counter batch is never withdrawn: once its add may have been sent, it runs to
its answer, so every add is resolved by the engine (call ids), never guessed.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from ..backends.base import _DEADLINE
from ..counters import incr_batch_steps
from .combining import AsyncCall, AsyncCombiner, Execute
from .driver import Guard, drive_async

if TYPE_CHECKING:
    from .backends.base import AsyncBackend
    from .store import AsyncStore


class AsyncCounter:
    """A shared integer; every operation is awaited."""

    def __init__(self, store: AsyncStore, name: str, key: str) -> None:
        self.store = store
        self.name = name
        self.key = key

    async def incr(self, amount: int = 1) -> int:
        """Adds ``amount`` and returns the new value, atomically."""
        if type(amount) is not int:
            raise TypeError(f"a counter adds whole numbers, not {type(amount).__name__}")
        deadline = time.monotonic() + self.store.timeout
        here = self.store._here()
        combiner = here.combiners.get(self.key) or here.combiner(
            self.key, lambda: AsyncCombiner(self._executor(here.backend), f"an increment of counter {self.name!r}")
        )
        return await combiner.submit(amount, deadline)

    async def decr(self, amount: int = 1) -> int:
        """Subtracts ``amount`` and returns the new value, atomically."""
        return await self.incr(-amount)

    def _executor(self, backend: AsyncBackend) -> Execute:
        engine = self.store._engine
        key = self.key

        async def run_incrs(batch: list[AsyncCall], guard: Guard) -> None:
            await drive_async(incr_batch_steps(engine, key, batch), backend)

        return run_incrs

    async def get(self) -> int:
        """The current value."""
        backend = self.store._here().backend
        token = _DEADLINE.set(time.monotonic() + self.store.timeout)
        try:
            return await backend.counter_get(self.key)
        finally:
            _DEADLINE.reset(token)

    async def set(self, value: int) -> None:
        """Sets the value."""
        if type(value) is not int:
            raise TypeError(f"a counter holds whole numbers, not {type(value).__name__}")
        backend = self.store._here().backend
        token = _DEADLINE.set(time.monotonic() + self.store.timeout)
        try:
            await backend.counter_set(self.key, value)
        finally:
            _DEADLINE.reset(token)

    def __repr__(self) -> str:
        return f"<AsyncCounter {self.name!r}>"


__all__ = ["AsyncCounter"]
