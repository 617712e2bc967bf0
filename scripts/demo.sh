#!/usr/bin/env bash
# Runs the demo: installs what is missing, builds the package, then starts calling-server in
# development mode serving www/ and pkg/ on http://localhost:8080 until Ctrl-C.
# Set DEMO_LISTEN to use another address (e.g. DEMO_LISTEN=127.0.0.1:9090).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
[ -d "$HOME/.cargo/bin" ] && export PATH="$HOME/.cargo/bin:$PATH"
# npm's binaryen first: Debian's wasm-opt corrupts wasm-bindgen output.
export PATH="$ROOT/.tools/node_modules/.bin:$PATH"
LISTEN=${DEMO_LISTEN:-127.0.0.1:8080}
PORT=${LISTEN##*:}

step() { printf '\n== %s ==\n' "$*" >&2; }

step "setup"
./scripts/setup.sh
step "build the package (pkg/)"
./scripts/build-pkg.sh
step "build calling-server"
cargo build --bin calling-server
SERVER_BIN=${CARGO_TARGET_DIR:-$ROOT/target}/debug/calling-server

step "start calling-server (dev mode) on $LISTEN"
# Dev mode hands out UserSigs to whoever can reach it: off loopback the server wants it said.
case "${LISTEN%:*}" in
  127.*|localhost|'[::1]') NETWORK_FLAG=() ;;
  *) NETWORK_FLAG=(--dev-on-network) ;;
esac
"$SERVER_BIN" --listen "$LISTEN" --www www --pkg pkg "${NETWORK_FLAG[@]}" &
SERVER_PID=$!
trap 'kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true' EXIT INT TERM
if ! node e2e/wait-for.mjs "http://127.0.0.1:$PORT/healthz" 30 "$SERVER_PID"; then
  echo "calling-server did not start (is port $PORT already in use?)" >&2
  exit 1
fi

cat <<MSG

  open http://localhost:$PORT in two tabs
  (sign in as two different users, e.g. alice and bob, and call one from the other;
  Ctrl-C stops the server)

MSG
wait "$SERVER_PID"
