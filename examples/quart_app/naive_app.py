"""The classic global counter as a Quart app (Flask's API on asyncio), as people write it:
a module global changed by every request.

    hypercorn --workers 4 naive_app:app       # or: uvicorn --workers 4 naive_app:app

Under a real server this is wrong: each worker process counts on its own copy of
``global_obj``, so numbers repeat. Compare with ``shared_app.py``.
"""

from quart import Quart, flash, render_template

app = Quart(__name__)
app.secret_key = "dev"  # flash() keeps its messages in the session cookie


class SomeObj:
    def __init__(self, param):
        self.param = param

    def query(self):
        self.param += 1
        return self.param


global_obj = SomeObj(0)


@app.route("/")
async def home():
    await flash(global_obj.query())
    return await render_template("index.html")
