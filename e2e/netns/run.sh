#!/usr/bin/env bash
# Runs the suites on test hosts in network namespaces (e2e/netns/*.test.mjs): the demo page in
# Chromium on hosts a and b, calling-server (and coturn) on a hub, joined by veth links that
# the tests cut and restore. See e2e/netns/net.sh for the network.
#
# Needs root, a built pkg/, a built calling-server and coturn's turnserver (scripts/setup.sh).
# Namespaces are named tcw-<this script's pid>-*: leftovers of runs that died are swept at the
# start, and this run's are deleted on any exit. Logs and screenshots go to test-output/netns/.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD

# The release build, as deployed (README), as in e2e/run.sh. The SFU stamps a datagram's
# arrival once it has handled the one before, which a debug build does 3.4 times slower: on two
# busy cores its feedback can then show senders a queueing delay of its own, and in one run their
# bandwidth estimates stayed too low for a larger simulcast layer on an uncapped link.
SERVER_BIN=${SERVER_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/calling-server}
OUT=$ROOT/test-output/netns

fail() { echo "netns: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || fail "needs root (ip netns)"
[ -x "$SERVER_BIN" ] || fail "no server binary at $SERVER_BIN (cargo build --release --bin calling-server)"
[ -f pkg/index.js ] || fail "pkg/index.js missing (run ./scripts/build-pkg.sh)"
[ -d .tools/node_modules/playwright-core ] || fail "playwright-core missing (run ./scripts/setup.sh)"
command -v turnserver > /dev/null || fail "turnserver missing (run ./scripts/setup.sh)"

mkdir -p "$OUT"
rm -f "$OUT"/*.png "$OUT"/*.log "$OUT"/*.sh "$OUT"/*.sqlite* "$OUT"/*.pid "$OUT"/*.json
e2e/netns/net.sh sweep

export NETNS_PREFIX="tcw-$$"
cleanup() { e2e/netns/net.sh down "$NETNS_PREFIX"; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# NETNS_TESTS picks suites (e.g. NETNS_TESTS=e2e/netns/relay.test.mjs); options go to node --test.
# shellcheck disable=SC2086 # a list of files, or a glob to expand
SERVER_BIN=$SERVER_BIN E2E_OUTPUT=$OUT \
  node --test --test-reporter=spec --test-concurrency=1 "$@" ${NETNS_TESTS:-e2e/netns/*.test.mjs}
