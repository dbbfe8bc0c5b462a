"""The same Quart app with sharedstate: two lines changed, one ``await`` added, and every
client gets its own number.

    hypercorn --workers 4 shared_app:app      # or: uvicorn --workers 4 shared_app:app
    quart --app shared_app sharedstate show global_obj

``global_obj`` is now one object shared by every worker process; each ``query()`` is one
atomic step on the store, awaited. The state lives in ``instance/sharedstate.db`` (SQLite)
unless ``SHAREDSTATE_URL`` in ``app.config`` names another store (Redis, PostgreSQL, ...).
"""

from quart import Quart, flash, render_template

from sharedstate.quart import SharedState

app = Quart(__name__)
app.secret_key = "dev"  # flash() keeps its messages in the session cookie
state = SharedState(app)  # changed: 1 of 2


class SomeObj:
    def __init__(self, param):
        self.param = param

    def query(self):
        self.param += 1
        return self.param


global_obj = state.object("global_obj", SomeObj, 0)  # changed: 2 of 2 (was: SomeObj(0))


@app.route("/")
async def home():
    await flash(await global_obj.query())  # awaited: the call is a trip to the store
    return await render_template("index.html")
