#!/usr/bin/env bash
# Coverage-guided fuzzing (libFuzzer through cargo fuzz) of the parsers that take outside input; the
# targets are listed in src/fuzzing.rs. Not part of CI: it needs time, and cargo fuzz's unstable flags
# (accepted from the stable toolchain with RUSTC_BOOTSTRAP=1, as no nightly can be fetched here).
#
#   bash scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET ...]     # default: 600 s, every target
#
# The corpus grows in ~/.cache/mcp-cockpit/fuzz (the tree stays clean), starting from fuzz/seeds. A crash
# stops its target and is saved there under artifacts/; copy it to fuzz/regressions/<target>/ with the fix,
# and the unit test `fuzzing::tests` replays it on every run from then on.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-600}"
shift || true
targets=("$@")
if ((${#targets[@]} == 0)); then
  targets=(jsonrpc_envelope tool_arguments sse_request config_file prometheus_response)
fi
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
work="$HOME/.cache/mcp-cockpit/fuzz"
export CARGO_TARGET_DIR="$work/target"
export RUSTC_BOOTSTRAP=1
for target in "${targets[@]}"; do
  mkdir -p "$work/corpus/$target" "$work/artifacts/$target"
  echo "== $target: ${seconds}s"
  cargo fuzz run --sanitizer none --fuzz-dir fuzz "$target" "$work/corpus/$target" "fuzz/seeds/$target" -- \
    -max_total_time="$seconds" -artifact_prefix="$work/artifacts/$target/" -print_final_stats=1 \
    -max_len=65536 -rss_limit_mb=4096 2>&1 | tee "$work/$target.log" | grep -E "^#[0-9]+.*(DONE|pulse)|stat::|SUMMARY|panicked|ERROR" || true
  if ls "$work/artifacts/$target"/crash-* >/dev/null 2>&1; then
    echo "!! $target crashed: $(ls "$work/artifacts/$target"/crash-*)"
    exit 1
  fi
done
