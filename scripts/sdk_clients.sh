#!/usr/bin/env bash
# The official MCP SDK clients against a real mcp-cockpit binary with an API key, both generations: the
# handshake era (Python `mcp` 1.x and `@modelcontextprotocol/sdk` 1.x in tests/sdk) and the stateless
# 2026-07-28 revision (Python `mcp` 2.x and `@modelcontextprotocol/client` 2.x in tests/sdk2, which must
# negotiate it with no initialize). Installs them into local folders when missing (idempotent).
# Usage: sdk_clients.sh <binary>
set -euo pipefail
BIN="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
SDK="$(cd "$(dirname "$0")/../tests/sdk" && pwd)"
SDK2="$(cd "$(dirname "$0")/../tests/sdk2" && pwd)"

# install <dir> <node package> <mcp major version> [python module]: a venv with requirements.txt and a
# node_modules with package.json, when missing.
install() {
  if [ ! -x "$1/.venv/bin/python" ]; then python3 -m venv "$1/.venv"; fi
  if ! "$1/.venv/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('mcp').split('.')[0] != '$3')" \
      2>/dev/null || ! "$1/.venv/bin/python" -c "import ${4:-mcp}" 2>/dev/null; then
    echo "== installing the Python MCP SDK into $1/.venv"
    "$1/.venv/bin/pip" install --quiet --disable-pip-version-check -r "$1/requirements.txt"
  fi
  if [ ! -d "$1/node_modules/$2" ]; then
    echo "== installing $2 into $1/node_modules"
    (cd "$1" && npm install --no-audit --no-fund --silent)
  fi
}
install "$SDK" @modelcontextprotocol/sdk 1
install "$SDK2" @modelcontextprotocol/client 2 fastmcp

WORK="$(mktemp -d)"
cleanup() { [ -n "${PID:-}" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
KEY="sdk-test-key-$RANDOM"
# `ninety` is an eval that runs 90 s, longer than the TypeScript SDK's default request timeout (60 s): the
# 2026-07-28 client runs it as a task.
cat > "$WORK/cockpit.toml" <<'TOML'
[evals.ninety]
description = "An eval that takes 90 seconds"
command = ["sh", "-c", '''for i in 1 2 3 4 5 6 7 8 9; do sleep 10; echo "{\"progress\": 0.$i}"; done; echo '{"result": {"ok": true}}'''']
timeout_seconds = 150
TOML
source "$(dirname "$0")/serve.sh"
LUKHAS_REPO_ROOT="$WORK" LUKHAS_MCP_API_KEYS="$KEY" RUST_LOG=info serve "$BIN" "$WORK/server.log" --config "$WORK/cockpit.toml" \
  || { echo "sdk clients FAILED: the server did not start"; exit 1; }
BASE="http://127.0.0.1:$PORT"

fail() { echo "sdk clients FAILED: $*"; echo "--- server log"; tail -30 "$WORK/server.log"; exit 1; }
echo "-- Python SDK ($("$SDK/.venv/bin/python" -c 'import importlib.metadata as m; print(m.version("mcp"))'))"
timeout 180 "$SDK/.venv/bin/python" "$SDK/client.py" "$BASE" "$KEY" || fail "the Python SDK client"
echo "-- TypeScript SDK ($(node -p "require('$SDK/node_modules/@modelcontextprotocol/sdk/package.json').version"))"
timeout 180 node "$SDK/client.mjs" "$BASE" "$KEY" || fail "the TypeScript SDK client"
echo "-- Python SDK ($("$SDK2/.venv/bin/python" -c 'import importlib.metadata as m; print(m.version("mcp"))'), 2026-07-28)"
timeout 180 "$SDK2/.venv/bin/python" "$SDK2/client.py" "$BASE" "$KEY" || fail "the Python SDK 2 client"
echo "-- fastmcp ($("$SDK2/.venv/bin/python" -c 'import importlib.metadata as m; print(m.version("fastmcp"))'))"
timeout 180 "$SDK2/.venv/bin/python" "$SDK2/fastmcp_client.py" "$BASE" "$KEY" || fail "the fastmcp client"
echo "-- TypeScript SDK ($(node -p "require('$SDK2/node_modules/@modelcontextprotocol/client/package.json').version"), 2026-07-28)"
timeout 180 node "$SDK2/client.mjs" "$BASE" "$KEY" || fail "the TypeScript SDK 2 client"
! grep -q "$KEY" "$WORK/server.log" || fail "the API key appears in the server log"
echo "sdk clients: Python and TypeScript, both generations, and fastmcp passed"
