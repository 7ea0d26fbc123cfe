#!/usr/bin/env bash
# The one test command (README, .ci/run): installs what the tests need when it is missing — idempotent —
# then runs every suite. Works on a fresh machine and reuses the build cache on a warm one.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/mcp-cockpit/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

# System tools: curl/jq/sqlite3 for the kit smoke suite (the kit's lines, verbatim), Debian's prometheus for the
# real-Prometheus test and nginx for the proxy test (both started by the tests on their own ports, never as
# services), openssl for a test CA.
# python3-venv and nodejs/npm carry the official MCP SDK clients (installed into tests/sdk by sdk_clients.sh);
# chromium (Debian's, driven by playwright-core: browser downloads fail here) runs the page tests.
# postgresql: every API test runs a second time on a PostgreSQL cluster this script starts in a temporary
# directory (scripts/pg_cluster.sh); libpq-dev builds the `postgres` feature.
missing=()
for tool in curl jq sqlite3 prometheus openssl nginx; do command -v "$tool" >/dev/null 2>&1 || missing+=("$tool"); done
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v npm >/dev/null 2>&1 || missing+=(npm)
# Debian's PostgreSQL: the tests start clusters of their own from its programs, never the packaged service.
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
[ -e /usr/include/postgresql/libpq-fe.h ] || missing+=(libpq-dev)
python3 -c "import venv, ensurepip" >/dev/null 2>&1 || missing+=(python3 python3-venv)
if ((${#missing[@]})); then
  echo "== installing: ${missing[*]}"
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

python3 scripts/leftovers.py start

# Every suite runs the build with both backends; `cargo run` builds SQLite alone, checked by its own lint.
features="failpoints,postgres"

echo "== format and lints"
cargo fmt --all --check
cargo clippy --features "$features" --all-targets --quiet -- -D warnings
cargo clippy --quiet -- -D warnings

run_tests() {
  if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --features "$features" --no-fail-fast --status-level fail --final-status-level slow
  else
    cargo test --features "$features" --no-fail-fast
  fi
}

echo "== Rust: unit and integration tests (real server, real SQLite files, real subprocesses)"
run_tests

echo "== Rust again, on PostgreSQL: every API test on a cluster of this run's own"
pg_dir="$(mktemp -d)"
trap 'bash scripts/pg_cluster.sh stop "$pg_dir" 2>/dev/null || true; rm -rf "$pg_dir"' EXIT
COCKPIT_TEST_POSTGRES="$(bash scripts/pg_cluster.sh start "$pg_dir")"
export COCKPIT_TEST_POSTGRES
run_tests
unset COCKPIT_TEST_POSTGRES
bash scripts/pg_cluster.sh stop "$pg_dir"

echo "== Kit smoke: the kit's own commands against the real binary"
cargo build --features "$features" --quiet
bash scripts/kit_smoke.sh "$CARGO_TARGET_DIR/debug/mcp-cockpit"

echo "== MCP SDK clients: the official Python and TypeScript clients against the real binary"
bash scripts/sdk_clients.sh "$CARGO_TARGET_DIR/debug/mcp-cockpit"

echo "== MCP conformance: the official suite's scenarios for the features the cockpit has"
bash scripts/conformance.sh "$CARGO_TARGET_DIR/debug/mcp-cockpit"

echo "== Web: sseClient.js under node --test, and the pages in headless Chromium"
if [ ! -d tests/web/node_modules/playwright-core ] || [ ! -d tests/web/node_modules/axe-core ]; then
  (cd tests/web && npm install --no-audit --no-fund --silent)
fi
COCKPIT_BIN="$CARGO_TARGET_DIR/debug/mcp-cockpit" node --test tests/web/sseClient.test.mjs tests/web/probe.test.mjs \
  tests/web/cockpit.test.mjs

echo "== Leftovers: the run must leave no process behind and the working tree as it found it"
python3 scripts/leftovers.py check
