#!/usr/bin/env bash
# Installs every prerequisite of the build, the demo and the tests, idempotently.
# Safe to run on every invocation: installed pieces are skipped in well under a second.
set -euo pipefail
cd "$(dirname "$0")/.."

WASM_PACK_VERSION=0.15.1
CARGO_FUZZ_VERSION=0.13.1
BINARYEN_VERSION=132.0.0
PLAYWRIGHT_VERSION=1.65.1
ESBUILD_VERSION=0.28.2
TOOLS_DIR="$PWD/.tools"

log() { printf '[setup] %s\n' "$*" >&2; }

# Debian packages: Chromium + its matching driver, iproute2 for the network namespaces,
# curl for the scripts' health checks, coturn for the relay tests (e2e/netns/; only its
# `turnserver` binary is used, started by the tests, never the system service), openssl for
# the certificate of their TURN over TLS, redis-server for the cluster tests (its binary only,
# started by the tests on a free loopback port, never the system service).
need_apt=()
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need_apt+=(chromium-driver)
command -v ip >/dev/null 2>&1 || need_apt+=(iproute2)
command -v curl >/dev/null 2>&1 || need_apt+=(curl)
command -v unshare >/dev/null 2>&1 || need_apt+=(util-linux)
command -v turnserver >/dev/null 2>&1 || need_apt+=(coturn)
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
if [ ${#need_apt[@]} -gt 0 ]; then
  log "apt-get install ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

rustup target list --installed | grep -qx wasm32-unknown-unknown || {
  log "rustup target add wasm32-unknown-unknown"
  rustup target add wasm32-unknown-unknown
}

if ! wasm-pack --version 2>/dev/null | grep -q "$WASM_PACK_VERSION"; then
  log "cargo install wasm-pack $WASM_PACK_VERSION"
  cargo install wasm-pack --version "$WASM_PACK_VERSION" --locked
fi

# cargo-fuzz runs the fuzz targets (scripts/fuzz.sh) on the stable toolchain.
if ! cargo fuzz --version 2>/dev/null | grep -q "$CARGO_FUZZ_VERSION"; then
  log "cargo install cargo-fuzz $CARGO_FUZZ_VERSION"
  cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked
fi

# wasm-bindgen-cli must match the wasm-bindgen crate in Cargo.lock exactly.
WB_VERSION=$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/[^0-9.]/,""); print; exit}' Cargo.lock 2>/dev/null || true)
if [ -z "$WB_VERSION" ]; then
  echo "[setup] Cargo.lock names no wasm-bindgen version; run 'cargo generate-lockfile' first" >&2
  exit 1
fi
if ! wasm-bindgen --version 2>/dev/null | grep -q "$WB_VERSION"; then
  log "cargo install wasm-bindgen-cli $WB_VERSION"
  # Not --locked: a locked dependency of the CLI is missing from the registry.
  cargo install wasm-bindgen-cli --version "$WB_VERSION" --force
fi

# npm's binaryen (Debian's wasm-opt corrupts wasm-bindgen output), playwright-core for e2e and
# esbuild for the package's legacy entries (scripts/pack-legacy.mjs).
mkdir -p "$TOOLS_DIR"
if [ ! -x "$TOOLS_DIR/node_modules/.bin/wasm-opt" ] || [ ! -d "$TOOLS_DIR/node_modules/playwright-core" ] ||
  ! grep -qs "\"version\": \"$ESBUILD_VERSION\"" "$TOOLS_DIR/node_modules/esbuild/package.json"; then
  log "npm install binaryen@$BINARYEN_VERSION playwright-core@$PLAYWRIGHT_VERSION esbuild@$ESBUILD_VERSION"
  [ -f "$TOOLS_DIR/package.json" ] || echo '{"private": true}' > "$TOOLS_DIR/package.json"
  # npm's own errors go to stderr; a full disk is the usual cause on a reused machine, so say so.
  if ! npm install --no-audit --no-fund --loglevel=error --prefix "$TOOLS_DIR" \
    "binaryen@$BINARYEN_VERSION" "playwright-core@$PLAYWRIGHT_VERSION" "esbuild@$ESBUILD_VERSION" >/dev/null; then
    log "npm install failed; free space where it installs:"
    df -h "$TOOLS_DIR" >&2
    exit 1
  fi
fi
log "ok"
