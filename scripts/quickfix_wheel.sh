#!/usr/bin/env bash
# Builds the quickfix wheel (C++, from the PyPI sdist; ~5 min on an idle machine, far longer on a
# loaded one) into .cache/wheels/ once. Test-only: the FIX end-to-end test plays against a QuickFIX
# acceptor, and is skipped (saying why) when quickfix is not installed.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/_common.sh
QUICKFIX_VERSION=1.16.0
mkdir -p .cache/wheels
if ! ls .cache/wheels/quickfix-"$QUICKFIX_VERSION"-*.whl >/dev/null 2>&1; then
  echo "==> building quickfix $QUICKFIX_VERSION (this takes minutes)"
  "$PY" -m pip wheel -q --no-deps --no-binary quickfix "quickfix==$QUICKFIX_VERSION" -w .cache/wheels
fi
if ! "$PY" -c "import quickfix" 2>/dev/null; then
  "$PY" -m pip install -q --no-deps .cache/wheels/quickfix-"$QUICKFIX_VERSION"-*.whl
fi
