#!/usr/bin/env bash
# A small network of test hosts on this machine, in network namespaces:
#
#   <prefix>-a  ──10.77.1.0/24──  <prefix>-hub  ──10.77.2.0/24──  <prefix>-b
#         └──────────────── 10.77.3.0/24 (only with `direct`) ────────────┘
#
# The hub holds the service address 10.77.0.1 (on its loopback) where calling-server and coturn
# listen; a and b each have one host route to it through their own link. The hub does not
# forward, and a and b have no other routes, so without the direct link they cannot reach each
# other at all. Nothing is connected to the root namespace: every veth is created inside a
# namespace with its peer in another, and no namespace has a default route. IPv6 is off, so
# the only addresses are the ones above.
#
# Usage: net.sh up PREFIX [direct] | down PREFIX | sweep
#   up     creates the namespaces PREFIX-hub, PREFIX-a, PREFIX-b (and the a–b link with `direct`)
#   down   deletes every namespace named PREFIX-*
#   sweep  deletes namespaces tcw-<pid>-* left by runs whose process <pid> is gone
# Needs root.
set -euo pipefail

SERVICE_IP=10.77.0.1

namespaces_of() { ip netns list | awk '{print $1}' | grep -E "^$1-" || true; }

# Deletes namespaces, first ending what still runs in them (a browser or server of a test that
# died): a namespace lives on while a process is inside it.
delete_namespaces() {
  local ns pids
  for ns in "$@"; do
    pids=$(ip netns pids "$ns" 2>/dev/null || true)
    # shellcheck disable=SC2086 # one pid per word
    [ -z "$pids" ] || kill -9 $pids 2>/dev/null || true
    ip netns del "$ns" 2>/dev/null || true
  done
}

down() {
  # shellcheck disable=SC2046 # namespace names have no spaces
  delete_namespaces $(namespaces_of "$1")
}

# One veth pair between two namespaces, both ends created and addressed inside them.
link() {
  local ns1=$1 if1=$2 addr1=$3 ns2=$4 if2=$5 addr2=$6
  ip -n "$ns1" link add "$if1" type veth peer name "$if2" netns "$ns2"
  ip -n "$ns1" addr add "$addr1" dev "$if1"
  ip -n "$ns2" addr add "$addr2" dev "$if2"
  ip -n "$ns1" link set "$if1" up
  ip -n "$ns2" link set "$if2" up
}

# Writes $2 to the /proc/sys files $3… as seen from inside namespace $1 (/proc/sys/net is per
# namespace). Not sysctl(8): procps may be missing on a bare machine.
in_ns() {
  local ns=$1 value=$2
  shift 2
  ip netns exec "$ns" sh -c 'v=$1; shift; for f; do echo "$v" > "$f"; done' sh "$value" "$@"
}

# A permanent neighbour entry in namespace $1 on $2 for address $3, the one of $5 in $4.
remember_neighbour() {
  local ns=$1 dev=$2 addr=$3 peer_ns=$4 peer_dev=$5 mac
  mac=$(ip netns exec "$peer_ns" cat "/sys/class/net/$peer_dev/address")
  ip -n "$ns" neigh replace "$addr" lladdr "$mac" dev "$dev" nud permanent
}

up() {
  local p=$1 direct=${2:-} ns
  for ns in hub a b; do
    ip netns add "$p-$ns"
    in_ns "$p-$ns" 1 /proc/sys/net/ipv6/conf/all/disable_ipv6 /proc/sys/net/ipv6/conf/default/disable_ipv6
    ip -n "$p-$ns" link set lo up
  done
  # A hub that routed would join a and b through itself.
  in_ns "$p-hub" 0 /proc/sys/net/ipv4/ip_forward
  ip -n "$p-hub" addr add "$SERVICE_IP/32" dev lo
  link "$p-a" a-hub 10.77.1.2/24 "$p-hub" hub-a 10.77.1.1/24
  link "$p-b" b-hub 10.77.2.2/24 "$p-hub" hub-b 10.77.2.1/24
  ip -n "$p-a" route add "$SERVICE_IP/32" via 10.77.1.1
  ip -n "$p-b" route add "$SERVICE_IP/32" via 10.77.2.1
  # The hub knows each host's link-layer address for good, as a server knows its router's: a
  # host that goes offline loses the hub's datagrams at once, as it would behind a router,
  # instead of having them queued for address resolution. That queue is charged to the sending
  # socket, and on the one socket the SFU shares between every participant, it left no room
  # for anyone's datagrams for seconds.
  remember_neighbour "$p-hub" hub-a 10.77.1.2 "$p-a" a-hub
  remember_neighbour "$p-hub" hub-b 10.77.2.2 "$p-b" b-hub
  if [ "$direct" = direct ]; then
    link "$p-a" a-b 10.77.3.1/24 "$p-b" b-a 10.77.3.2/24
  fi
}

sweep() {
  local ns pid
  for ns in $(ip netns list | awk '{print $1}' | grep -E '^tcw-[0-9]+-' || true); do
    pid=${ns#tcw-}
    pid=${pid%%-*}
    kill -0 "$pid" 2>/dev/null || delete_namespaces "$ns"
  done
}

case "${1:-}" in
  up)
    [ -n "${2:-}" ] || { echo "usage: net.sh up PREFIX [direct]" >&2; exit 2; }
    # A half-built network is not left behind.
    trap 'down "$2"' ERR
    up "$2" "${3:-}"
    ;;
  down)
    [ -n "${2:-}" ] || { echo "usage: net.sh down PREFIX" >&2; exit 2; }
    down "$2"
    ;;
  sweep) sweep ;;
  *)
    echo "usage: net.sh up PREFIX [direct] | down PREFIX | sweep" >&2
    exit 2
    ;;
esac
