"""What a careful user writes by hand in one process: a dict and a ``threading.Lock``."""

from __future__ import annotations

import threading

from .raw import RawOperations

_VALUES: dict[str, int] = {}
_LOCK = threading.Lock()


class MemoryRaw(RawOperations):
    def setup(self) -> None:
        _VALUES[self.name] = 0

    def object_call(self) -> int:
        with _LOCK:
            value = _VALUES[self.name] + 1
            _VALUES[self.name] = value
            return value

    def counter_incr(self) -> int:
        return self.object_call()

    def read(self) -> int:
        return _VALUES[self.name]
