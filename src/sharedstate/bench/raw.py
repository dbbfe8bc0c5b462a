"""The hand-written operations each backend is measured against.

A benchmark is only honest beside what a careful user would write by hand on the same
server: ``RawOperations`` is that code, one subclass per backend (``raw_<scheme>.py``),
made once per worker thread. Each returns the value it produced, so the harness can also
check that the raw operation itself counted right.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

#: URL scheme -> "module:class" inside sharedstate.bench
RAW_OPERATIONS: dict[str, str] = {
    "memory": "raw_memory:MemoryRaw",
    "sqlite": "raw_sqlite:SQLiteRaw",
    "redis": "raw_redis:RedisRaw",
    "rediss": "raw_redis:RedisRaw",
    "postgresql": "raw_postgres:PostgresRaw",
    "postgres": "raw_postgres:PostgresRaw",
    "memcached": "raw_memcached:MemcachedRaw",
    "manager": "raw_manager:ManagerRaw",
}


class RawOperations:
    """Hand-written equivalents of sharedstate's operations, for one thread.

    ``name`` is unique to the benchmark run. Every operation acts on one integer stored
    under that name (a row, a key), so ``read`` tells the harness whether the calls
    counted exactly. ``setup`` runs once, in the parent process, before any worker starts.
    """

    def __init__(self, url: str, name: str) -> None:
        self.url = url
        self.name = name

    def setup(self) -> None:
        """Create the key/row/table the raw operations use, starting from 0."""

    def read(self) -> int:
        """The integer's current value."""
        raise NotImplementedError

    def object_call(self) -> int:
        """The global counter's ``self.param += 1; return self.param`` as a hand-written atomic
        read-modify-write on this backend (e.g. BEGIN IMMEDIATE; SELECT; UPDATE; COMMIT)."""
        raise NotImplementedError

    def counter_incr(self) -> int:
        """The backend's native atomic increment (e.g. UPDATE ... RETURNING, INCR)."""
        raise NotImplementedError

    def extra_operations(self) -> dict[str, Callable[[], int]]:
        """Further raw operations worth showing beside ours, by label (e.g. Redis'
        WATCH/GET/SET/EXEC read-modify-write); each returns the new value."""
        return {}

    def close(self) -> None:
        """Release this thread's connection."""


def raw_operations_class(scheme: str) -> type[RawOperations]:
    target = RAW_OPERATIONS.get(scheme)
    if target is None:
        raise ValueError(f"no raw operations to compare with for {scheme}://")
    module_name, class_name = target.split(":")
    module = importlib.import_module(f"sharedstate.bench.{module_name}")
    return getattr(module, class_name)
