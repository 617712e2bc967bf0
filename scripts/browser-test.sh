#!/usr/bin/env bash
# Runs the browser tests (tests/browser/, one wasm test binary) in headless Chromium against a
# real calling-server. Everything that opens a peer connection runs in a loopback-only network
# namespace, with the server started inside it (TOOLCHAIN.md).
#
#   scripts/browser-test.sh                    every test
#   scripts/browser-test.sh FILTER             tests whose `module::name` contains FILTER,
#                                              e.g. `kick::` or `ringing::reject`
#   scripts/browser-test.sh --test MODULE [-- NAME]   the same as `MODULE::NAME`
set -euo pipefail
cd "$(dirname "$0")/.."

FILTER=
case "${1:-}" in
  "") ;;
  --test)
    [ $# -ge 2 ] || { echo "usage: $0 [FILTER | --test MODULE [-- NAME]]" >&2; exit 2; }
    FILTER="$2::"
    [ "${3:-}" = "--" ] && FILTER="$FILTER${4:-}"
    ;;
  -*) echo "usage: $0 [FILTER | --test MODULE [-- NAME]]" >&2; exit 2 ;;
  *) FILTER=$1 ;;
esac

PORT=${CALLING_TEST_PORT:-18080}
# Short, so the ring-timeout test is quick; long enough for the tests that accept one by one
# on a loaded machine.
RING_TIMEOUT=${CALLING_TEST_RING_TIMEOUT:-8}
# Bounds the whole test binary (every test in it), not one test: well above the full run's
# length on a loaded machine, so that only a hung test reaches it.
export WASM_BINDGEN_TEST_TIMEOUT=${WASM_BINDGEN_TEST_TIMEOUT:-900}
# Short, so the reconnect tests see a session outlive a 1 s cut but not a 6 s one.
RESUME_GRACE=${CALLING_TEST_RESUME_GRACE:-4}
export CALLING_SERVER="127.0.0.1:$PORT"
# The cut proxy in front of the server (tests/cut-proxy.mjs) and its control API, for the
# reconnect tests; read at compile time like CALLING_SERVER.
export CALLING_CUT_PROXY="127.0.0.1:$((PORT + 2))"
export CALLING_CUT_CONTROL="127.0.0.1:$((PORT + 3))"
# A second server the drain tests start, stop (SIGTERM) and start again on the same port, through
# tests/drain-control.mjs and its control API; read at compile time too.
export CALLING_DRAIN_SERVER="127.0.0.1:$((PORT + 4))"
export CALLING_DRAIN_CONTROL="127.0.0.1:$((PORT + 5))"
# Three cluster nodes sharing a Redis (ports PORT+8..PORT+10) behind a load balancer, and the
# control API that restarts and kills them (tests/cluster-control.mjs); read at compile time too.
export CALLING_CLUSTER_LB="127.0.0.1:$((PORT + 6))"
export CALLING_CLUSTER_CONTROL="127.0.0.1:$((PORT + 7))"
# The built package, served with CORS to the tests' own origin (tests/pkg-server.mjs).
export CALLING_PKG_URL="http://127.0.0.1:$((PORT + 1))"
export CHROMEDRIVER=${CHROMEDRIVER:-/usr/bin/chromedriver}
export WASM_BINDGEN_TEST_ONLY_WEB=1

[ -x .tools/node_modules/.bin/wasm-opt ] || scripts/setup.sh

# Built before entering the namespace, which has no route to the registry. CALLING_SERVER is
# read at compile time by the tests, so the build below is the one wasm-pack then runs.
cargo build -p calling-server
# The entry-module and blocked-worker tests import the built package; scripts/test.sh builds it in its own stage.
[ -f pkg/index.js ] || scripts/build-pkg.sh
cargo build -p trtc-calling-wasm --target wasm32-unknown-unknown --tests

# Chromium's profile folders land in $TMPDIR and outlive a killed browser: keep them in one
# folder removed when this script ends.
BROWSER_TMP=$(mktemp -d -t browser-tests.XXXXXX)
trap 'rm -rf "$BROWSER_TMP"' EXIT
export TMPDIR=$BROWSER_TMP

mkdir -p test-output
# Every fake microphone plays this tone without a break (webdriver.json), so a test can tell
# sound arriving from silence; Chromium's own fake microphones are silent but for a beep that
# only one of them gets.
node tests/tone.mjs test-output/tone.wav
SERVER_LOG=$PWD/test-output/calling-server.log
DRAIN_SERVER_LOG=$PWD/test-output/drain-server.log
BROWSER_LOG=$PWD/test-output/browser-tests.log

unshare --net bash -s -- "$FILTER" <<INNER
set -euo pipefail
ip link set lo up
target/debug/calling-server --listen "$CALLING_SERVER" --ring-timeout "$RING_TIMEOUT" \
  --resume-grace "$RESUME_GRACE" --pkg pkg > "$SERVER_LOG" 2>&1 &
server=\$!
node tests/pkg-server.mjs pkg $((PORT + 1)) &
pkg_server=\$!
node tests/cut-proxy.mjs $((PORT + 2)) $PORT $((PORT + 3)) &
cut_proxy=\$!
: > "$DRAIN_SERVER_LOG"
node tests/drain-control.mjs $((PORT + 4)) $((PORT + 5)) target/debug/calling-server "$DRAIN_SERVER_LOG" &
drain_control=\$!
node tests/cluster-control.mjs $((PORT + 6)) $((PORT + 7)) $((PORT + 8)) target/debug/calling-server "$PWD/test-output" &
cluster_control=\$!
trap 'kill \$server \$pkg_server \$cut_proxy \$drain_control \$cluster_control 2>/dev/null; wait \$server \$pkg_server \$cut_proxy \$drain_control \$cluster_control 2>/dev/null || true' EXIT
deadline=\$((SECONDS + 20))
until curl -fsS "http://$CALLING_SERVER/healthz" > /dev/null 2>&1 &&
  curl -fsS "$CALLING_PKG_URL/index.js" > /dev/null 2>&1 &&
  curl -fsS "http://$CALLING_CUT_CONTROL/state" > /dev/null 2>&1 &&
  curl -fsS "http://$CALLING_DRAIN_CONTROL/state" > /dev/null 2>&1 &&
  curl -fsS "http://$CALLING_CLUSTER_CONTROL/state" > /dev/null 2>&1; do
  if [ \$SECONDS -ge \$deadline ] || ! kill -0 \$server 2>/dev/null || ! kill -0 \$cluster_control 2>/dev/null; then
    echo "calling-server, the package server or the cluster did not start; server log:" >&2
    cat "$SERVER_LOG" >&2
    exit 1
  fi
  sleep 0.2
done
run_tests() {
  if [ -n "\$1" ]; then
    wasm-pack test --chrome --headless --mode no-install . -p trtc-calling-wasm -- "\$1"
  else
    wasm-pack test --chrome --headless --mode no-install . -p trtc-calling-wasm
  fi
}
# Now and then Chromium never finishes loading the test runner's page: some of its module
# scripts stay pending and no test starts. webdriver.json bounds that page load (30 s), and
# that case alone -- the page timed out and no test ran -- is tried once more; any test
# failure fails at once.
no_test_ran() {
  grep -q "Timed out receiving message from renderer" "$BROWSER_LOG" &&
    ! sed -n '/Running tests.browser/,\$p' "$BROWSER_LOG" | grep -q '^test '
}
for attempt in 1 2; do
  if run_tests "\$1" 2>&1 | tee "$BROWSER_LOG"; then
    exit 0
  fi
  if [ \$attempt = 2 ] || ! no_test_ran; then
    exit 1
  fi
  echo "browser-test: the test page did not load; trying once more" >&2
done
exit 1
INNER
