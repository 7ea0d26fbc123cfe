#!/usr/bin/env bash
# Refreshes the screenshots docs/dashboard.md shows (docs/screenshots/) by running the browser tests with their
# output folder pointed there. Needs what scripts/test.sh installs; builds the binary if needed.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/mcp-cockpit/target}"
cargo build --quiet
COCKPIT_BIN="$CARGO_TARGET_DIR/debug/mcp-cockpit" COCKPIT_SHOTS="$PWD/docs/screenshots" \
  node --test tests/web/probe.test.mjs tests/web/cockpit.test.mjs
