# Sourced by the scripts that drive the real binary. serve <binary> <log file> [args…] starts it on a free
# loopback port (PORT=0: the kernel picks, the server logs it, so no port is guessed), with whatever
# environment the caller puts before the call, and sets PID and PORT once it listens.
serve() {
  local bin=$1 log=$2
  shift 2
  PORT=0 "$bin" "$@" > "$log" 2>&1 &
  PID=$!
  PORT=""
  for _ in $(seq 300); do
    PORT=$(sed -n 's/.*listening on port \([0-9]*\).*/\1/p' "$log" | head -1)
    [ -n "$PORT" ] && return 0
    kill -0 "$PID" 2>/dev/null || { cat "$log"; return 1; }
    sleep 0.1
  done
  echo "the server never logged its port"
  cat "$log"
  return 1
}
