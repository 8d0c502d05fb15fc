#!/usr/bin/env bash
# Set up everything the tests need from this repo's own files, then run the whole suite.
# This is the README's test command and what CI runs (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v chromium >/dev/null 2>&1 && [ ! -x /usr/bin/chromium ]; then
  echo "== installing Debian's chromium for the browser tests"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi

missing=""
[ -x /usr/bin/redis-server ] || command -v redis-server >/dev/null 2>&1 || missing="$missing redis-server"
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || missing="$missing postgresql"
if [ -n "$missing" ]; then
  echo "== installing Debian's$missing for the Celery tests (servers are started by the tests, on 127.0.0.1)"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi
# The package starts a cluster and a server of its own: the tests use only their own, so stop those.
if [ -n "$missing" ] && command -v service >/dev/null 2>&1; then
  service postgresql stop >/dev/null 2>&1 || true
  service redis-server stop >/dev/null 2>&1 || true
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[test]"
# The MDS v2 reference of the tests: mosaicml-streaming 0.13.0's MDS writer and StreamingDataset
# (tests/streaming_reference.py). Its requirements also name torchvision, transformers and cloud SDKs,
# which its MDS code never imports, so it is installed without them; what that code does import is
# in the test extra, except torch: its CPU build (pyproject cannot pin it without pulling CUDA wheels).
.venv/bin/python -m pip install -q torch==2.13.0
.venv/bin/python -m pip install -q --no-deps mosaicml-streaming==0.13.0

export DAGSTER_DISABLE_TELEMETRY=1

# The habits that keep the code readable, before any test: lint, types, Dagster's own check.
echo "== ruff (lint and format), mypy, dagster definitions validate"
.venv/bin/ruff check --quiet .
.venv/bin/ruff format --check --quiet .
.venv/bin/mypy writer mds_assets
checks_home="$(mktemp -d)"
DAGSTER_HOME="$checks_home" .venv/bin/dagster definitions validate -w workspace.yaml >/dev/null 2>"$checks_home/err" \
  || { cat "$checks_home/err" >&2; exit 1; }
rm -rf "$checks_home"

set +e
.venv/bin/python -m pytest -p no:cacheprovider "$@"
status=$?
set -e
if [ "$status" = 5 ]; then
  echo "pytest collected no tests: that is a failure here" >&2
  exit 1
fi
exit "$status"
