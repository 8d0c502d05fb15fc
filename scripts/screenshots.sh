#!/usr/bin/env bash
# Refresh the screenshots of docs/ui.md (docs/img/*.png) from a real `dagster dev` in headless Chromium.
# The browser tests save them to a temporary folder otherwise, so test runs never touch the tree.
set -euo pipefail
cd "$(dirname "$0")/.."
MDS_SCREENSHOTS_DIR=docs/img exec bash scripts/test.sh tests/system/test_dagster_ui.py "$@"
