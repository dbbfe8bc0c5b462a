"""Async object calls and counter increments beside the raw async operation of the same
store: a thin wrapper of ``sharedstate bench --async`` (its code lives in
``sharedstate.bench.async_harness`` and ``sharedstate.bench.raw_async``).

    python benchmarks/async_bench.py --url redis://127.0.0.1:6379/0
    python benchmarks/async_bench.py --url postgresql://postgres@127.0.0.1:5432/test
    python benchmarks/async_bench.py --url sqlite:////tmp/bench.db --processes 4 --tasks 64

Every option of ``sharedstate bench`` is passed through.
"""

from __future__ import annotations

import sys

from sharedstate.bench import bench_command

if __name__ == "__main__":
    bench_command.main(["--async", *sys.argv[1:]], prog_name="async_bench.py")
