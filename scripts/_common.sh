# Shared by the scripts: a virtualenv with pinned requirements, and the local services.
VENV=${VENV:-.venv}
PY="$VENV/bin/python"

ensure_venv() {  # $1: requirements file
  local req=$1 stamp="$VENV/.installed-$(basename "$1")"
  if [ ! -x "$PY" ]; then
    echo "==> creating $VENV"
    python3 -m venv "$VENV"
    "$PY" -m pip install -q --upgrade pip
  fi
  # Reinstall only when the requirements changed since the last install.
  if [ ! -f "$stamp" ] || [ requirements.txt -nt "$stamp" ] || [ "$req" -nt "$stamp" ]; then
    echo "==> installing $req"
    "$PY" -m pip install -q -r "$req"
    touch "$stamp"
  fi
  # The compiled cores of the order book and of the Kraken book (pure Python is the fallback of each);
  # rebuilt only when one is missing or its source changed.
  local src so
  for src in orderbook/_cbook.c marketdata/feeds/_cfeeds.c; do
    so=$(find "$(dirname "$src")" -maxdepth 1 -name "$(basename "$src" .c).*.so" | head -n 1)
    if [ -z "$so" ] || [ "$src" -nt "$so" ]; then
      echo "==> building the compiled cores (setup.py build_ext)"
      "$PY" setup.py -q build_ext --inplace >/dev/null
      break
    fi
  done
}

ensure_postgres() {
  if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
    echo "==> starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start
    for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
  fi
}

ensure_redis() {
  if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
    # As in production (deploy/redis.conf): the tick streams are kept in an append-only file, fsynced
    # every second, so a restart loses nothing and a crash at most the last second or two of appends.
    local dir=${REDIS_DIR:-${TMPDIR:-/tmp}/brokerwatch-redis}
    mkdir -p "$dir"
    echo "==> starting Redis (AOF in $dir)"
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --dir "$dir" --save "" \
      --appendonly yes --appendfsync everysec
    for _ in $(seq 1 30); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 0.5; done
  fi
}

ensure_chromium() {
  if ! command -v chromium >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      echo "==> installing Debian chromium for the browser tests"
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    else
      echo "!! chromium is missing: install Debian's chromium package (apt-get install chromium)" >&2
      return 1
    fi
  fi
}

ensure_nginx() {  # the edge tests run the real nginx (tests/e2e/test_topology_edge.py)
  if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      echo "==> installing Debian nginx for the edge tests"
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >/dev/null
    else
      echo "!! nginx is missing: the edge tests will be skipped (apt-get install nginx)" >&2
    fi
  fi
}

ensure_node_tools() {  # axe-core (accessibility tests) and Lighthouse (bench.lighthouse), pinned in package-lock.json
  if ! command -v npm >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      echo "==> installing Debian nodejs and npm for axe-core and Lighthouse"
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
    else
      echo "!! npm is missing: the accessibility tests will fail (apt-get install nodejs npm)" >&2
      return 0
    fi
  fi
  # npm ci writes node_modules/.package-lock.json: reinstall only when the lock file is newer.
  if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    echo "==> installing the pinned node tools (npm ci)"
    npm ci --no-audit --no-fund --loglevel=error
  fi
}
