"""A store URL, parsed once into typed options.

``?prefix=``, ``?codec=`` and ``?timeout=`` belong to the store and mean the same on every
backend: ``timeout`` is the deadline of every call, in seconds (default 10), from the moment
its caller calls until it returns or raises, whatever it waits for (a lock, a held object, a
server). Every other query parameter belongs to the backend of the URL's scheme, which
refuses the ones it does not know.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .backends import split_url
from .errors import InvalidURLError

DEFAULT_TIMEOUT = 10.0
STORE_PARAMETERS = frozenset({"prefix", "codec", "timeout"})


@dataclass(frozen=True)
class StoreOptions:
    """What a store URL (and ``connect()``'s keyword arguments) asked for."""

    url: str
    scheme: str
    prefix: str = ""
    codec: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    #: the backend's own query parameters, still as text (each backend parses its own)
    backend: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(
        cls,
        url: str,
        *,
        prefix: str | None = None,
        timeout: float | None = None,
        codec: str | None = None,
    ) -> StoreOptions:
        scheme, query = split_url(url)
        backend = {k: v for k, v in query.items() if k not in STORE_PARAMETERS}
        raw_timeout: object = timeout if timeout is not None else query.get("timeout", DEFAULT_TIMEOUT)
        try:
            seconds = float(raw_timeout)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise InvalidURLError(f"?timeout= must be a number of seconds, not {raw_timeout!r}") from None
        if not math.isfinite(seconds) or seconds <= 0:
            raise InvalidURLError(f"?timeout= must be a positive number of seconds, not {raw_timeout!r}")
        return cls(
            url=url,
            scheme=scheme,
            prefix=prefix if prefix is not None else query.get("prefix", ""),
            codec=codec or query.get("codec"),
            timeout=seconds,
            backend=backend,
        )
