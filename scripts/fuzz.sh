#!/usr/bin/env bash
# Runs each fuzz target (fuzz/fuzz_targets/*.rs) with libFuzzer for a bounded time and prints
# how many inputs each survived. Any crash or broken invariant fails the run; the input that
# did it is saved under fuzz/artifacts/<target>/ (replay it with `cargo fuzz run <target> FILE`).
#
#   scripts/fuzz.sh                      every target, FUZZ_SECONDS (25) each
#   FUZZ_SECONDS=300 scripts/fuzz.sh usersig
#
# cargo-fuzz (installed by scripts/setup.sh) passes libFuzzer's instrumentation flags, some of
# them unstable: RUSTC_BOOTSTRAP lets the stable toolchain accept them. No sanitizer (they need
# nightly); panics and the targets' own assertions are what is caught.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
[ -d "$HOME/.cargo/bin" ] && export PATH="$HOME/.cargo/bin:$PATH"
export RUSTC_BOOTSTRAP=1

SECONDS_EACH=${FUZZ_SECONDS:-25}
if [ $# -gt 0 ]; then TARGETS=("$@"); else TARGETS=(client_frame usersig core_server_messages); fi

declare -A RUNS
for target in "${TARGETS[@]}"; do
  mkdir -p "corpus/$target"
  seeds=()
  [ -d "seeds/$target" ] && seeds=("seeds/$target")
  log=$(mktemp)
  echo "== fuzz $target (${SECONDS_EACH}s)"
  if ! cargo fuzz run --sanitizer none -O "$target" "corpus/$target" "${seeds[@]}" -- \
      -max_total_time="$SECONDS_EACH" -rss_limit_mb=2048 -print_final_stats=1 > "$log" 2>&1; then
    tail -n 60 "$log"
    echo "fuzz $target FAILED; the input is in fuzz/artifacts/$target/"
    exit 1
  fi
  RUNS[$target]=$(grep -oE '^stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' || echo '?')
  echo "fuzz $target: ${RUNS[$target]} inputs in ${SECONDS_EACH}s, no failure"
  rm -f "$log"
done
