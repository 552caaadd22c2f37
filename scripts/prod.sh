#!/usr/bin/env bash
# The production topology on this machine, on real components, with one command:
#   nginx edge on :8080 -> two daphne processes -> PgBouncer (transaction mode) -> PostgreSQL,
#   Redis with AOF for the tick streams, a Celery worker and one beat, one ingestor per broker,
#   one aggregator per stream shard (straight to PostgreSQL), all under supervisord.
# Installs nginx and PgBouncer with apt when missing (as root). Its own database (brokerwatch_prod),
# its own Redis (port 6390, data in var/prod/redis) and ports, so it never touches what the tests use.
# Ctrl-C stops everything. Logs: var/prod/log/<process>.log (JSON lines). See docs/operations.md.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/_common.sh

ensure_venv requirements.txt

BW_ROOT=$(pwd)
BW_VAR=${BW_VAR:-$BW_ROOT/var/prod}
EDGE_PORT=${EDGE_PORT:-8080}
BW_WEB_PORT_1=${BW_WEB_PORT_1:-8101}
BW_WEB_PORT_2=${BW_WEB_PORT_2:-8102}
PGBOUNCER_PORT=${PGBOUNCER_PORT:-6442}
PROD_REDIS_PORT=${PROD_REDIS_PORT:-6390}
PROD_DB=${PROD_DB:-brokerwatch_prod}

need=()
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx)
command -v pgbouncer >/dev/null 2>&1 || [ -x /usr/sbin/pgbouncer ] || need+=(pgbouncer)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
if [ ${#need[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || { echo "!! missing ${need[*]}: run as root or apt-get install ${need[*]}" >&2; exit 1; }
  echo "==> installing ${need[*]} (apt)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
PATH=$PATH:/usr/sbin

ensure_postgres
mkdir -p "$BW_VAR/log" "$BW_VAR/redis"
# nginx workers and PgBouncer do not run as root.
id www-data >/dev/null 2>&1 && NGINX_USER=www-data || NGINX_USER=nobody
chown -R postgres "$BW_VAR/log" 2>/dev/null || true
chmod 0777 "$BW_VAR/log"

echo "==> PostgreSQL database $PROD_DB"
if ! psql -h 127.0.0.1 -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='$PROD_DB'" | grep -q 1; then
  createdb -h 127.0.0.1 -U postgres "$PROD_DB"
fi

echo "==> configs in $BW_VAR"
"$PY" -m deploy.render redis --out "$BW_VAR/redis.conf" PORT="$PROD_REDIS_PORT" DIR="$BW_VAR/redis"
echo '"postgres" ""' > "$BW_VAR/pgbouncer-users.txt"
"$PY" -m deploy.render pgbouncer --out "$BW_VAR/pgbouncer.ini" PORT="$PGBOUNCER_PORT" DBNAME="$PROD_DB" \
  PGHOST=127.0.0.1 PGPORT=5432 AUTH_TYPE=trust AUTH_FILE="$BW_VAR/pgbouncer-users.txt"
chmod 0644 "$BW_VAR"/*.conf "$BW_VAR"/*.ini "$BW_VAR/pgbouncer-users.txt"
"$PY" -m deploy.render nginx --out "$BW_VAR/nginx.conf" listen="127.0.0.1:$EDGE_PORT" \
  upstreams="127.0.0.1:$BW_WEB_PORT_1,127.0.0.1:$BW_WEB_PORT_2" static_root="$BW_ROOT/staticfiles" \
  var="$BW_VAR" user="$NGINX_USER" workers=2 access_log="$BW_VAR/log/edge-access.log"

# The site's environment: web and Celery through PgBouncer, aggregators straight to PostgreSQL.
export BW_ROOT BW_VAR BW_WEB_PORT_1 BW_WEB_PORT_2
export BW_PY="$BW_ROOT/$PY" BW_CELERY="$BW_ROOT/$VENV/bin/celery"
export DATABASE_URL="postgres://postgres@127.0.0.1:$PGBOUNCER_PORT/$PROD_DB" PGBOUNCER=1
export BW_DIRECT_DATABASE_URL="postgres://postgres@127.0.0.1:5432/$PROD_DB"
export REDIS_URL="redis://127.0.0.1:$PROD_REDIS_PORT/0" USE_REDIS=1 CACHE_KEY_PREFIX=${CACHE_KEY_PREFIX:-prod}
export DEBUG=0 HTTPS=${HTTPS:-0} ALLOWED_HOSTS=${ALLOWED_HOSTS:-localhost,127.0.0.1}
export SITE_URL=${SITE_URL:-http://localhost:$EDGE_PORT}
export TRUSTED_PROXY_IPS=${TRUSTED_PROXY_IPS:-127.0.0.1/32}
export LOG_LEVEL=${LOG_LEVEL:-INFO} LOG_JSON=1 PYTHONUNBUFFERED=1
if [ -z "${SECRET_KEY:-}" ]; then
  [ -f "$BW_VAR/secret-key" ] || "$PY" -c "import secrets; print(secrets.token_urlsafe(50))" > "$BW_VAR/secret-key"
  SECRET_KEY=$(cat "$BW_VAR/secret-key")
  export SECRET_KEY
fi
# The admin's path: production refuses the guessable /admin/ (config/settings.py), so this machine
# gets its own random one, kept in $BW_VAR/admin-url and printed below.
if [ -z "${ADMIN_URL:-}" ]; then
  [ -f "$BW_VAR/admin-url" ] || "$PY" -c "import secrets; print('staff-' + secrets.token_hex(4) + '/')" > "$BW_VAR/admin-url"
  ADMIN_URL=$(cat "$BW_VAR/admin-url")
  export ADMIN_URL
fi
# 10,000 keep-alive visitors need file descriptors (nginx asks for 20,000 per worker itself).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

SUPERVISORD="$VENV/bin/supervisord"
SUPERVISORCTL=("$VENV/bin/supervisorctl" -c deploy/supervisord.conf)
"$SUPERVISORD" -c deploy/supervisord.conf &
supervisord_pid=$!
stop() {
  trap - INT TERM EXIT
  echo "==> stopping (supervisord stops every process)"
  kill -TERM "$supervisord_pid" 2>/dev/null || true
  wait "$supervisord_pid" 2>/dev/null || true
}
trap stop INT TERM EXIT

for _ in $(seq 1 60); do
  redis-cli -p "$PROD_REDIS_PORT" ping >/dev/null 2>&1 && pg_isready -q -h 127.0.0.1 -p "$PGBOUNCER_PORT" && break
  sleep 0.5
done
redis-cli -p "$PROD_REDIS_PORT" ping >/dev/null || { echo "!! Redis did not start: $BW_VAR/log/redis.log" >&2; exit 1; }

echo "==> migrations, demo brokers, calendar, demo account (through PgBouncer)"
"$PY" manage.py migrate --noinput -v0
"$PY" manage.py seed_demo
"$PY" manage.py seed_calendar
"$PY" manage.py demo_user
if [ "$("$PY" manage.py shell -c 'from marketdata.models import SpreadBar; print(SpreadBar.objects.exists())' 2>/dev/null | tail -n 1)" != "True" ]; then
  echo "==> simulating ${DEMO_HISTORY_DAYS:-7} days of market history (once)"
  DATABASE_URL=$BW_DIRECT_DATABASE_URL PGBOUNCER=0 "$PY" manage.py simulate --days "${DEMO_HISTORY_DAYS:-7}" \
    --quotes-per-minute 0.1 --minute-days "${DEMO_HISTORY_DAYS:-7}"
fi
"$PY" manage.py trust_recompute --full
"$PY" manage.py collectstatic --noinput -v0
"$PY" manage.py prerender | tail -n 1

echo "==> starting web, Celery, ingestors and aggregators"
"${SUPERVISORCTL[@]}" start 'app:*' >/dev/null || true
for port in "$BW_WEB_PORT_1" "$BW_WEB_PORT_2"; do
  for _ in $(seq 1 120); do
    "$PY" -c "import socket,sys; socket.create_connection(('127.0.0.1', $port), 0.5)" 2>/dev/null && break
    sleep 0.5
  done
done
"${SUPERVISORCTL[@]}" start nginx >/dev/null
"${SUPERVISORCTL[@]}" status || true  # exits non-zero while any process is still starting
cat <<EOF
==> BrokerWatch (production topology) on http://localhost:$EDGE_PORT/  (demo / demo-password; admin at /$ADMIN_URL)
    daphne :$BW_WEB_PORT_1 :$BW_WEB_PORT_2 (metrics at /metrics on each) | PgBouncer :$PGBOUNCER_PORT | Redis :$PROD_REDIS_PORT (AOF)
    logs: $BW_VAR/log/   status: $VENV/bin/supervisorctl -s unix://$BW_VAR/supervisor.sock status   Ctrl-C stops everything.
EOF
wait "$supervisord_pid"
