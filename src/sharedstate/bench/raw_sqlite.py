"""What a careful user writes by hand for SQLite: the same file, WAL, a busy timeout,
and ``BEGIN IMMEDIATE`` so two writers cannot both read the old value."""

from __future__ import annotations

import sqlite3

from ..backends.sqlite import database_path
from .raw import RawOperations


class SQLiteRaw(RawOperations):
    def __init__(self, url: str, name: str) -> None:
        super().__init__(url, name)
        self.connection = sqlite3.connect(database_path(url), timeout=30, isolation_level=None)
        self.connection.execute("PRAGMA journal_mode=WAL")
        self.connection.execute("PRAGMA synchronous=NORMAL")

    def setup(self) -> None:
        self.connection.execute(
            "CREATE TABLE IF NOT EXISTS bench_raw (name TEXT PRIMARY KEY, value INTEGER NOT NULL)"
        )
        self.connection.execute("INSERT OR REPLACE INTO bench_raw VALUES (?, 0)", (self.name,))

    def object_call(self) -> int:
        connection = self.connection
        connection.execute("BEGIN IMMEDIATE")
        try:
            (value,) = connection.execute(
                "SELECT value FROM bench_raw WHERE name = ?", (self.name,)
            ).fetchone()
            connection.execute(
                "UPDATE bench_raw SET value = ? WHERE name = ?", (value + 1, self.name)
            )
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        return value + 1

    def counter_incr(self) -> int:
        (value,) = self.connection.execute(
            "UPDATE bench_raw SET value = value + 1 WHERE name = ? RETURNING value", (self.name,)
        ).fetchone()
        return value

    def read(self) -> int:
        return self.connection.execute(
            "SELECT value FROM bench_raw WHERE name = ?", (self.name,)
        ).fetchone()[0]

    def close(self) -> None:
        self.connection.close()
