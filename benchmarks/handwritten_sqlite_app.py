"""The global counter app with a hand-written SQLite write per request: the floor for any durable store.

What a careful user writes without sharedstate: a connection per thread (opened again after
fork), WAL, and one ``UPDATE ... RETURNING`` per request. ``http_bench.py`` serves it beside
the naive app and the sharedstate app, so the cost of writing each request's number to disk
at all is measured in the same run.
"""

from __future__ import annotations

import os
import sqlite3
import threading

from flask import Flask, flash, render_template

import sharedstate.demo_app

PATH_VARIABLE = "HANDWRITTEN_DB"
_local = threading.local()


def create_table(path: str) -> None:
    with sqlite3.connect(path) as connection:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("CREATE TABLE IF NOT EXISTS counter (k TEXT PRIMARY KEY, v INTEGER)")
        connection.execute("INSERT OR REPLACE INTO counter VALUES ('global_obj', 0)")


def _connection() -> sqlite3.Connection:
    held = getattr(_local, "held", None)
    if held is None or held[0] != os.getpid():
        connection = sqlite3.connect(os.environ[PATH_VARIABLE], timeout=30, isolation_level=None)
        connection.execute("PRAGMA synchronous=NORMAL")
        held = _local.held = (os.getpid(), connection)
    return held[1]


# the demo's template folder, so the page is the same as the other two apps'
app = Flask(sharedstate.demo_app.__name__)
app.secret_key = "demo"


@app.route("/")
def home():
    (value,) = _connection().execute(
        "UPDATE counter SET v = v + 1 WHERE k = 'global_obj' RETURNING v"
    ).fetchone()
    flash(value)
    return render_template("index.html")
