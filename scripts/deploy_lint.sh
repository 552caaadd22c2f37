#!/usr/bin/env bash
# Lints the deployment files with checkov: the Kubernetes manifests as kustomize renders the
# production overlay, and the Dockerfile. (kubernetes-validate and hadolint run in the test suite:
# config/tests/test_deploy.py.) Skipped checks, each with its reason: deploy/checkov.yaml.
#
# checkov pins dozens of packages of its own, so it never goes into the project's virtualenv: it is
# installed once per machine, at a pinned version, into its own virtualenv under
# ~/.cache/brokerwatch/tools (BW_TOOLS), from PyPI with pip. ./scripts/test.sh (and so CI) runs this.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/_common.sh

CHECKOV_VERSION=3.3.30
TOOLS=${BW_TOOLS:-$HOME/.cache/brokerwatch/tools}
CHECKOV_VENV="$TOOLS/checkov-$CHECKOV_VERSION"
if [ ! -x "$CHECKOV_VENV/bin/checkov" ]; then
  echo "==> installing checkov $CHECKOV_VERSION into $CHECKOV_VENV (once per machine)"
  mkdir -p "$TOOLS"
  rm -rf "$CHECKOV_VENV"
  "$PY" -c "import sys; sys.exit(sys.version_info < (3, 9))"  # checkov's floor
  "$(readlink -f "$PY")" -m venv "$CHECKOV_VENV"
  "$CHECKOV_VENV/bin/pip" install -q --disable-pip-version-check "checkov==$CHECKOV_VERSION"
fi

rendered=$(mktemp -d)
trap 'rm -rf "$rendered"' EXIT
"$VENV/bin/kubectl" kustomize deploy/k8s/overlays/production > "$rendered/production.yaml"
"$CHECKOV_VENV/bin/checkov" --config-file deploy/checkov.yaml --skip-download \
  --file "$rendered/production.yaml" --file Dockerfile --framework kubernetes dockerfile
