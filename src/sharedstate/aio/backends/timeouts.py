"""One way to bound an await by a number of seconds, on every Python the package runs on."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

if sys.version_info >= (3, 11):
    from asyncio import timeout as within
else:  # pragma: no cover - Python 3.10: redis-py and psycopg depend on async-timeout there

    @asynccontextmanager
    async def within(seconds: float) -> AsyncIterator[None]:
        from async_timeout import timeout

        async with timeout(seconds):
            yield


__all__ = ["within"]
