#!/usr/bin/env bash
# The test suite, from a fresh clone: makes .venv, installs the server programs the tests
# run (Redis, PostgreSQL, memcached; Chromium for the report), then runs every test against
# real servers: the machine's own where they answer on their standard ports, otherwise
# private ones the tests start on free loopback ports. Extra arguments go to pytest.
set -euo pipefail
source "$(dirname "$0")/setup-lib.sh"
ensure_venv test
ensure_tools_for_tests
cd "$ROOT"
"$VENV/bin/ruff" check src tests
exec "$VENV/bin/python" -m pytest "$@"
