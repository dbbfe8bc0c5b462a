"""The classic Flask global counter's class, shared by the demo, the benchmark and the tests,
so that all of them measure the same class.

It is the object people put in a module global and then see misbehave under a real server:
``global_obj = SomeObj(0)``, and each request calls ``global_obj.query()``.
"""

from __future__ import annotations

import asyncio
import time


class SomeObj:
    """The global counter's class, as people write it: read, add one, write back."""

    def __init__(self, param):
        self.param = param

    def query(self):
        self.param += 1
        return self.param


class SomeObjWithIO:
    """The same class, with I/O between reading and writing its state.

    Real methods log, query or call out in the middle; that is when threads of one process
    interleave inside the method and lose updates, which the bare ``+= 1`` rarely shows.
    """

    def __init__(self, param):
        self.param = param

    def query(self):
        param = self.param
        time.sleep(0)  # stands for any I/O here (a log line, a database query): other threads run
        self.param = param + 1
        return self.param


class SomeObjWithAwait:
    """The counter as people write it for an async framework: an ``async`` method that
    awaits something between reading and writing its state.

    Inside one event loop a plain method is never interrupted, so the bare ``+= 1`` called
    from ``async def`` loses nothing within a worker; an ``await`` in the middle hands the
    loop to other requests, which read the same value before this one writes it back.
    """

    def __init__(self, param):
        self.param = param

    async def query(self):
        param = self.param
        await asyncio.sleep(0)  # stands for any awaited call here (a log line, a query)
        self.param = param + 1
        return self.param
