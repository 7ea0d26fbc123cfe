#!/usr/bin/env bash
# Runs the MCP Dashboard Kit's documented commands, as written, against a real mcp-cockpit binary on a
# free loopback port with a fresh database, and checks what they print. Usage: kit_smoke.sh <binary>
set -euo pipefail
BIN="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
HERE="$(cd "$(dirname "$0")" && pwd)"
WORK="$(mktemp -d)"
cleanup() { [ -n "${PID:-}" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
cd "$WORK"

# Canaries check every 200 ms instead of 10 s, and one stub gate breaches the kit's 800 ms SLO; the kit's
# commands themselves are unchanged. Both the CI probe's key and the examples' `key` are valid.
cat > cockpit.toml <<'TOML'
[canary]
min_interval = "10ms"
[policies."*"."*"]
interval = "200ms"
[slo.stub.gates.canary-breach]
latency_p95_ms = 1000.0
TOML
source "$HERE/serve.sh"
LUKHAS_REPO_ROOT="$WORK" LUKHAS_MCP_API_KEYS="ci-test-key,key" RUST_LOG=info \
  serve "$BIN" server.log --config cockpit.toml || { echo "kit smoke FAILED: the server did not start"; exit 1; }
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

# "Canary Deployment with SLO Monitoring", verbatim but for the port.
CANARY=$(curl -s localhost:$PORT/mcp -H 'X-API-Key: key' \
  -d '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"start_canary","arguments":{"modelId":"lukhas-v2","fromGate":"stage","toGate":"production","sloPolicy":{"latency_p95_ms":800,"error_rate":0.01}}}}' \
  | jq -r '.result.content[0].text' | jq -r '.canaryId')
[[ "$CANARY" =~ ^canary_[0-9a-z]{12}$ ]] || fail "start_canary gave no canary id: '$CANARY'"
timeout 30s curl -sN "localhost:$PORT/sse?topic=canary/$CANARY" -H "X-API-Key: key" > canary.out \
  || fail "the canary stream did not end by itself"
[ "$(grep '^event: ' canary.out | sed -n '2p')" = "event: metric" ] || fail "no metric after started: $(cat canary.out)"
[ "$(grep '^event: ' canary.out | tail -1)" = "event: promoted" ] || fail "canary not promoted: $(cat canary.out)"
grep -q '"latency_p95_ms":[0-9]' canary.out && grep -q '"toGate":"production"' canary.out || fail "metric/promoted fields"
echo "ok: canary $CANARY: metric ×$(grep -c '^event: metric' canary.out) → promoted"

# "Emergency Rollback": the kit's abort call, verbatim but for the id of a canary that is still running.
CANARY=$(curl -s localhost:$PORT/mcp -H 'X-API-Key: key' \
  -d '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"start_canary","arguments":{"modelId":"lukhas-v3","fromGate":"stage","toGate":"production","sloPolicy":{"latency_p95_ms":800,"error_rate":0.01,"interval":"5m"}}}}' \
  | jq -r '.result.content[0].text' | jq -r '.canaryId')
curl -s localhost:$PORT/mcp -H 'X-API-Key: key' \
  -d '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"abort_canary","arguments":{"canaryId":"'"$CANARY"'","reason":"manual override"}}}' > abort.out
[ "$(jq -r '.result.isError' abort.out)" = "false" ] || fail "abort_canary: $(cat abort.out)"
timeout 10s curl -sN "localhost:$PORT/sse?topic=canary/$CANARY" -H "X-API-Key: key" > rollback.out || fail "rollback stream did not end"
grep -q '^event: rolled_back' rollback.out || fail "no rolled_back event"
sed -n 's/^data: //p' rollback.out | tail -1 | jq -e '.reason == "manual override" and (.duration | type == "string")' > /dev/null \
  || fail "rolled_back lacks the reason or a duration: $(tail -2 rollback.out)"
echo "ok: emergency rollback of $CANARY"

# A canary on a breaching gate, so the breach query has something to find (another model: lukhas-v2 is at
# production now, and a canary moves a model on from where it is).
CANARY=$(curl -s localhost:$PORT/mcp -H 'X-API-Key: key' \
  -d '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"start_canary","arguments":{"modelId":"lukhas-v4","fromGate":"stage","toGate":"canary-breach","sloPolicy":{"latency_p95_ms":800,"error_rate":0.01}}}}' \
  | jq -r '.result.content[0].text' | jq -r '.canaryId')
timeout 30s curl -sN "localhost:$PORT/sse?topic=canary/$CANARY" -H "X-API-Key: key" | grep -q '^event: rolled_back' \
  || fail "the breaching canary was not rolled back"

# "Canary success rate" and "SLO breach analysis", verbatim.
RATE=$(sqlite3 "$WORK/.mcp-state.db" "SELECT 
  status,
  COUNT(*) as count,
  ROUND(COUNT(*) * 100.0 / SUM(COUNT(*)) OVER(), 1) as percentage
FROM canaries 
WHERE created_at > datetime('now', '-24 hours')
GROUP BY status;")
[ "$RATE" = "$(printf 'promoted|1|33.3\nrolled_back|2|66.7')" ] || fail "success-rate query gave: $RATE"
BREACHES=$(sqlite3 "$WORK/.mcp-state.db" "SELECT 
  cm.canary_id,
  cm.latency_p95_ms,
  cm.error_rate,
  c.from_gate,
  c.to_gate,
  c.status
FROM canary_metrics cm
JOIN canaries c ON cm.canary_id = c.id
WHERE cm.latency_p95_ms > 800 OR cm.error_rate > 0.01
ORDER BY cm.created_at DESC
LIMIT 20;")
[ "$(echo "$BREACHES" | grep -c "^$CANARY|.*|stage|canary-breach|rolled_back\$")" -eq 2 ] \
  || fail "breach query gave: $BREACHES"
echo "ok: the kit's canary success-rate and breach queries"

! grep -q "$K" server.log || fail "the API key appears in the server log"
echo "kit smoke: 7 passed, 0 failed"
