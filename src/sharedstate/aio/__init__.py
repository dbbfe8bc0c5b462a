"""The async API: ``sharedstate.connect_async(url)``, for asyncio apps (FastAPI, Starlette,
Quart, ...). The engine's steps are the sync store's, driven with awaits
(``driver.py``); combining is per event loop (``combining.py``); backends are per store
and loop (``backends/``)."""

from .counters import AsyncCounter
from .locks import AsyncLease, AsyncLock
from .objects import AsyncSharedObject
from .store import AsyncStore, connect_async

__all__ = ["AsyncCounter", "AsyncLease", "AsyncLock", "AsyncSharedObject", "AsyncStore", "connect_async"]
