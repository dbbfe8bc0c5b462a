"""What a user writes by hand with ``multiprocessing.managers`` against the same server:
a stock proxy of its registry, an optimistic load/compare-and-set loop for an object's
read-modify-write, and the registry's atomic ``counter_add`` for a counter. (A proxy of the
user's own object would be simpler but is not atomic: the manager runs each connection in
its own thread, so two clients' method calls interleave.)"""

from __future__ import annotations

from ..backends.manager import RegistryManager, parse_manager_url
from .raw import RawOperations

RegistryManager.register("registry")


class ManagerRaw(RawOperations):
    def __init__(self, url: str, name: str) -> None:
        super().__init__(url, name)
        host, port, authkey = parse_manager_url(url)
        self.manager = RegistryManager(address=(host, port), authkey=authkey)
        self.manager.connect()
        self.registry = self.manager.registry()  # type: ignore[attr-defined]
        self.key = f"bench-raw:{name}"

    def setup(self) -> None:
        self.registry.counter_set(self.key, 0)
        found = self.registry.load(self.key)
        self.registry.compare_and_set(self.key, found[0] if found else None, b"0")

    def object_call(self) -> int:
        while True:
            version, data = self.registry.load(self.key)
            new = int(data) + 1
            if self.registry.compare_and_set(self.key, version, b"%d" % new)[0]:
                return new

    def counter_incr(self) -> int:
        return self.registry.counter_add(self.key, 1)

    def read(self) -> int:
        return max(int(self.registry.load(self.key)[1]), self.registry.counter_get(self.key))

    def close(self) -> None:
        self.registry = None
