"""The same FastAPI app with sharedstate: two lines changed, one ``await`` added, and every
client gets its own number.

    uvicorn shared_app:app --workers 4

``global_obj`` is now one object shared by every worker process; each ``query()`` is one
atomic step on the store, awaited, so the event loop serves other requests meanwhile. The
class stays plain, with its synchronous method. The state lives in ``sharedstate.db``
(SQLite, in the working directory); any store URL works (``redis://...``,
``postgresql://...``).
"""

from fastapi import FastAPI
from fastapi.responses import HTMLResponse

import sharedstate

app = FastAPI()
store = sharedstate.connect_async("sqlite:///sharedstate.db")  # changed: 1 of 2


class SomeObj:
    def __init__(self, param):
        self.param = param

    def query(self):
        self.param += 1
        return self.param


global_obj = store.object("global_obj", SomeObj, 0)  # changed: 2 of 2 (was: SomeObj(0))


@app.get("/", response_class=HTMLResponse)
async def home():
    number = await global_obj.query()  # awaited: the call is a trip to the store
    return f'<!doctype html>\n<title>Your number</title>\n<p class="number">{number}</p>\n'
