#!/usr/bin/env bash
# The main job, from a fresh clone: makes .venv, installs sharedstate with the demo's
# servers (Flask, gunicorn, gevent), and runs `sharedstate demo` on the embedded SQLite
# default. Extra arguments go to `sharedstate demo` (e.g. --clients 200).
set -euo pipefail
source "$(dirname "$0")/setup-lib.sh"
ensure_venv demo
cd "$ROOT"
exec "$VENV/bin/sharedstate" demo "$@"
