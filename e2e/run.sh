#!/usr/bin/env bash
# Runs the end-to-end suite: the demo page in real Chromium, driven through its UI.
#
# Everything runs inside a fresh loopback-only network namespace (so WebRTC can only ever use
# 127.0.0.1): calling-server serving www/ and pkg/, then `node --test` on e2e/*.test.mjs.
# Needs root (unshare --net), a built pkg/ and a built calling-server binary.
# Screenshots and the server log go to test-output/e2e/.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

# The release build, as deployed (README). A debug build's SFU spends 3.4 times the CPU on the
# full group call's 72 streams (0.21 of a core against 0.06), which two cores shared with nine
# pages do not have: their connections drop and the call does not settle.
SERVER_BIN=${SERVER_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/calling-server}
OUT=$ROOT/test-output/e2e

if [ -z "${E2E_IN_NAMESPACE:-}" ]; then
  [ -x "$SERVER_BIN" ] || { echo "e2e: no server binary at $SERVER_BIN (cargo build --release --bin calling-server)" >&2; exit 1; }
  [ -f pkg/index.js ] || { echo "e2e: pkg/index.js missing (run ./scripts/build-pkg.sh)" >&2; exit 1; }
  [ -d .tools/node_modules/playwright-core ] || { echo "e2e: playwright-core missing (run ./scripts/setup.sh)" >&2; exit 1; }
  mkdir -p "$OUT"
  rm -f "$OUT"/*.png "$OUT"/server.log
  export SERVER_BIN E2E_IN_NAMESPACE=1
  exec unshare --net bash -c 'ip link set lo up && exec "$0" "$@"' "$ROOT/e2e/run.sh" "$@"
fi

PORT=${E2E_PORT:-8181}
# With the SFU on: the SDK's group calls go through it (1:1 calls stay peer to peer), and
# sfu.test.mjs also drives it from Chromium directly.
# Bound to every interface of this namespace (its loopback alone) and announced as 127.0.0.1, as
# a server behind a NAT announces its public IP.
"$SERVER_BIN" --listen "127.0.0.1:$PORT" --www www --pkg pkg --sfu-udp 0.0.0.0:0 \
  --sfu-announce 127.0.0.1 >"$OUT/server.log" 2>&1 &
SERVER_PID=$!
stop_server() {
  kill "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
}
trap stop_server EXIT

if ! node e2e/wait-for.mjs "http://127.0.0.1:$PORT/healthz" 30 "$SERVER_PID"; then
  echo "e2e: calling-server did not become healthy; its log:" >&2
  cat "$OUT/server.log" >&2
  exit 1
fi


E2E_BASE_URL="http://127.0.0.1:$PORT" E2E_OUTPUT="$OUT" \
  node --test --test-reporter=spec --test-concurrency=1 "$@" e2e/*.test.mjs
