"""The classic global counter as a FastAPI app, as people write it: a module global changed
by every request.

    uvicorn naive_app:app --workers 4

Under a real server this is wrong: each worker process counts on its own copy of
``global_obj``, so numbers repeat. Inside one worker the plain ``query()`` runs to its end
before the event loop serves another request; an ``await`` inside it (a log call, a query)
would lose updates there too. Compare with ``shared_app.py``.
"""

from fastapi import FastAPI
from fastapi.responses import HTMLResponse

app = FastAPI()


class SomeObj:
    def __init__(self, param):
        self.param = param

    def query(self):
        self.param += 1
        return self.param


global_obj = SomeObj(0)


@app.get("/", response_class=HTMLResponse)
async def home():
    number = global_obj.query()
    return f'<!doctype html>\n<title>Your number</title>\n<p class="number">{number}</p>\n'
