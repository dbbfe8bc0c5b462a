"""The same app with sharedstate: two lines changed, and every client gets its own number.

    flask --app shared_app run --with-threads     # or: gunicorn -w 4 shared_app:app
    flask --app shared_app sharedstate show global_obj

``global_obj`` is now one object shared by every thread and worker process; each
``query()`` is one atomic step. The state lives in ``instance/sharedstate.db`` (SQLite)
unless ``SHAREDSTATE_URL`` names another store (Redis, PostgreSQL, ...).
"""

from flask import Flask, flash, render_template

from sharedstate.flask import SharedState

app = Flask(__name__)
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
def home():
    flash(global_obj.query())
    return render_template("index.html")
