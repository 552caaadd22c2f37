#!/usr/bin/env bash
# Builds the quickfix wheel (C++, from the PyPI sdist; ~5 min on an idle machine, far longer on a
# loaded one) once, with the FIX 4.4 data dictionary from the same sdist (spec/FIX44.xml: the acceptor
# needs it to read repeating groups, as every real engine does), into a cache outside the clone
# (BW_WHEEL_CACHE, default ~/.cache/brokerwatch/wheels), so fresh clones on the same machine (CI) reuse
# it. The build is capped at 20 minutes. Test-only: the FIX end-to-end test plays against a QuickFIX
# acceptor, and is skipped (saying why) when quickfix or the dictionary is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/_common.sh
QUICKFIX_VERSION=1.16.0
WHEELS=${BW_WHEEL_CACHE:-$HOME/.cache/brokerwatch/wheels}
mkdir -p "$WHEELS"
if ! ls "$WHEELS"/quickfix-"$QUICKFIX_VERSION"-*.whl >/dev/null 2>&1; then
  echo "==> building quickfix $QUICKFIX_VERSION into $WHEELS (this takes minutes, once per machine)"
  timeout 1200 "$PY" -m pip wheel -q --no-deps --no-binary quickfix "quickfix==$QUICKFIX_VERSION" -w "$WHEELS"
fi
if ! "$PY" -c "import quickfix" 2>/dev/null; then
  "$PY" -m pip install -q --no-deps "$WHEELS"/quickfix-"$QUICKFIX_VERSION"-*.whl
fi
if [ ! -f "$WHEELS/FIX44.xml" ]; then
  sdist=$(mktemp -d)
  "$PY" -m pip download -q --no-deps --no-binary :all: "quickfix==$QUICKFIX_VERSION" -d "$sdist"
  tar -xzf "$sdist"/quickfix-"$QUICKFIX_VERSION".tar.gz -O quickfix-"$QUICKFIX_VERSION"/spec/FIX44.xml >"$WHEELS/FIX44.xml.tmp"
  mv "$WHEELS/FIX44.xml.tmp" "$WHEELS/FIX44.xml"
  rm -rf "$sdist"
fi
