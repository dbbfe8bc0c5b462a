"""Memory of one process that touches many distinct names (per-user quotas, per-IP limits).

Each name gets one shared object, declared and called once (``store.object(f"user-{i}",
Quota).hit()``), and optionally one counter increment. The process's resident memory
(VmRSS) is measured after the first 1,000 names and then at every tenfold; the per-name
dicts sharedstate keeps (the engine's cache, the declarations, the combiners, the reusable
instances) are bounded (``sharedstate/bounded.py``), so the growth must stay small: the
issue's bar is under 100 MB more after 1,000,000 names than after 1,000. Finally it
deletes a few names and checks that their entries are gone.

Usage::

    .venv/bin/python benchmarks/many_names.py [--names 1000000] [--url URL] [--counters]

The default store is a fresh SQLite file in a temporary directory. Not a timed test: it
takes a few minutes for a million names.
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import sharedstate  # noqa: E402
from sharedstate import bounded  # noqa: E402


class Quota:
    """A per-user quota: the kind of object an app keeps one of per user."""

    def __init__(self, limit: int = 100) -> None:
        self.limit = limit
        self.used = 0

    def hit(self) -> bool:
        if self.used >= self.limit:
            return False
        self.used += 1
        return True


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def sizes(store: sharedstate.Store) -> dict[str, int]:
    engine = store._engine
    return {
        "engine cache": len(engine.cache),
        "frames": len(engine._frames),
        "specs": len(store._specs),
        "combiners": len(store._combiners),
        "instances": len(store._objects._instances),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--names", type=int, default=1_000_000)
    parser.add_argument("--url", default=None, help="store URL (default: a new SQLite file)")
    parser.add_argument("--counters", action="store_true", help="also one counter per name")
    args = parser.parse_args()
    directory = tempfile.mkdtemp(prefix="sharedstate-many-names-")
    url = args.url or f"sqlite:///{directory}/names.db"
    prefix = f"many{int(time.time())}-"
    print(f"store: {url}  prefix: {prefix}  names: {args.names:,}  KEEP_NAMES: {bounded.KEEP_NAMES:,}")
    rows = []
    started = time.monotonic()
    with sharedstate.connect(url, prefix=prefix) as store:
        checkpoint = 1_000
        for i in range(args.names):
            name = f"user-{i}"
            assert store.object(name, Quota, 100).hit()
            if args.counters:
                store.counter(name).incr()
            if i + 1 == checkpoint or i + 1 == args.names:
                gc.collect()
                rows.append((i + 1, rss_mb(), time.monotonic() - started, sizes(store)))
                print(f"  {i + 1:>10,} names  RSS {rows[-1][1]:8.1f} MB  {rows[-1][2]:7.1f} s  {rows[-1][3]}")
                checkpoint *= 10
        # delete() frees a name's entries
        last = [f"user-{i}" for i in range(args.names - 10, args.names)]
        for name in last:
            store.object(name, Quota, 100).hit()
            store.delete(name)
        key = store.prefix + "o:" + last[-1]
        leftover = [
            where
            for where, held in (
                ("engine cache", store._engine.cache),
                ("specs", store._specs),
                ("combiners", store._combiners),
                ("instances", store._objects._instances),
            )
            if (last[-1] if where == "specs" else key) in held
        ]
        print(f"after delete(): entries left for a deleted name: {leftover or 'none'}")
    first, final = rows[0], rows[-1]
    growth = final[1] - first[1]
    print()
    print("| names | RSS (MB) | RSS - RSS at 1,000 (MB) | seconds |")
    print("| ---: | ---: | ---: | ---: |")
    for count, rss, seconds, _ in rows:
        print(f"| {count:,} | {rss:.1f} | {rss - first[1]:+.1f} | {seconds:.0f} |")
    verdict = "met" if growth < 100 else "NOT met"
    print(f"\ngrowth from 1,000 to {final[0]:,} names: {growth:+.1f} MB (bar: < 100 MB): {verdict}")
    sys.exit(0 if growth < 100 and not leftover else 1)


if __name__ == "__main__":
    main()
