# Shared by scripts/demo.sh and scripts/test.sh: a virtualenv, apt packages, services.
# Everything is idempotent: a second run finds what the first one made and does nothing.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"

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
  # Bytecode for our own sources (an editable install compiles none, and where
  # PYTHONDONTWRITEBYTECODE is set nothing ever would): every server worker and CLI run that
  # the demo and the tests start would otherwise compile the package anew.
  "$VENV/bin/python" -m compileall -q "$ROOT/src" >/dev/null || true
}

ensure_tools_for_tests() {
  # The tests use the machine's Redis (6379) and PostgreSQL (5432, trust) where they answer,
  # and otherwise start private servers on free loopback ports; memcached, the manager
  # server and the restart/credential tests always run private ones. So what must be here
  # is the server programs, plus Chromium for the check report, openssl for the TLS test
  # and iptables for the partitions of tests/faults.
  local packages=()
  command -v memcached >/dev/null || packages+=(memcached)
  command -v redis-server >/dev/null || packages+=(redis-server)
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || packages+=(postgresql)
  command -v openssl >/dev/null || packages+=(openssl)
  command -v iptables >/dev/null || [ -x /usr/sbin/iptables ] || packages+=(iptables)
  [ -x /usr/bin/chromium ] || packages+=(chromium)
  [ ${#packages[@]} -eq 0 ] || apt_install "${packages[@]}"
}
