#!/usr/bin/env bash
# Runs every test: native crates, the browser tests of the SDK, the end-to-end demo suite (on
# loopback, then on test hosts in network namespaces), and the package built into an app by each
# supported toolchain.
#
# Stages run in order and stop at the first failure (later stages need the earlier ones'
# output). Each stage's full output is also saved in test-output/logs/<stage>.log. The end is
# a per-stage summary (result, seconds) and a line "N passed, M failed" summed from the test
# runners' own counts; a stage that fails without reporting a failed test counts as one failure.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
[ -d "$HOME/.cargo/bin" ] && export PATH="$HOME/.cargo/bin:$PATH"
# npm's binaryen first: Debian's wasm-opt corrupts wasm-bindgen output.
export PATH="$ROOT/.tools/node_modules/.bin:$PATH"

# Browsers and their drivers leave profile and socket folders in $TMPDIR when killed; one folder
# per run, removed at the end, keeps repeated runs from filling the disk.
RUN_TMP=$(mktemp -d -t calling-tests.XXXXXX)
export TMPDIR=$RUN_TMP
trap 'rm -rf "$RUN_TMP"' EXIT

LOGS=$ROOT/test-output/logs
mkdir -p "$LOGS"

STAGES=(setup native-tests js-unit-tests build-pkg build-server browser-tests e2e netns bundlers fuzz)
declare -A RESULT SECS
PASSED=0
FAILED=0
NOTES=()

stage_cmd() {
  case "$1" in
    setup) ./scripts/setup.sh ;;
    native-tests) cargo test ;;
    js-unit-tests) node --test src/*.test.mjs ;;
    build-pkg) ./scripts/build-pkg.sh ;;
    # The debug build for the browser tests; the release build, as deployed, for the end-to-end
    # suite and the test hosts (see e2e/run.sh, e2e/netns/run.sh).
    build-server) cargo build --bin calling-server && cargo build --release --bin calling-server ;;
    browser-tests)
      if [ ! -x scripts/browser-test.sh ]; then echo "scripts/browser-test.sh is missing" >&2; return 1; fi
      ./scripts/browser-test.sh ;;
    e2e) ./e2e/run.sh ;;
    netns) ./e2e/netns/run.sh ;;
    bundlers) ./e2e/bundlers/run.sh ;;
    fuzz) FUZZ_SECONDS=${FUZZ_SECONDS:-25} ./scripts/fuzz.sh ;;
  esac
}

# Adds the counts a stage's log reports: cargo/wasm-bindgen-test "test result:" lines and
# node's test runner summary ("ℹ pass N" / "ℹ fail N"). Sets STAGE_FAILED to the failures found.
count_tests() {
  local log=$1 p f
  p=$(grep -aoE 'test result: [A-Za-z]+\. [0-9]+ passed; [0-9]+ failed' "$log" | awk '{s+=$4} END {print s+0}')
  f=$(grep -aoE 'test result: [A-Za-z]+\. [0-9]+ passed; [0-9]+ failed' "$log" | awk '{s+=$6} END {print s+0}')
  p=$((p + $(grep -aoE '^(ℹ|#) pass [0-9]+' "$log" | awk '{s+=$3} END {print s+0}')))
  f=$((f + $(grep -aoE '^(ℹ|#) fail [0-9]+' "$log" | awk '{s+=$3} END {print s+0}')))
  PASSED=$((PASSED + p))
  FAILED=$((FAILED + f))
  STAGE_FAILED=$f
}

summary() {
  echo
  echo "== summary =="
  printf '%-15s %-8s %8s\n' stage result seconds
  local s
  for s in "${STAGES[@]}"; do
    printf '%-15s %-8s %8s\n' "$s" "${RESULT[$s]:-skipped}" "${SECS[$s]:--}"
  done
  local n
  for n in "${NOTES[@]}"; do echo "$n"; done
  echo "$PASSED passed, $FAILED failed"
}

for s in "${STAGES[@]}"; do
  echo
  echo "== $s =="
  start=$(date +%s)
  stage_cmd "$s" 2>&1 </dev/null | tee "$LOGS/$s.log"
  status=${PIPESTATUS[0]}
  SECS[$s]=$(( $(date +%s) - start ))
  count_tests "$LOGS/$s.log"
  if [ "$status" -eq 0 ]; then
    RESULT[$s]=pass
  else
    RESULT[$s]=FAIL
    if [ "$STAGE_FAILED" -eq 0 ]; then
      FAILED=$((FAILED + 1))
      NOTES+=("stage $s failed (exit $status) without a failed test to count: counted as 1 failure")
    fi
    NOTES+=("stage $s failed; its output is in ${LOGS#$ROOT/}/$s.log")
    summary
    exit 1
  fi
done
summary
# A runner that reported failures but exited 0 must still fail the run.
[ "$FAILED" -eq 0 ] || exit 1
