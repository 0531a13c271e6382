#!/usr/bin/env bash
# veth test harness: two network namespaces joined by multi-queue veth pairs.
#
#   harness.sh [options] up | down | status | exec NS CMD... | impair
#
#   ns ${P}k  the kernel peer:       ${P}k0 198.18.0.1/24   (${P}k1 198.18.1.1/24)
#   ns ${P}s  the stack's namespace: ${P}s0 198.18.0.3/24   (${P}s1 198.18.1.3/24)
#             xdptcp owns 198.18.0.2 (198.18.1.2) on ${P}s0 (${P}s1); the
#             kernel there keeps .3 for itself and never configures .2.
#
# Options (also from the environment: HARNESS_PREFIX, HARNESS_QUEUES, ...):
#   --prefix P    name prefix (default x): namespaces Pk/Ps, links Pk0/Ps0...
#   --queues N    rx/tx queues per veth end (default 4)
#   --paths N     1 or 2 veth pairs (the second on 198.18.1.0/24, for MPTCP)
#   --loss N      nftables on the kernel side: drop N/1000 of packets each way
#   --dup N       nftables on the kernel side: duplicate N/1000 of the packets
#                 the kernel sends towards the stack
#   --gso on|off  the kernel's GSO/TSO on both veth ends (default on: kernel
#                 defaults; --loss/--dup turn it off on the kernel peer so
#                 nftables drops wire-sized packets, not 64 KB super-packets).
#                 Transmit checksum offload stays at the kernel default: on.
#
# NS for exec is "k" / "s" (or a full namespace name). Everything lives inside
# the two namespaces: nothing is created in the root namespace. Idempotent:
# `up` creates what is missing, `down` removes what exists.
set -euo pipefail

PREFIX=${HARNESS_PREFIX:-x}
QUEUES=${HARNESS_QUEUES:-4}
PATHS=${HARNESS_PATHS:-1}
LOSS=${HARNESS_LOSS:-0}
DUP=${HARNESS_DUP:-0}
GSO=${HARNESS_GSO:-on}

usage() {
  sed -n '2,28p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

die() {
  echo "harness: $*" >&2
  exit 1
}

while (($#)); do
  case "$1" in
    --prefix) PREFIX=$2; shift 2 ;;
    --queues) QUEUES=$2; shift 2 ;;
    --paths) PATHS=$2; shift 2 ;;
    --loss) LOSS=$2; shift 2 ;;
    --dup) DUP=$2; shift 2 ;;
    --gso) GSO=$2; shift 2 ;;
    -h|--help) usage ;;
    --*) die "unknown option $1" ;;
    *) break ;;
  esac
done
(($#)) || usage
CMD=$1; shift

[[ $PREFIX =~ ^[a-z][a-z0-9]{0,8}$ ]] || die "prefix must be 1-9 of [a-z0-9], starting with a letter"
[[ $QUEUES =~ ^[0-9]+$ ]] && ((QUEUES >= 1 && QUEUES <= 64)) || die "--queues must be 1..64"
[[ $PATHS == 1 || $PATHS == 2 ]] || die "--paths must be 1 or 2"
[[ $LOSS =~ ^[0-9]+$ ]] && ((LOSS <= 1000)) || die "--loss is per mille, 0..1000"
[[ $DUP =~ ^[0-9]+$ ]] && ((DUP <= 1000)) || die "--dup is per mille, 0..1000"
[[ $GSO == on || $GSO == off ]] || die "--gso must be on or off"

NSK=${PREFIX}k
NSS=${PREFIX}s
NFT_TABLE=${PREFIX}imp

ns_exists() { ip netns list | awk '{print $1}' | grep -qx "$1"; }
in_k() { ip netns exec "$NSK" "$@"; }
in_s() { ip netns exec "$NSS" "$@"; }

# Path i: link names and addresses.
kif() { echo "${PREFIX}k$1"; }
sif() { echo "${PREFIX}s$1"; }
kaddr() { echo "198.18.$1.1"; }
saddr() { echo "198.18.$1.3"; }
stackaddr() { echo "198.18.$1.2"; }
# Fixed, locally administered MACs so that runs are reproducible.
kmac() { printf '02:00:c6:12:%02x:01' "$1"; }
smac() { printf '02:00:c6:12:%02x:03' "$1"; }

up_ns() {
  local ns=$1
  ns_exists "$ns" || ip netns add "$ns"
  ip -n "$ns" link set lo up
}

up_path() {
  local i=$1 k s
  k=$(kif "$i"); s=$(sif "$i")
  if ! ip -n "$NSK" link show "$k" >/dev/null 2>&1; then
    # Create both ends directly inside their namespaces: nothing ever exists
    # in the root namespace, not even for a moment.
    ip -n "$NSK" link add "$k" numtxqueues "$QUEUES" numrxqueues "$QUEUES" type veth \
      peer name "$s" netns "$NSS" numtxqueues "$QUEUES" numrxqueues "$QUEUES"
  fi
  ip -n "$NSK" link set "$k" address "$(kmac "$i")"
  ip -n "$NSS" link set "$s" address "$(smac "$i")"
  ip -n "$NSK" addr replace "$(kaddr "$i")/24" dev "$k"
  ip -n "$NSS" addr replace "$(saddr "$i")/24" dev "$s"
  # Offloads stay at the kernel's defaults: the peer's segments reach XDP
  # with the checksum left to "hardware" (CHECKSUM_PARTIAL), which xdptcp
  # accepts on veth (counted as rx_csum_partial_accepted), and attaching
  # XDP makes veth segment GSO packets before they cross. Only nftables
  # impairments want GSO off, so that they act on wire-sized packets.
  local kgso=$GSO
  ((LOSS > 0 || DUP > 0)) && kgso=off
  in_k ethtool -K "$k" tso "$kgso" gso "$kgso" >/dev/null 2>&1 || true
  in_s ethtool -K "$s" tso "$GSO" gso "$GSO" >/dev/null 2>&1 || true
  ip -n "$NSK" link set "$k" up
  ip -n "$NSS" link set "$s" up
}

impair() {
  in_k nft delete table ip "$NFT_TABLE" 2>/dev/null || true
  ((LOSS > 0 || DUP > 0)) || return 0
  local rules="" i k
  for ((i = 0; i < PATHS; i++)); do
    k=$(kif "$i")
    if ((LOSS > 0)); then
      rules+="add rule ip $NFT_TABLE out oifname \"$k\" numgen random mod 1000 < $LOSS counter drop"$'\n'
      rules+="add rule ip $NFT_TABLE in iifname \"$k\" numgen random mod 1000 < $LOSS counter drop"$'\n'
    fi
    if ((DUP > 0)); then
      # nf_dup_ipv4 does not run the copy through this hook again.
      rules+="add rule ip $NFT_TABLE out oifname \"$k\" numgen random mod 1000 < $DUP counter dup to $(stackaddr "$i") device \"$k\""$'\n'
    fi
  done
  in_k nft -f - <<EOF
add table ip $NFT_TABLE
add chain ip $NFT_TABLE out { type filter hook output priority 0; policy accept; }
add chain ip $NFT_TABLE in { type filter hook prerouting priority 0; policy accept; }
$rules
EOF
}

cmd_up() {
  [[ $(id -u) == 0 ]] || die "must run as root"
  up_ns "$NSK"
  up_ns "$NSS"
  local i
  for ((i = 0; i < PATHS; i++)); do up_path "$i"; done
  impair
  cmd_status
}

cmd_down() {
  local ns
  # Deleting a namespace deletes its veth ends (and their peers).
  for ns in "$NSK" "$NSS"; do
    if ns_exists "$ns"; then
      ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null || true
      ip netns delete "$ns"
      echo "harness: removed namespace $ns"
    fi
  done
}

cmd_status() {
  local i
  if ! ns_exists "$NSK" || ! ns_exists "$NSS"; then
    echo "harness: prefix $PREFIX is down"
    return 0
  fi
  echo "harness: prefix $PREFIX up, $QUEUES queues"
  for ((i = 0; i < 2; i++)); do
    ip -n "$NSK" link show "$(kif "$i")" >/dev/null 2>&1 || continue
    echo "  path $i: ns $NSK $(kif "$i") $(kaddr "$i")/24 $(kmac "$i")  <->  ns $NSS $(sif "$i") kernel $(saddr "$i")/24, stack $(stackaddr "$i") $(smac "$i")"
    ip -n "$NSS" -d link show "$(sif "$i")" | grep -o 'prog/xdp[a-z]* id [0-9]*' | sed 's/^/    xdp on stack side: /' || true
  done
  if in_k nft list table ip "$NFT_TABLE" >/dev/null 2>&1; then
    echo "  impairments (ns $NSK):"
    in_k nft list table ip "$NFT_TABLE" | grep -E 'drop|dup' | sed 's/^\s*/    /'
  fi
  echo "HARNESS_NSK=$NSK HARNESS_NSS=$NSS HARNESS_IFACE=$(sif 0) HARNESS_PEER=$(kaddr 0) HARNESS_KERNEL=$(saddr 0) HARNESS_STACK=$(stackaddr 0)"
}

cmd_exec() {
  (($# >= 2)) || die "usage: exec NS CMD..."
  local ns=$1; shift
  case "$ns" in
    k) ns=$NSK ;;
    s) ns=$NSS ;;
  esac
  [[ $ns == "$NSK" || $ns == "$NSS" ]] || die "exec: namespace must be k, s, $NSK or $NSS"
  exec ip netns exec "$ns" "$@"
}

case "$CMD" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  exec) cmd_exec "$@" ;;
  impair)
    ns_exists "$NSK" || die "prefix $PREFIX is down"
    impair
    cmd_status
    ;;
  *) usage ;;
esac
