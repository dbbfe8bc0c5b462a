"""``memory://``: one process, thread-safe. For tests and for trying things out.

Every store opened with ``memory://`` in one process shares one space of names (as every
store opened on one SQLite file does), so two handles see each other's state. Nothing is
shared with other processes, and a forked child gets a copy.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import ClassVar

from .base import COUNTER_MAX, COUNTER_MIN, KEEP_REMOVED, Backend, Parts, PartsWrite, Record

_SPACE: dict[str, Record] = {}
#: key -> part -> (version, data; None: a tombstone). A load with ``since`` scans the key's
#: parts: this backend serves tests and one process, where that costs microseconds.
_PARTS: dict[str, dict[str, tuple[int, bytes | None]]] = {}
_COUNTERS: dict[str, int] = {}
_LOCK = threading.RLock()


class MemoryBackend(Backend):
    """Records and counters in dicts of this process, guarded by one lock."""

    schemes = ("memory",)
    parameters: ClassVar[frozenset[str]] = frozenset()
    reads_are_cheap = True
    loses_replies = False
    reads_deadline = False
    keeps_parts = True

    def load(self, key: str, since: int | None = None) -> Record | None:
        if since is None:
            return _SPACE.get(key)
        with _LOCK:
            head = _SPACE.get(key)
            if head is None:
                return None
            changed: dict[str, bytes] = {}
            removed = []
            for part, (version, data) in _PARTS.get(key, {}).items():
                if version > since:
                    if data is not None:
                        changed[part] = data
                    elif since:
                        removed.append(part)
            return Record(head.version, head.data, Parts(since, changed, tuple(removed)))

    def compare_and_set(
        self, key: str, expected: int | None, data: bytes, parts: PartsWrite | None = None
    ) -> tuple[bool, Record | None]:
        with _LOCK:
            current = _SPACE.get(key)
            if (current.version if current else None) != expected:
                return False, current
            record = Record((expected or 0) + 1, data)
            _SPACE[key] = record
            if parts is not None:
                self._write_parts(key, record.version, parts)
            return True, record

    @staticmethod
    def _write_parts(key: str, version: int, parts: PartsWrite) -> None:
        stored = _PARTS.setdefault(key, {})
        if parts.reset:
            stored.clear()
        for part, value in parts.changed.items():
            if value is not None or not parts.reset:
                stored[part] = (version, value)
        if version % 64 == 0:  # tombstones past every reader that may still need them
            for part in [p for p, (v, d) in stored.items() if d is None and v <= version - KEEP_REMOVED]:
                del stored[part]

    def delete(self, key: str) -> bool:
        with _LOCK:
            _PARTS.pop(key, None)
            found = _SPACE.pop(key, None) is not None
            return (_COUNTERS.pop(key, None) is not None) or found

    def keys(self, prefix: str) -> Iterable[str]:
        with _LOCK:
            return sorted(k for k in [*_SPACE, *_COUNTERS] if k.startswith(prefix))

    def counter_add(self, key: str, delta: int, call_id: str | None = None) -> int:
        self.check_counter(key, delta, "amount")
        with _LOCK:
            value = _COUNTERS.get(key, 0) + delta
            if not COUNTER_MIN <= value <= COUNTER_MAX:  # Python's ints never overflow; others do
                raise self.counter_overflow(key, f"adding {delta} would take it out of range, to {value}")
            _COUNTERS[key] = value
            return value

    def counter_get(self, key: str) -> int:
        return _COUNTERS.get(key, 0)

    def counter_set(self, key: str, value: int) -> None:
        self.check_counter(key, value)
        with _LOCK:
            _COUNTERS[key] = value
