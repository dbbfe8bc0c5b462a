"""A FastAPI app with a store-bound ``/call`` and a store-free ``/ping`` on one event loop.

``SHAREDSTATE_TEST_URL`` names the store; ``SHAREDSTATE_TEST_VARIANT`` picks how ``/call``
reaches it: ``async`` awaits the async API (the loop serves ``/ping`` meanwhile), ``sync``
calls the sync API from ``async def`` (the mistake: the loop stops until the store answers).
"""

import os

from fastapi import FastAPI

import sharedstate

app = FastAPI()
URL = os.environ["SHAREDSTATE_TEST_URL"]
VARIANT = os.environ.get("SHAREDSTATE_TEST_VARIANT", "async")


class SomeObj:
    def __init__(self, param: int) -> None:
        self.param = param

    def query(self) -> int:
        self.param += 1
        return self.param


if VARIANT == "async":
    async_store = sharedstate.connect_async(URL)
    async_obj = async_store.object("global_obj", SomeObj, 0)

    @app.get("/call")
    async def call() -> int:
        return await async_obj.query()

    @app.get("/value")
    async def value() -> int:
        return await async_obj.param

else:
    sync_store = sharedstate.connect(URL)
    sync_obj = sync_store.object("global_obj", SomeObj, 0)

    @app.get("/call")
    async def call() -> int:
        return sync_obj.query()  # blocks the loop for the whole store round trip

    @app.get("/value")
    async def value() -> int:
        return sync_obj.param


@app.get("/ping")
async def ping() -> str:
    return "pong"
