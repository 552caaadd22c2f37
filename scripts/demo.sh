#!/usr/bin/env bash
# The run command: sets up everything on a fresh machine and runs the whole site with demo data on
# http://localhost:8000/ (SQLite by default; with Redis, Celery and live feeds; without, one process).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/_common.sh

ensure_venv requirements.txt
ensure_node_tools  # axe-core and Lighthouse: the checks run against this demo too

export DEBUG=${DEBUG:-0} HTTPS=${HTTPS:-0} REDIS_REQUIRED=${REDIS_REQUIRED:-0}
# The demo keeps the default admin URL and logs staff in without a second factor (config/settings.py).
export DEMO=${DEMO:-1}
# Settings never probe the network: whether Redis is there is decided here, once, and said.
if [ -z "${USE_REDIS:-}" ]; then
  if "$PY" -c "import os, redis; redis.Redis.from_url(os.environ.get('REDIS_URL', 'redis://127.0.0.1:6379/0'), socket_connect_timeout=0.5).ping()" 2>/dev/null; then
    USE_REDIS=1
  else
    USE_REDIS=0
  fi
fi
export USE_REDIS
export ALLOWED_HOSTS=${ALLOWED_HOSTS:-localhost,127.0.0.1}
export CACHE_KEY_PREFIX=${CACHE_KEY_PREFIX:-demo}
export LOG_LEVEL=${LOG_LEVEL:-WARNING}
if [ -z "${SECRET_KEY:-}" ]; then
  [ -f .demo-secret-key ] || "$PY" -c "import secrets; print(secrets.token_urlsafe(50))" > .demo-secret-key
  SECRET_KEY=$(cat .demo-secret-key)
  export SECRET_KEY
fi
PORT=${PORT:-8000}
HISTORY_DAYS=${DEMO_HISTORY_DAYS:-30}
RECENT_DAYS=${DEMO_RECENT_DAYS:-7}

echo "==> database, demo brokers, economic calendar, demo account"
"$PY" manage.py migrate --noinput -v0
"$PY" manage.py seed_demo
"$PY" manage.py seed_calendar
"$PY" manage.py demo_user
if [ "$("$PY" manage.py shell -c 'from marketdata.models import SpreadBar; print(SpreadBar.objects.exists())' 2>/dev/null | tail -n 1)" != "True" ]; then
  # Coarser where older: hourly bars from few quotes for the whole history, then the last days again
  # with more quotes and 1-minute bars (what the news windows and event reports read).
  echo "==> simulating $HISTORY_DAYS days of market history (once; DEMO_HISTORY_DAYS to change)"
  "$PY" manage.py simulate --days "$HISTORY_DAYS" --quotes-per-minute 0.05 --minute-days 0 --no-progress
  "$PY" manage.py simulate --days "$RECENT_DAYS" --quotes-per-minute 0.1 --minute-days "$RECENT_DAYS"
fi
echo "==> daily trust score history, validation figures, release reports"
"$PY" manage.py trust_backfill --days "$HISTORY_DAYS"
# The methodology page's validation figures (once per methodology version), so the prerendered page shows them.
"$PY" manage.py trust_validate
"$PY" manage.py trust_recompute --full
"$PY" manage.py events_report --days "$HISTORY_DAYS"
"$PY" manage.py collectstatic --noinput -v0
"$PY" manage.py prerender | tail -n 1

pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

if [ "$USE_REDIS" = 1 ]; then
  echo "==> Redis found: Celery worker with beat, simulated feeds for 14 brokers, tick aggregator"
  "$VENV/bin/celery" -A config worker --beat --loglevel=WARNING --concurrency=2 -s "${TMPDIR:-/tmp}/bw-demo-celerybeat" &
  pids+=($!)
  "$PY" manage.py ingest &
  pids+=($!)
  "$PY" manage.py aggregate &
  pids+=($!)
  "$PY" manage.py alerts &
  pids+=($!)
else
  echo "==> NO REDIS: single-process fallback. Pages and history work; live quotes need Redis."
fi

echo "==> BrokerWatch on http://localhost:$PORT/  (log in as demo / demo-password; admin at /admin/)"
# A developer sees each request (in production the nginx edge writes the access log).
WEB_ACCESS_LOG="${WEB_ACCESS_LOG:-1}" "$PY" -m config.web -b 127.0.0.1 -p "$PORT" config.asgi:application
