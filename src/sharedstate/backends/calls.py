"""What a server backend remembers, in this process, about counter adds whose reply was lost.

``counter_outcome`` asks the store whether an add with a given call id took effect. The
store keeps the ids of recent adds in a *bounded* structure (each backend's own: a Lua-kept
hash in Redis, a table in PostgreSQL, a dict in the manager server), so an id may be gone
because it was trimmed, not because its add never ran. To tell the two apart, Redis and the
manager keep a *horizon*: the time (on the store's clock) of the newest entry they ever
trimmed. An absent id whose add was sent after the horizon never ran, and the fence written
in the same step makes sure it never will; one sent before the horizon is unknown.
PostgreSQL keeps every id for a fixed time instead, and calls an add sent longer ago unknown.

The store cannot know when the add was sent, but this process does: :class:`InDoubt`
keeps, per lost call id, the monotonic time it was sent, and gives the store its *age*
(plus a margin for the one-way latency of that outcome request), so the store computes the send
time on its own clock; clocks of different hosts are never compared. An id this process
did not send gets a conservative default age.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Any

#: added to an add's age: the outcome request's own trip to the store, and clock drift
AGE_MARGIN = 1.0
#: entries kept per process (a lost add is asked about within its call's deadline)
LIMIT = 4096


class InDoubt:
    """Adds of this process whose request may have reached the store without a reply."""

    def __init__(self, default_age: float) -> None:
        self._default_age = default_age
        self._sent: OrderedDict[str, tuple[float, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def lost(self, call_id: str, sent_at: float, session: Any = None) -> None:
        """Remembers that the add ``call_id``, sent at ``sent_at`` (``time.monotonic()``)
        on the store's ``session`` (a server connection's id, if known), got no reply."""
        with self._lock:
            self._sent[call_id] = (sent_at, session)
            while len(self._sent) > LIMIT:
                self._sent.popitem(last=False)

    def age(self, call_id: str) -> float:
        """Seconds since the add was sent, with a margin; the default when not known."""
        with self._lock:
            found = self._sent.get(call_id)
        if found is None:
            return self._default_age
        return (time.monotonic() - found[0]) * 1.1 + AGE_MARGIN

    def session(self, call_id: str) -> Any:
        """The server session the add was sent on, or None."""
        with self._lock:
            found = self._sent.get(call_id)
        return None if found is None else found[1]


def default_age(timeout: float) -> float:
    """How long ago an add this process knows nothing of may have been sent: calls end
    within their timeout, and the engine asks before its deadline."""
    return 3 * timeout + 10 * AGE_MARGIN
