#!/usr/bin/env bash
# The package in the apps of every toolchain: installs the pinned bundlers (npm ci, skipped when
# node_modules already matches package-lock.json), unpacks `npm pack` of pkg/ into node_modules
# as an app's install would, builds each fixture app with its tool (build.mjs), then drives each
# through a real call in Chromium (bundlers.test.mjs), with calling-server and the browser inside
# a fresh loopback-only network namespace. Needs root, a built pkg/ and calling-server binary.
#
# Usage: e2e/bundlers/run.sh [FIXTURE...]   (default: all; options for node --test go in
# BUNDLERS_TEST_ARGS). The built sites and the server log go to test-output/bundlers/.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
HERE=$ROOT/e2e/bundlers
OUT=$ROOT/test-output/bundlers
SERVER_BIN=${SERVER_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/debug/calling-server}
ALL=(webpack4 webpack5 webpack5-require vite esbuild umd module typescript)

if [ -z "${BUNDLERS_IN_NAMESPACE:-}" ]; then
  [ -x "$SERVER_BIN" ] || { echo "bundlers: no server binary at $SERVER_BIN (cargo build --bin calling-server)" >&2; exit 1; }
  [ -f pkg/index.cjs ] || { echo "bundlers: pkg/ is missing or old (run ./scripts/build-pkg.sh)" >&2; exit 1; }
  [ -d .tools/node_modules/playwright-core ] || { echo "bundlers: playwright-core missing (run ./scripts/setup.sh)" >&2; exit 1; }

  # The bundlers, exactly as locked; reinstalled only when the lock changed.
  if ! cmp -s "$HERE/package-lock.json" "$HERE/node_modules/.installed-lock.json"; then
    echo "bundlers: npm ci (the pinned bundlers)"
    (cd "$HERE" && npm ci --silent --no-audit --no-fund)
    cp "$HERE/package-lock.json" "$HERE/node_modules/.installed-lock.json"
  fi

  # The package as npm delivers it: only the files `npm pack` puts in the tarball.
  packed=$(mktemp -d)
  trap 'rm -rf "$packed"' EXIT
  (cd pkg && npm pack --silent --pack-destination "$packed" > /dev/null)
  rm -rf "$HERE/node_modules/trtc-calling-wasm"
  mkdir -p "$HERE/node_modules/trtc-calling-wasm"
  tar -xzf "$packed"/trtc-calling-wasm-*.tgz -C "$HERE/node_modules/trtc-calling-wasm" --strip-components=1

  fixtures=("$@")
  [ ${#fixtures[@]} -gt 0 ] || fixtures=("${ALL[@]}")
  mkdir -p "$OUT/site"
  node "$HERE/build.mjs" "$OUT/site" "${fixtures[@]}"

  export SERVER_BIN BUNDLERS_IN_NAMESPACE=1 FIXTURES="${fixtures[*]}"
  exec unshare --net bash -c 'ip link set lo up && exec "$0"' "$HERE/run.sh"
fi

PORT=${BUNDLERS_PORT:-8191}
"$SERVER_BIN" --listen "127.0.0.1:$PORT" --www "$OUT/site" --pkg pkg >"$OUT/server.log" 2>&1 &
SERVER_PID=$!
stop_server() {
  kill "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
}
trap stop_server EXIT

if ! node e2e/wait-for.mjs "http://127.0.0.1:$PORT/healthz" 30 "$SERVER_PID"; then
  echo "bundlers: calling-server did not become healthy; its log:" >&2
  cat "$OUT/server.log" >&2
  exit 1
fi

# shellcheck disable=SC2086 # BUNDLERS_TEST_ARGS is a list of options
BUNDLERS_BASE_URL="http://127.0.0.1:$PORT" \
  node --test --test-reporter=spec --test-concurrency=1 ${BUNDLERS_TEST_ARGS:-} "$HERE/bundlers.test.mjs"
