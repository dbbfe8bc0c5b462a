"""The classic Flask global counter, as people write it: a module global changed by every
request.

    flask --app naive_app run --with-threads      # or: gunicorn -w 4 naive_app:app

Under a real server this is wrong: each worker process counts on its own copy of
``global_obj`` (numbers repeat), and threads of one process can interleave inside
``query`` (numbers repeat and skip). Compare with ``shared_app.py``.
"""

from flask import Flask, flash, render_template

app = Flask(__name__)
app.secret_key = "dev"  # flash() keeps its messages in the session cookie


class SomeObj:
    def __init__(self, param):
        self.param = param

    def query(self):
        self.param += 1
        return self.param


global_obj = SomeObj(0)


@app.route("/")
def home():
    flash(global_obj.query())
    return render_template("index.html")  # without `return` Flask would answer 500
