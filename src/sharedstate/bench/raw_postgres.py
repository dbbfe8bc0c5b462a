"""What a careful user writes by hand for PostgreSQL with psycopg 3: ``UPDATE ...
RETURNING`` for a counter, and for an object's read-modify-write a transaction that locks
the row with ``SELECT ... FOR UPDATE`` before the ``UPDATE``, so two writers queue."""

from __future__ import annotations

import psycopg

from .raw import RawOperations


class PostgresRaw(RawOperations):
    def __init__(self, url: str, name: str) -> None:
        super().__init__(url, name)
        self.connection = psycopg.connect(url.split("?", 1)[0], autocommit=True)

    def setup(self) -> None:
        self.connection.execute(
            "CREATE TABLE IF NOT EXISTS bench_raw (name text PRIMARY KEY, value bigint NOT NULL)"
        )
        self.connection.execute(
            "INSERT INTO bench_raw VALUES (%s, 0) ON CONFLICT (name) DO UPDATE SET value = 0",
            (self.name,),
        )

    def object_call(self) -> int:
        with self.connection.transaction():
            (value,) = self.connection.execute(  # type: ignore[misc]  # setup() made the row
                "SELECT value FROM bench_raw WHERE name = %s FOR UPDATE", (self.name,)
            ).fetchone()
            self.connection.execute(
                "UPDATE bench_raw SET value = %s WHERE name = %s", (value + 1, self.name)
            )
        return value + 1

    def counter_incr(self) -> int:
        (value,) = self.connection.execute(  # type: ignore[misc]  # setup() made the row
            "UPDATE bench_raw SET value = value + 1 WHERE name = %s RETURNING value", (self.name,)
        ).fetchone()
        return value

    def read(self) -> int:
        return self.connection.execute(  # type: ignore[index]  # setup() made the row
            "SELECT value FROM bench_raw WHERE name = %s", (self.name,)
        ).fetchone()[0]

    def close(self) -> None:
        self.connection.close()
