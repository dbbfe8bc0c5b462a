"""The classic Flask global counter: a module global, under a real WSGI server.

``time.sleep(0)`` between the read and the write stands for any I/O there (a log line,
a query): it lets another thread run, as real code does. Each gunicorn worker process
also has its own copy of the global, so with several workers duplicates are certain.
"""

import time

from flask import Flask

app = Flask(__name__)


class SomeObj:
    def __init__(self, param: int) -> None:
        self.param = param

    def query(self) -> int:
        value = self.param
        time.sleep(0)
        self.param = value + 1
        return self.param


global_obj = SomeObj(0)


@app.route("/")
def index() -> str:
    return str(global_obj.query())
