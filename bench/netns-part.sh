#!/usr/bin/env bash
# One bounded part of the benchmark suite, run by scripts/bench.sh as
#   unshare --net bash bench/netns-part.sh PART
# i.e. inside a fresh network namespace whose only interface is loopback, so whatever the part
# starts (servers, Chromium, load generator) can reach nothing but 127.0.0.0/8.
# Reads OUT, APP, BIN, CALLS, SHORT_CALLS, SESSIONS, RATES, CLUSTER_RATES, FAILOVER_SESSIONS,
# GROUP_SIZES from the environment.
set -euo pipefail
ip link set lo up

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2> /dev/null || true; done; wait 2> /dev/null || true; }
trap cleanup EXIT

# Waits at most 20 s for a listener on 127.0.0.1:$1.
wait_port() {
  for _ in $(seq 200); do
    (exec 3<> "/dev/tcp/127.0.0.1/$1") 2> /dev/null && return 0
    sleep 0.1
  done
  echo "nothing listens on port $1" >&2
  return 1
}

# The load generator opens tens of thousands of sessions from a few addresses: connection caps off.
start_calling_server() {
  "$BIN/calling-server" --listen 127.0.0.1:8080 --app "$APP" --max-connections 0 \
    --max-pending-logins 0 --max-connections-per-address 0 > "$OUT/$1-server.log" 2>&1 &
  server=$!
  pids+=("$server")
  wait_port 8080
}

# PeerJS's server; its default cap of 5,000 clients is lifted so both servers face the same load.
start_peer_server() {
  node bench/node_modules/peer/dist/bin/peerjs.js --port 9000 --concurrent_limit 10000000 \
    > "$OUT/$1-peer.log" 2>&1 &
  peer=$!
  pids+=("$peer")
  wait_port 9000
}

# Redis (on a Unix socket, nothing on disk: the bench measures the nodes, not Redis's fsync)
# and three calling-server nodes joined to it on ports 8081-8083; their pids in $nodes.
start_cluster() {
  local dir
  dir=$(mktemp -d)
  redis-server --port 0 --unixsocket "$dir/redis.sock" --save '' --appendonly no --dir "$dir" \
    > "$OUT/$1-redis.log" 2>&1 &
  pids+=("$!")
  for _ in $(seq 200); do [ -S "$dir/redis.sock" ] && break; sleep 0.1; done
  nodes=()
  for i in 0 1 2; do
    "$BIN/calling-server" --listen "127.0.0.1:$((8081 + i))" --app "$APP" --max-connections 0 \
      --max-pending-logins 0 --max-connections-per-address 0 --redis "redis+unix://$dir/redis.sock" \
      > "$OUT/$1-node-$i.log" 2>&1 &
    nodes+=("$!")
    pids+=("$!")
    wait_port $((8081 + i))
  done
}

case "$1" in
  callsetup)
    start_calling_server callsetup
    start_peer_server callsetup
    node bench/callsetup.mjs --ours ws://127.0.0.1:8080/ws --app "$APP" --peer-port 9000 --pkg pkg \
      --calls "$CALLS" --short-calls "$SHORT_CALLS" --deadline-s 240 --out "$OUT/callsetup.json"
    ;;
  group)
    # The same group calls as a mesh (this server) and through the SFU (a second one).
    start_calling_server group-mesh
    "$BIN/calling-server" --listen 127.0.0.1:8084 --app "$APP" --sfu-udp 127.0.0.1:0 \
      > "$OUT/group-sfu-server.log" 2>&1 &
    sfu=$!
    pids+=("$sfu")
    wait_port 8084
    node bench/group.mjs --mesh ws://127.0.0.1:8080/ws --sfu ws://127.0.0.1:8084/ws --sfu-pid "$sfu" \
      --app "$APP" --pkg pkg --sizes "${GROUP_SIZES:-4,6,9}" --deadline-s 420 --out "$OUT/group.json"
    ;;
  reconnect)
    start_calling_server reconnect
    node bench/reconnect.mjs --server 127.0.0.1:8080 --app "$APP" --pkg pkg --rounds 20 \
      --out "$OUT/reconnect.json"
    ;;
  load-ours)
    start_calling_server load
    "$BIN/calling-loadgen" ours --url ws://127.0.0.1:8080/ws --app "$APP" --server-pid "$server" \
      --sessions "$SESSIONS" --rates "$RATES" --out "$OUT/loadgen-ours.json" > /dev/null
    ;;
  load-cluster)
    start_cluster cluster
    urls=ws://127.0.0.1:8081/ws,ws://127.0.0.1:8082/ws,ws://127.0.0.1:8083/ws
    # Sessions: one load generator per node, all at once (one process can hold no more sockets
    # than its open-file limit).
    for i in 0 1 2; do
      "$BIN/calling-loadgen" ours --url "ws://127.0.0.1:$((8081 + i))/ws" --app "$APP" \
        --server-pid "${nodes[$i]}" --sessions $(((SESSIONS + 2) / 3)) --ramp-secs 150 --phases hold \
        --out "$OUT/loadgen-cluster-hold-$i.json" > /dev/null &
      holders+=("$!")
    done
    wait "${holders[@]}" || true
    # Invitations with the two parties of every call on two different nodes; then a node
    # killed under resumable sessions, which resume on the other two.
    "$BIN/calling-loadgen" ours --url "$urls" --app "$APP" \
      --server-pid "${nodes[0]},${nodes[1]},${nodes[2]}" --rates "$CLUSTER_RATES" \
      --phases cycles,failover --failover-sessions "$FAILOVER_SESSIONS" \
      --out "$OUT/loadgen-cluster.json" > /dev/null
    ;;
  load-peer)
    start_peer_server load
    "$BIN/calling-loadgen" peerjs --url ws://127.0.0.1:9000/peerjs --server-pid "$peer" \
      --sessions "$SESSIONS" --phases hold,relay --out "$OUT/loadgen-peer.json" > /dev/null
    ;;
  *)
    echo "unknown part: $1" >&2
    exit 2
    ;;
esac
