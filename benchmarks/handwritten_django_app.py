"""The demo's Django site plus a view with a hand-written write per request: the floor for
any durable counter in a Django project.

What a careful Django user writes without sharedstate: one ``UPDATE ... RETURNING`` per
request on the project's own SQLite database, through Django's connection, kept open
between requests (``CONN_MAX_AGE = None``), in WAL mode with ``synchronous=NORMAL`` (as
sharedstate's SQLite store runs). Served at ``/handwritten/`` beside the site's naive and
sharedstate views, by the same gunicorn, so ``django_bench.py`` measures all three in the
same processes and rounds.
"""

from __future__ import annotations

import sqlite3

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.urls import path

from sharedstate.django import demo_site

TABLE = "handwritten_counter"


def create_table(database: str) -> None:
    """The counter's table in the project database, made before the server starts."""
    with sqlite3.connect(database) as db:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} (k TEXT PRIMARY KEY, v INTEGER)")
        db.execute(f"INSERT OR REPLACE INTO {TABLE} VALUES ('global_obj', 0)")


def home(request: HttpRequest) -> HttpResponse:
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {TABLE} SET v = v + 1 WHERE k = %s RETURNING v", ["global_obj"]
        )
        (number,) = cursor.fetchone()
    return demo_site._page(number, request)


# before the first connection is made: keep it between requests, and write as sharedstate does
database = settings.DATABASES["default"]
database["CONN_MAX_AGE"] = None
database["OPTIONS"] = {"init_command": "PRAGMA synchronous=NORMAL", "timeout": 30}
demo_site.urlpatterns.append(path("handwritten/", home))
application = demo_site.application
