#!/usr/bin/env bash
# The test suite, from a fresh clone: makes .venv, installs what the tests need (memcached,
# Chromium; Redis and PostgreSQL where none answers on their standard ports), then runs
# every test against real servers. Extra arguments go to pytest.
set -euo pipefail
source "$(dirname "$0")/setup-lib.sh"
ensure_venv test
ensure_tools_for_tests
ensure_redis
ensure_postgres
cd "$ROOT"
"$VENV/bin/ruff" check src tests
exec "$VENV/bin/python" -m pytest "$@"
