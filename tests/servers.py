"""Server backends for the conformance suite (Redis, PostgreSQL, memcached, manager).

``SERVER_BACKENDS`` maps a backend name to the name of a session fixture (defined in
``tests/conftest.py``'s plugins below) that returns a base URL of a running server.
"""

from __future__ import annotations

SERVER_BACKENDS: dict[str, str] = {}
