"""The global counter app with sharedstate: the same class, one shared atomic object.

The store URL comes from ``SHAREDSTATE_TEST_URL`` (the test gives each run its own
SQLite file). Connecting at import time is safe: connections open lazily, per process.
"""

import os
import time

from flask import Flask

import sharedstate

app = Flask(__name__)


class SomeObj:
    def __init__(self, param: int) -> None:
        self.param = param

    def query(self) -> int:
        value = self.param
        time.sleep(0)
        self.param = value + 1
        return self.param


store = sharedstate.connect(os.environ["SHAREDSTATE_TEST_URL"])
global_obj = store.object("global_obj", SomeObj, 0)


@app.route("/")
def index() -> str:
    return str(global_obj.query())
