#!/usr/bin/env bash
# The run command: sets up everything on a fresh machine and runs the whole site with demo data
# on http://localhost:8000 (SQLite by default; Redis if one answers, else a one-process fallback).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/_common.sh

ensure_venv requirements.txt

export DEBUG=${DEBUG:-0} HTTPS=${HTTPS:-0} REDIS_REQUIRED=${REDIS_REQUIRED:-0}
export ALLOWED_HOSTS=${ALLOWED_HOSTS:-localhost,127.0.0.1}
export CACHE_KEY_PREFIX=${CACHE_KEY_PREFIX:-demo}
if [ -z "${SECRET_KEY:-}" ]; then
  [ -f .demo-secret-key ] || "$PY" -c "import secrets; print(secrets.token_urlsafe(50))" > .demo-secret-key
  SECRET_KEY=$(cat .demo-secret-key)
  export SECRET_KEY
fi
PORT=${PORT:-8000}

"$PY" manage.py migrate --noinput -v0
"$PY" manage.py seed_demo
"$PY" manage.py demo_user
"$PY" manage.py collectstatic --noinput -v0
"$PY" manage.py prerender | tail -n 1

pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

if "$PY" -c "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'config.settings'); django.setup(); from django.conf import settings; raise SystemExit(0 if settings.USE_REDIS else 1)" 2>/dev/null; then
  echo "==> Redis found: starting a Celery worker with beat"
  "$VENV/bin/celery" -A config worker --beat --loglevel=WARNING --concurrency=2 -s "${TMPDIR:-/tmp}/bw-celerybeat-schedule" &
  pids+=($!)
else
  echo "==> NO REDIS: single-process fallback (pages regenerate in threads; no Celery)."
fi

echo "==> BrokerWatch on http://localhost:$PORT/  (admin: http://localhost:$PORT/admin/, user demo / password demo-password)"
"$VENV/bin/daphne" -b 127.0.0.1 -p "$PORT" config.asgi:application
