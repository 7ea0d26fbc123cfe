#!/usr/bin/env bash
# Runs the MCP Dashboard Kit's documented commands, as written, against a real mcp-cockpit binary on a
# free loopback port with a fresh database, and checks what they print. Usage: kit_smoke.sh <binary>
set -euo pipefail
BIN="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
WORK="$(mktemp -d)"
cleanup() { [ -n "${PID:-}" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
cd "$WORK"

# PORT=0: the kernel picks a free port and the server logs it, so no port is guessed.
LUKHAS_REPO_ROOT="$WORK" LUKHAS_MCP_API_KEYS="ci-test-key" PORT=0 RUST_LOG=info "$BIN" > server.log 2>&1 &
PID=$!
PORT=""
for _ in $(seq 300); do
  PORT=$(sed -n 's/.*listening on port \([0-9]*\).*/\1/p' server.log | head -1)
  [ -n "$PORT" ] && break
  kill -0 "$PID" 2>/dev/null || { cat server.log; exit 1; }
  sleep 0.1
done
[ -n "$PORT" ] || { echo "kit smoke FAILED: the server never logged its port"; cat server.log; exit 1; }
H="http://localhost:$PORT"
K="ci-test-key"
fail() { echo "kit smoke FAILED: $*"; echo "--- server log"; tail -20 server.log; exit 1; }

# The kit's CI "SSE Quick Probe", verbatim but for the port.
JOB=$(curl -s $H/mcp -H "X-API-Key: $K" -H 'Content-Type: application/json' \
  -d '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"run_eval","arguments":{"taskId":"probe","configId":"default"}}}' \
  | jq -r '.result.content[0].text' | jq -r '.jobId')
[[ "$JOB" =~ ^job_[0-9a-z]{12}$ ]] || fail "run_eval gave no job id: '$JOB'"
timeout 3s bash -c "curl -N \"$H/sse?topic=job/$JOB\" -H \"X-API-Key: $K\" | sed -n '1,6p'" > probe.out
grep -q '^event: queued' probe.out || fail "probe saw no queued event"
echo "ok: CI quick probe ($JOB)"

# "Test Real-Time Streaming": the demo job streams to its end and curl returns by itself.
JOB=$(curl -s localhost:$PORT/mcp -H "X-API-Key: $K" \
  -H 'Content-Type: application/json' \
  -d '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"run_eval","arguments":{"taskId":"demo","configId":"default"}}}' \
  | jq -r '.result.content[0].text' | jq -r '.jobId')
timeout 60s curl -sN "localhost:$PORT/sse?topic=job/$JOB" -H "X-API-Key: $K" > demo.out || fail "stream did not end by itself"
for event in queued started progress completed; do grep -q "^event: $event" demo.out || fail "no $event event"; done
[ "$(grep -c '^event: progress' demo.out)" -ge 3 ] || fail "fewer than 3 progress events"
echo "ok: demo job streamed queued → started → progress ×$(grep -c '^event: progress' demo.out) → completed"

# "Monitor Job Progress": the same without Content-Type.
JOB=$(curl -s localhost:$PORT/mcp -H "X-API-Key: $K" \
  -d '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"run_eval","arguments":{"taskId":"probe","configId":"default"}}}' \
  | jq -r '.result.content[0].text' | jq -r '.jobId')
timeout 30s curl -sN "localhost:$PORT/sse?topic=job/$JOB" -H "X-API-Key: $K" | grep -q '"status":"completed"' \
  || fail "monitor flow saw no completed status"
echo "ok: job progress monitor"

# "Audit Trail Queries": recent job activity, verbatim.
ROWS=$(sqlite3 "$WORK/.mcp-state.db" "SELECT created_at, job_id, status, result
FROM jobs
WHERE created_at > datetime('now', '-1 hour')
ORDER BY created_at DESC;")
[ "$(echo "$ROWS" | grep -c '|completed|')" -eq 3 ] || fail "audit query: expected 3 completed jobs, got: $ROWS"
echo "ok: audit query lists the 3 jobs"
! grep -q "$K" server.log || fail "the API key appears in the server log"
echo "kit smoke: 4 passed, 0 failed"
