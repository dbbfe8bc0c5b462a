"""The question's object (seed/flask-global-state-question.txt), shared by the demo, the
benchmark and the tests, so that all of them measure the same class."""

from __future__ import annotations

import time


class SomeObj:
    """The question's object, exactly."""

    def __init__(self, param):
        self.param = param

    def query(self):
        self.param += 1
        return self.param


class SomeObjWithIO:
    """The question's object whose method does I/O between reading and writing its state."""

    def __init__(self, param):
        self.param = param

    def query(self):
        param = self.param
        time.sleep(0)  # stands for any I/O here (a log line, a database query): other threads run
        self.param = param + 1
        return self.param
