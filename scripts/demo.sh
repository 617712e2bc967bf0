#!/usr/bin/env bash
# Runs the demo: installs what is missing, builds the package, then starts calling-server in
# development mode serving www/ and pkg/ on http://localhost:8080 until Ctrl-C.
# Set DEMO_LISTEN to use another address (e.g. DEMO_LISTEN=127.0.0.1:9090).
#
# DEMO_HTTPS=1 serves it over https on 0.0.0.0:8443 instead, so phones and other machines can
# use their camera and microphone: a self-signed certificate is made once (openssl) in
# target/demo-cert/ for localhost, 127.0.0.1 and DEMO_LAN_IP (this machine's address on your
# network, e.g. DEMO_LAN_IP=192.168.1.20), and made again when DEMO_LAN_IP changes.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
[ -d "$HOME/.cargo/bin" ] && export PATH="$HOME/.cargo/bin:$PATH"
# npm's binaryen first: Debian's wasm-opt corrupts wasm-bindgen output.
export PATH="$ROOT/.tools/node_modules/.bin:$PATH"
HTTPS=${DEMO_HTTPS:-0}
if [ "$HTTPS" = 1 ]; then
  LISTEN=${DEMO_LISTEN:-0.0.0.0:8443}
else
  LISTEN=${DEMO_LISTEN:-127.0.0.1:8080}
fi
PORT=${LISTEN##*:}

step() { printf '\n== %s ==\n' "$*" >&2; }

step "setup"
./scripts/setup.sh
step "build the package (pkg/)"
./scripts/build-pkg.sh
step "build calling-server"
cargo build --bin calling-server
SERVER_BIN=${CARGO_TARGET_DIR:-$ROOT/target}/debug/calling-server

TLS_FLAGS=()
SCHEME=http
if [ "$HTTPS" = 1 ]; then
  CERT_DIR=$ROOT/target/demo-cert
  SAN="DNS:localhost,IP:127.0.0.1${DEMO_LAN_IP:+,IP:$DEMO_LAN_IP}"
  if ! command -v openssl >/dev/null; then
    echo "DEMO_HTTPS=1 makes its certificate with openssl: apt-get install openssl" >&2
    exit 1
  fi
  if [ ! -s "$CERT_DIR/cert.pem" ] || [ "$(cat "$CERT_DIR/san" 2>/dev/null)" != "$SAN" ]; then
    step "make a self-signed certificate for $SAN"
    mkdir -p "$CERT_DIR"
    # CA:TRUE so a phone can install it as a trusted certificate; 825 days is the longest
    # Apple devices accept.
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 825 \
      -subj "/CN=trtc-calling-wasm demo" -addext "subjectAltName=$SAN" \
      -addext "basicConstraints=critical,CA:TRUE" \
      -keyout "$CERT_DIR/key.pem" -out "$CERT_DIR/cert.pem"
    chmod 600 "$CERT_DIR/key.pem"
    echo "$SAN" > "$CERT_DIR/san"
  fi
  TLS_FLAGS=(--tls-cert "$CERT_DIR/cert.pem" --tls-key "$CERT_DIR/key.pem")
  SCHEME=https
  # The health check trusts the demo certificate (its names include 127.0.0.1).
  export NODE_EXTRA_CA_CERTS=$CERT_DIR/cert.pem
fi

step "start calling-server (dev mode) on $LISTEN"
# Dev mode hands out UserSigs to whoever can reach it: off loopback the server wants it said.
case "${LISTEN%:*}" in
  127.*|localhost|'[::1]') NETWORK_FLAG=() ;;
  *) NETWORK_FLAG=(--dev-on-network) ;;
esac
if [ ${#NETWORK_FLAG[@]} -gt 0 ]; then
  cat >&2 <<WARN

  !!! WARNING: dev mode on $LISTEN, with --dev-on-network. Anyone who can reach this
  !!! machine on port $PORT can get UserSigs from /dev/usersig and sign in as anyone.
  !!! Run it on a network you trust only, and stop it (Ctrl-C) when done.

WARN
fi
"$SERVER_BIN" --listen "$LISTEN" --www www --pkg pkg "${NETWORK_FLAG[@]}" "${TLS_FLAGS[@]}" &
SERVER_PID=$!
trap 'kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true' EXIT INT TERM
if ! node e2e/wait-for.mjs "$SCHEME://127.0.0.1:$PORT/healthz" 30 "$SERVER_PID"; then
  echo "calling-server did not start (is port $PORT already in use?)" >&2
  exit 1
fi

if [ "$HTTPS" = 1 ]; then
  LAN_SHOWN=${DEMO_LAN_IP:-<this machine address>}
  cat <<MSG

  open https://localhost:$PORT in two tabs, or from another device on your network
  https://$LAN_SHOWN:$PORT
  (the certificate is self-signed: accept the browser's warning once per device, or install
  $CERT_DIR/cert.pem on it as a trusted certificate, see README; Ctrl-C stops the server)

MSG
else
  cat <<MSG

  open http://localhost:$PORT in two tabs
  (sign in as two different users, e.g. alice and bob, and call one from the other;
  Ctrl-C stops the server)

MSG
fi
wait "$SERVER_PID"
