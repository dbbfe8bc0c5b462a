"""The FastAPI global-counter app of ``examples/fastapi_app`` on Redis, for ``asgi_bench.py``.

``shared``: ``examples/fastapi_app/shared_app.py`` with its store URL from
``SHAREDSTATE_URL`` (the bench's Redis, a prefix of the run's own). ``handwritten``: the
same page written by hand with one ``redis.asyncio`` ``INCR`` per request, the floor of one
store trip per request, on the key ``ASGI_BENCH_KEY``. The naive app is the example itself.
"""

import os

import redis.asyncio
from fastapi import FastAPI
from fastapi.responses import HTMLResponse

import sharedstate

PAGE = '<!doctype html>\n<title>Your number</title>\n<p class="number">{}</p>\n'

shared = FastAPI()
store = sharedstate.connect_async(os.environ["SHAREDSTATE_URL"])


class SomeObj:
    def __init__(self, param):
        self.param = param

    def query(self):
        self.param += 1
        return self.param


global_obj = store.object("global_obj", SomeObj, 0)


@shared.get("/", response_class=HTMLResponse)
async def shared_home():
    number = await global_obj.query()
    return PAGE.format(number)


handwritten = FastAPI()
client = redis.asyncio.Redis.from_url(os.environ["ASGI_BENCH_REDIS"])
KEY = os.environ["ASGI_BENCH_KEY"]


@handwritten.get("/", response_class=HTMLResponse)
async def handwritten_home():
    number = await client.incr(KEY)
    return PAGE.format(number)
