"""What a careful user writes by hand for memcached with pymemcache: ``incr`` for a counter,
and for an object's read-modify-write the ``gets``/``cas`` loop (retried when another client
wrote the key in between)."""

from __future__ import annotations

from urllib.parse import urlsplit

from pymemcache.client.base import Client

from .raw import RawOperations


class MemcachedRaw(RawOperations):
    def __init__(self, url: str, name: str) -> None:
        super().__init__(url, name)
        parts = urlsplit(url)
        self.client = Client(
            (parts.hostname or "localhost", parts.port or 11211),
            no_delay=True,
            default_noreply=False,
        )
        self.key = f"bench-raw:{name}"

    def setup(self) -> None:
        self.client.set(self.key, b"0")

    def object_call(self) -> int:
        while True:
            value, cas = self.client.gets(self.key)
            new = int(value) + 1
            if self.client.cas(self.key, b"%d" % new, cas):
                return new

    def counter_incr(self) -> int:
        return int(self.client.incr(self.key, 1))

    def read(self) -> int:
        return int(self.client.get(self.key))

    def close(self) -> None:
        self.client.close()
