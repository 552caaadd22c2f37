#!/usr/bin/env bash
# The test command: sets up everything on a fresh machine, then runs ruff, mypy and the whole
# test suite against real PostgreSQL and Redis (started here if they are down).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/_common.sh

ensure_venv requirements-dev.txt
ensure_postgres
ensure_redis
ensure_chromium

export DJANGO_SETTINGS_MODULE=config.settings_test
echo "==> ruff"
"$VENV/bin/ruff" check .
"$VENV/bin/ruff" format --check .
echo "==> mypy"
"$VENV/bin/mypy" .
echo "==> collectstatic"
"$PY" manage.py collectstatic --noinput -v0
echo "==> pytest"
"$VENV/bin/pytest" "$@"
