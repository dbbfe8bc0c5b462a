"""What a careful user writes by hand for Redis with redis-py: ``INCR`` for a counter, and
for an object's read-modify-write the optimistic ``WATCH``/``GET``/``MULTI``/``SET``/``EXEC``
loop of redis-py's docs (retried when another client wrote the key in between)."""

from __future__ import annotations

from collections.abc import Callable

import redis

from .raw import RawOperations


class RedisRaw(RawOperations):
    def __init__(self, url: str, name: str) -> None:
        super().__init__(url, name)
        self.client = redis.Redis.from_url(url.split("?", 1)[0])
        self.key = f"bench-raw:{name}"

    def setup(self) -> None:
        self.client.set(self.key, 0)

    def object_call(self) -> int:
        with self.client.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(self.key)
                    value = int(pipe.get(self.key)) + 1  # type: ignore[arg-type]  # setup() made the key
                    pipe.multi()
                    pipe.set(self.key, value)
                    pipe.execute()
                    return value
                except redis.WatchError:
                    continue

    def counter_incr(self) -> int:
        return int(self.client.incr(self.key))

    def extra_operations(self) -> dict[str, Callable[[], int]]:
        return {}

    def read(self) -> int:
        return int(self.client.get(self.key))  # type: ignore[arg-type]  # setup() made the key

    def close(self) -> None:
        self.client.close()
