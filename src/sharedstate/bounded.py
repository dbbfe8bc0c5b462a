"""Per-name bookkeeping of one process, kept bounded.

A process may touch any number of names (per-user quotas, per-IP rate limits), and keeps a
little per name: the engine's cache of the last record seen, the declared spec, the
combiner, a reusable instance. Each of those dicts is trimmed to its newest
:data:`KEEP_NAMES` entries (by insertion: a name used again is put back on its next
use), so a million names cost no more memory than ten thousand. What an evicted entry
costs is in each caller's docstring: a reload, a new combiner, or, for the engine's cache,
that the process can no longer notice the record vanishing (``StateLostError``).

Trimming is checked only where a name enters a dict, never on the hot path of a name
already there.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, MutableMapping
from typing import Any

#: per-name entries one process keeps in each of its dicts
KEEP_NAMES = 10_000


def trim(
    entries: MutableMapping[Any, Any],
    limit: int | None = None,
    evicted: Callable[[Any], None] | None = None,
) -> None:
    """Drops the oldest quarter of ``entries`` once it holds more than ``limit``.

    Taking the keys is one C-level step under the GIL, so another thread adding an entry
    meanwhile cannot break it; a key dropped twice is dropped once."""
    limit = KEEP_NAMES if limit is None else limit
    if len(entries) <= limit:
        return
    for key in list(itertools.islice(entries, max(len(entries) - limit * 3 // 4, 1))):
        if entries.pop(key, None) is not None and evicted is not None:
            evicted(key)


__all__ = ["KEEP_NAMES", "trim"]
