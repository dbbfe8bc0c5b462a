# Shared by scripts/demo.sh and scripts/test.sh: a virtualenv, apt packages, services.
# Everything is idempotent: a second run finds what the first one made and does nothing.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
SERVICES="$ROOT/.services"   # servers this script had to start itself (git-ignored)

log() { printf '[setup] %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    log "need root (or sudo) to run: $*"; return 1; fi
}

APT_UPDATED=""
apt_install() {  # apt_install PACKAGE... : installs the ones not yet installed
  local missing=()
  for package in "$@"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ -z "$APT_UPDATED" ]; then
    log "apt-get update"
    as_root apt-get update -qq
    APT_UPDATED=1
  fi
  log "apt-get install ${missing[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

pick_python() {
  for candidate in python3.12 python3.11 python3.10 python3; do
    if command -v "$candidate" >/dev/null &&
       "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
      echo "$candidate"; return 0
    fi
  done
  log "Python >= 3.10 is required"; return 1
}

ensure_venv() {  # ensure_venv EXTRAS : the project installed in .venv with those extras
  local extras="$1" stamp="$VENV/.installed-$1"
  if [ ! -x "$VENV/bin/python" ]; then
    local python; python="$(pick_python)" || return 1
    if ! "$python" -m venv "$VENV" 2>/dev/null; then
      apt_install python3-venv && "$python" -m venv "$VENV"
    fi
  fi
  if [ ! -f "$stamp" ] || [ "$ROOT/pyproject.toml" -nt "$stamp" ]; then
    log "installing sharedstate[$extras] into .venv"
    "$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null 2>&1 || true
    "$VENV/bin/python" -m pip install -q -e "$ROOT[$extras]" 2>&1 | grep -v "is ignored" >&2 || true
    "$VENV/bin/python" -c "import sharedstate" || { log "install failed"; return 1; }
    touch "$stamp"
  fi
}

port_open() {  # port_open PORT : something answers on 127.0.0.1:PORT
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

wait_port() {
  for _ in $(seq 1 100); do port_open "$1" && return 0; sleep 0.2; done
  log "nothing answers on 127.0.0.1:$1"; return 1
}

ensure_redis() {  # the machine's Redis on 6379, or one started here on loopback
  port_open 6379 && return 0
  command -v redis-server >/dev/null || apt_install redis-server
  log "starting redis-server on 127.0.0.1:6379"
  mkdir -p "$SERVICES/redis"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir "$SERVICES/redis" --logfile "$SERVICES/redis/redis.log"
  wait_port 6379
}

ensure_postgres() {  # the machine's PostgreSQL on 5432, or a private cluster (trust, loopback)
  if ! port_open 5432; then
    ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || apt_install postgresql
    local bin; bin="$(dirname "$(ls /usr/lib/postgresql/*/bin/initdb | sort -V | tail -n 1)")"
    local data="$SERVICES/postgres"
    if [ ! -f "$data/PG_VERSION" ]; then
      log "creating a private PostgreSQL cluster in $data"
      mkdir -p "$data"
      chown -R postgres "$SERVICES" 2>/dev/null || true
      run_as_postgres "$bin/initdb" -D "$data" -U postgres --auth=trust >/dev/null
    fi
    log "starting PostgreSQL on 127.0.0.1:5432"
    run_as_postgres "$bin/pg_ctl" -D "$data" -l "$data/server.log" -w \
      -o "-c listen_addresses=127.0.0.1 -p 5432 -k /tmp" start >/dev/null
    wait_port 5432
  fi
  if ! PGCONNECT_TIMEOUT=5 "$VENV/bin/python" - <<'PY'
import psycopg
with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as c:
    if not c.execute("SELECT 1 FROM pg_database WHERE datname = 'test'").fetchone():
        c.execute("CREATE DATABASE test")
PY
  then log "PostgreSQL on 5432 does not accept postgres@127.0.0.1 without a password"; return 1; fi
}

run_as_postgres() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

ensure_tools_for_tests() {
  command -v memcached >/dev/null || apt_install memcached   # the tests start their own
  [ -x /usr/bin/chromium ] || apt_install chromium           # renders the check report
}
