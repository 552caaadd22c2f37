#!/usr/bin/env bash
# The test command: sets up everything on a fresh machine, then runs ruff, mypy and the whole
# test suite against real PostgreSQL and Redis (started here if they are down).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/_common.sh

ensure_venv requirements-dev.txt
# quickfix (test-only, C++) plays the broker in the FIX end-to-end test. Its build takes 5-20 minutes,
# so it is not part of every run: `BUILD_QUICKFIX=1 ./scripts/test.sh` (or scripts/quickfix_wheel.sh)
# builds it once per machine into ~/.cache/brokerwatch/wheels; later runs install it from there. Without
# it that one test is skipped and says why.
if [ "${BUILD_QUICKFIX:-0}" = 1 ]; then
  scripts/quickfix_wheel.sh || echo "quickfix wheel build failed: the QuickFIX end-to-end test will be skipped" >&2
elif ls "${BW_WHEEL_CACHE:-$HOME/.cache/brokerwatch/wheels}"/quickfix-*.whl >/dev/null 2>&1; then
  scripts/quickfix_wheel.sh
fi
ensure_postgres
ensure_redis
ensure_chromium
ensure_nginx
ensure_node_tools

export DJANGO_SETTINGS_MODULE=config.settings_test
failed=()
step() {  # run every check, then report all that failed
  local name=$1; shift
  echo "==> $name"
  "$@" || failed+=("$name")
}
step "ruff check" "$VENV/bin/ruff" check .
step "ruff format" "$VENV/bin/ruff" format --check .
step "mypy" "$VENV/bin/mypy" .
step "import-linter" "$VENV/bin/lint-imports"
step "collectstatic" "$PY" manage.py collectstatic --noinput -v0
# checkov on the rendered Kubernetes manifests and the Dockerfile (~15 s; installed once per machine).
step "checkov" scripts/deploy_lint.sh
step "pytest" "$VENV/bin/pytest" "$@"
if [ ${#failed[@]} -gt 0 ]; then
  echo "FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "All checks passed."
