#!/usr/bin/env bash
# Runs the browser tests (tests/*.rs) in headless Chromium against a real calling-server.
# Everything that opens a peer connection runs in a loopback-only network namespace, with the
# server started inside it (TOOLCHAIN.md). Extra arguments go to `cargo test`, e.g.
# `--test kick` or `--test ringing -- reject` (a name filter after `--`).
set -euo pipefail
cd "$(dirname "$0")/.."

PORT=${CALLING_TEST_PORT:-18080}
# Short, so the ring-timeout test is quick; long enough for the tests that accept one by one
# on a loaded machine.
RING_TIMEOUT=${CALLING_TEST_RING_TIMEOUT:-8}
# Bounds each test binary as a whole (it is per binary, not per test).
export WASM_BINDGEN_TEST_TIMEOUT=${WASM_BINDGEN_TEST_TIMEOUT:-180}
export CALLING_SERVER="127.0.0.1:$PORT"
# The built package, served with CORS to the tests' own origin (tests/pkg-server.mjs).
export CALLING_PKG_URL="http://127.0.0.1:$((PORT + 1))"
export CHROMEDRIVER=${CHROMEDRIVER:-/usr/bin/chromedriver}
export WASM_BINDGEN_TEST_ONLY_WEB=1

[ -x .tools/node_modules/.bin/wasm-opt ] || scripts/setup.sh

# Built before entering the namespace, which has no route to the registry. CALLING_SERVER is
# read at compile time by the tests, so the build below is the one wasm-pack then runs.
cargo build -p calling-server
# The entry-module test imports the built package; scripts/test.sh builds it in its own stage.
[ -f pkg/index.js ] || scripts/build-pkg.sh
cargo build -p trtc-calling-wasm --target wasm32-unknown-unknown --tests

mkdir -p test-output
SERVER_LOG=$PWD/test-output/calling-server.log

unshare --net bash -s -- "$@" <<INNER
set -euo pipefail
ip link set lo up
target/debug/calling-server --listen "$CALLING_SERVER" --ring-timeout "$RING_TIMEOUT" \
  --pkg pkg > "$SERVER_LOG" 2>&1 &
server=\$!
node tests/pkg-server.mjs pkg $((PORT + 1)) &
pkg_server=\$!
trap 'kill \$server \$pkg_server 2>/dev/null; wait \$server \$pkg_server 2>/dev/null || true' EXIT
deadline=\$((SECONDS + 20))
until curl -fsS "http://$CALLING_SERVER/healthz" > /dev/null 2>&1 &&
  curl -fsS "$CALLING_PKG_URL/index.js" > /dev/null 2>&1; do
  if [ \$SECONDS -ge \$deadline ] || ! kill -0 \$server 2>/dev/null; then
    echo "calling-server or the package server did not start; server log:" >&2
    cat "$SERVER_LOG" >&2
    exit 1
  fi
  sleep 0.2
done
wasm-pack test --chrome --headless --mode no-install . -p trtc-calling-wasm "\$@"
INNER
