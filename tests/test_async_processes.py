"""Sync and async clients of one deployment share one object: several processes at once,
some calling through ``connect()`` from threads, some through ``connect_async()`` from
many tasks, on the same URL and name. Every value 1..N is handed out exactly once, by the
object and by a counter."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROCESSES, CALLS = 4, 150  # per process; half of them sync, half async

SCRIPT = textwrap.dedent(
    """
    import asyncio, json, sys, threading
    import sharedstate

    class SomeObj:
        def __init__(self, param):
            self.param = param

        def query(self):
            self.param += 1
            return self.param

    url, mode, calls = sys.argv[1], sys.argv[2], int(sys.argv[3])
    values, counts = [], []
    if mode == "sync":
        store = sharedstate.connect(url)
        obj, hits = store.object("global_obj", SomeObj, 0), store.counter("hits")

        def worker(n):
            for _ in range(n):
                values.append(obj.query())
                counts.append(hits.incr())

        threads = [threading.Thread(target=worker, args=(calls // 5,)) for _ in range(5)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    else:
        store = sharedstate.connect_async(url)
        obj, hits = store.object("global_obj", SomeObj, 0), store.counter("hits")

        async def one():
            values.append(await obj.query())
            counts.append(await hits.incr())

        async def main():
            await asyncio.gather(*(one() for _ in range(calls)))
            await store.aclose()

        asyncio.run(main())
    print(json.dumps({"values": values, "counts": counts}))
    """
)


@pytest.mark.slow
def test_sync_and_async_processes_on_one_object_are_exact(multiprocess_url):
    modes = ["sync" if i % 2 else "async" for i in range(PROCESSES)]
    running = [
        subprocess.Popen(
            [sys.executable, "-c", SCRIPT, multiprocess_url, mode, str(CALLS)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        for mode in modes
    ]
    values: list[int] = []
    counts: list[int] = []
    for process in running:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err[-3000:]
        report = json.loads(out.strip().splitlines()[-1])
        assert len(report["values"]) == CALLS
        values += report["values"]
        counts += report["counts"]
    total = PROCESSES * CALLS
    assert sorted(values) == list(range(1, total + 1))
    assert sorted(counts) == list(range(1, total + 1))


FORK_SCRIPT = textwrap.dedent(
    """
    import asyncio, json, os, sys
    import sharedstate

    class SomeObj:
        def __init__(self, param):
            self.param = param

        def query(self):
            self.param += 1
            return self.param

    store = sharedstate.connect_async(sys.argv[1])  # at import time, before the fork
    obj = store.object("global_obj", SomeObj, 0)

    async def calls(n):
        return list(await asyncio.gather(*(obj.query() for _ in range(n))))

    loop = asyncio.new_event_loop()  # the parent's loop stays open across the fork
    mine = loop.run_until_complete(calls(10))
    read, write = os.pipe()
    children = []
    for _ in range(3):
        pid = os.fork()
        if pid == 0:  # the child re-opens its own connections (a new loop, new process)
            values = asyncio.run(calls(30))
            os.write(write, (json.dumps(values) + "\\n").encode())
            os._exit(0)
        children.append(pid)
    mine += loop.run_until_complete(calls(10))  # the parent goes on with its own
    codes = [os.waitpid(pid, 0)[1] for pid in children]
    os.close(write)
    data = b""
    while chunk := os.read(read, 65536):
        data += chunk
    theirs = [v for line in data.decode().splitlines() for v in json.loads(line)]
    print(json.dumps({"codes": codes, "values": mine + theirs}))
    """
)


def test_a_store_made_before_fork_is_reopened_in_each_child(multiprocess_url):
    completed = subprocess.run(
        [sys.executable, "-c", FORK_SCRIPT, multiprocess_url],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    report = json.loads(completed.stdout.strip().splitlines()[-1])
    assert report["codes"] == [0, 0, 0]
    assert sorted(report["values"]) == list(range(1, 20 + 3 * 30 + 1))
