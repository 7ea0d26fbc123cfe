#!/usr/bin/env bash
# The official MCP SDK clients (Python `mcp` in a venv, TypeScript `@modelcontextprotocol/sdk` in a local
# node_modules) against a real mcp-cockpit binary with an API key. Installs them when missing (idempotent).
# Usage: sdk_clients.sh <binary>
set -euo pipefail
BIN="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
SDK="$(cd "$(dirname "$0")/../tests/sdk" && pwd)"

if [ ! -x "$SDK/.venv/bin/python" ]; then python3 -m venv "$SDK/.venv"; fi
if ! "$SDK/.venv/bin/python" -c "import mcp" 2>/dev/null; then
  echo "== installing the Python MCP SDK into tests/sdk/.venv"
  "$SDK/.venv/bin/pip" install --quiet --disable-pip-version-check -r "$SDK/requirements.txt"
fi
if [ ! -d "$SDK/node_modules/@modelcontextprotocol/sdk" ]; then
  echo "== installing the TypeScript MCP SDK into tests/sdk/node_modules"
  (cd "$SDK" && npm install --no-audit --no-fund --silent)
fi

WORK="$(mktemp -d)"
cleanup() { [ -n "${PID:-}" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
KEY="sdk-test-key-$RANDOM"
LUKHAS_REPO_ROOT="$WORK" LUKHAS_MCP_API_KEYS="$KEY" PORT=0 RUST_LOG=info "$BIN" > "$WORK/server.log" 2>&1 &
PID=$!
PORT=""
for _ in $(seq 300); do
  PORT=$(sed -n 's/.*listening on port \([0-9]*\).*/\1/p' "$WORK/server.log" | head -1)
  [ -n "$PORT" ] && break
  kill -0 "$PID" 2>/dev/null || { cat "$WORK/server.log"; exit 1; }
  sleep 0.1
done
[ -n "$PORT" ] || { echo "sdk clients FAILED: the server never logged its port"; exit 1; }
BASE="http://127.0.0.1:$PORT"

fail() { echo "sdk clients FAILED: $*"; echo "--- server log"; tail -30 "$WORK/server.log"; exit 1; }
echo "-- Python SDK ($("$SDK/.venv/bin/python" -c 'import importlib.metadata as m; print(m.version("mcp"))'))"
timeout 180 "$SDK/.venv/bin/python" "$SDK/client.py" "$BASE" "$KEY" || fail "the Python SDK client"
echo "-- TypeScript SDK ($(node -p "require('$SDK/node_modules/@modelcontextprotocol/sdk/package.json').version"))"
timeout 180 node "$SDK/client.mjs" "$BASE" "$KEY" || fail "the TypeScript SDK client"
! grep -q "$KEY" "$WORK/server.log" || fail "the API key appears in the server log"
echo "sdk clients: Python and TypeScript passed"
