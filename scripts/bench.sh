#!/usr/bin/env bash
# The benchmark suite: package size, call setup against PeerJS in headless Chromium, reconnects
# (signaling cut; a media link pulled between test hosts in network namespaces), and server
# capacity (calling-loadgen against calling-server and PeerJS's server). Prints one table and
# writes every figure to bench-output/bench.json; the table also goes to bench/RESULTS.md.
#
# Every part has its own time bound and sends traffic only to loopback: each runs in its own
# loopback-only network namespace with its servers started inside it.
# Environment: BENCH_CALLS (30), BENCH_SHORT_CALLS (10: calls answered after a 200 ms ring),
# BENCH_RELAY_CALLS (10: calls through a TURN relay, and as many over a direct link),
# GROUP_SIZES (4,6,9: group calls measured as a mesh and through the SFU),
# BENCH_SESSIONS (50000), BENCH_RATES (10000,7500,5000,2500: invitation
# rates tried in turn; the first is the target), BENCH_CLUSTER_RATES (10000,5000,2500,1000: the
# same across a three-node cluster), BENCH_FAILOVER_SESSIONS (1000: resumable sessions on the
# cluster node that is killed).
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=bench-output
CALLS=${BENCH_CALLS:-30}
SHORT_CALLS=${BENCH_SHORT_CALLS:-10}
RELAY_CALLS=${BENCH_RELAY_CALLS:-10}
SESSIONS=${BENCH_SESSIONS:-50000}
RATES=${BENCH_RATES:-10000,7500,5000,2500}
CLUSTER_RATES=${BENCH_CLUSTER_RATES:-10000,5000,2500,1000}
FAILOVER_SESSIONS=${BENCH_FAILOVER_SESSIONS:-1000}
# The app the load generator and the pages log in to; any key works, it never leaves the machine.
APP="1400000001=bench-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')"
BIN=target/bench/native
started=$SECONDS
log() { printf '[bench] %s (%ds)\n' "$*" $((SECONDS - started)) >&2; }

# Other work on the machine skews every figure: the load average is recorded with them.
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
log "prerequisites"
scripts/setup.sh
if [ ! -d bench/node_modules/peer ] || [ ! -d bench/node_modules/peerjs ]; then
  (cd bench && npm ci --no-audit --no-fund --silent)
fi

log "building the package and the native-profile binaries"
scripts/build-pkg.sh > /dev/null
CARGO_TARGET_DIR=target/bench cargo build --profile native --quiet -p calling-server -p calling-loadgen

rm -rf "$OUT"
mkdir -p "$OUT"
# The directory ignores itself, so its output never shows as untracked.
echo "*" > "$OUT/.gitignore"
# As many open files as this machine lets a process have: each session is one socket.
ulimit -n 1048576 2> /dev/null || ulimit -n "$(ulimit -Hn)"

export OUT APP BIN CALLS SHORT_CALLS SESSIONS RATES CLUSTER_RATES FAILOVER_SESSIONS
# Runs one part in its own loopback-only network namespace, bounded by $2 seconds.
part() {
  timeout --kill-after=10 "$2" unshare --net bash bench/netns-part.sh "$1" || log "part $1 failed or timed out (exit $?)"
}

log "parts 2 and 3: call setup, trtc-calling-wasm and PeerJS taking turns ($CALLS + $SHORT_CALLS calls each)"
part callsetup 270

log "reconnect: a cut signaling connection back, against a fresh login"
part reconnect 120

log "group calls: mesh against the SFU at ${GROUP_SIZES:-4,6,9} participants, and a 1:1 call"
part group 480

# Not a loopback part: the runner builds its own network of namespaces (e2e/netns/net.sh).
log "ICE restart: a pulled media link plugged back, against a fresh call (test hosts in network namespaces)"
if SERVER_BIN=$BIN/calling-server NETNS_ICE_ROUNDS=8 NETNS_NETWORK_ROUNDS=4 NETNS_TESTS=e2e/netns/ice-restart.test.mjs \
  timeout --kill-after=10 300 e2e/netns/run.sh --test-name-pattern='plugged back|whole network' > "$OUT/ice-restart.log" 2>&1; then
  cp test-output/netns/ice-restore.json "$OUT/ice-restore.json"
else
  log "part ice-restart failed or timed out (exit $?); see $OUT/ice-restart.log"
fi

log "relay: accept → first remote frame through a TURN relay and over a direct link ($RELAY_CALLS calls each, test hosts in network namespaces)"
if SERVER_BIN=$BIN/calling-server RELAY_BENCH_CALLS=$RELAY_CALLS NETNS_TESTS=e2e/netns/relay.bench.mjs \
  timeout --kill-after=10 $((90 + 15 * RELAY_CALLS)) e2e/netns/run.sh > "$OUT/relay.log" 2>&1; then
  cp test-output/netns/relay-bench.json "$OUT/relay.json"
  grep -E '^(relay|direct)' "$OUT/relay.log" >&2 || true
else
  log "part relay failed or timed out (exit $?); see $OUT/relay.log"
fi

log "part 1: package size"
timeout 30 node bench/size.mjs pkg "$OUT/callsetup.json" > "$OUT/size.json" || log "size failed"

log "part 4: calling-server capacity"
part load-ours 150

log "part 4: a three-node calling-server cluster on Redis: sessions, invitations across nodes, a node killed"
part load-cluster 420

log "part 4: PeerJS's server, on what both protocols share"
part load-peer 100

log "report"
printf '{"totalSecs": %d, "loadAverageAtStart": "%s", "loadAverageAtEnd": "%s"}\n' \
  $((SECONDS - started)) "$load_start" "$(cut -d' ' -f1-3 /proc/loadavg)" > "$OUT/timings.json"
node bench/report.mjs "$OUT" bench/RESULTS.md README.md
log "done: $OUT/bench.json, bench/RESULTS.md"
