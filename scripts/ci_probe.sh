#!/usr/bin/env bash
# The kit's CI "SSE Quick Probe", adapted to mcp-cockpit: start a probe job over /mcp and require its stream
# to reach `completed` within PROBE_TIMEOUT seconds. Used by .github/workflows/mcp-smoke.yml (3 s) and by
# the test suite against the real binary (60 s).
# Env: MCP_URL (default http://localhost:8766), MCP_API_KEY, PROBE_TIMEOUT (default 3).
set -euo pipefail
URL="${MCP_URL:-http://localhost:8766}"
KEY="${MCP_API_KEY:-}"
PROBE_TIMEOUT="${PROBE_TIMEOUT:-3}"
OUT="$(mktemp)"
trap 'rm -f "$OUT"' EXIT

JOB=$(curl -sf "$URL/mcp" -H "X-API-Key: $KEY" -H 'Content-Type: application/json' \
  -d '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"run_eval","arguments":{"taskId":"probe","configId":"ci"}}}' \
  | jq -r '.result.content[0].text' | jq -r '.jobId')
[[ "$JOB" =~ ^job_[0-9a-z]{12}$ ]] || { echo "SSE probe FAILED: run_eval gave no job id ($JOB)"; exit 1; }
timeout "$PROBE_TIMEOUT" curl -sfN "$URL/sse?topic=job/$JOB" -H "X-API-Key: $KEY" > "$OUT" || true
grep -q '^event: completed' "$OUT" || { echo "SSE probe FAILED: no completed event for $JOB"; cat "$OUT"; exit 1; }
echo "SSE probe passed ($JOB)"
