#!/usr/bin/env bash
# xdptcp echo side by side with an efficient Linux echo server, in one run,
# on one machine (root). Builds its own harness topology (veth pairs between
# two namespaces it creates, 198.18.0.0/15 only) and removes it on exit,
# also on failure.
#
# Linux: bench/c/epoll_echo.c, one thread, non-blocking epoll, on
# 198.18.0.3 in the stack's namespace. xdptcp: `xdptcp echo` (1 worker)
# on 198.18.0.2. Both pinned to core 0; the client pinned to core 1 in the
# other namespace: `xdptcp loadgen` (one worker, AF_XDP on the client's
# veth end, source addresses 198.18.0.16-31) for the request/response and
# short-connection rows, or with BENCH_CLIENT=epoll bench/c/epoll_client.c
# (one thread, epoll, many connections). The other rows always use the C
# client: in bulk the kernel client sends 64 KB GSO segments over veth and
# loadgen 1,448-byte frames, so loadgen, not the server, would be the
# limit; the burst and hand-off rows measure what kernel clients' SYN
# bursts do to the server, and loadgen paces its handshakes (1,024 in
# progress per worker). Each server runs alone (the other
# stopped, xdptcp's XDP program detached while Linux is measured), rows
# alternate per run.
#
# Rows (a ratio xdptcp / Linux for each; medians of BENCH_RUNS runs):
#   64 B request/response at 4, 64 and 256 connections: req/s, p50, p99
#   bulk echo, 2 connections, 64 KiB writes: Mbit/s, Linux server with
#     GSO/TSO on (veth hands it 64 KB segments) and off; and xdptcp in
#     generic mode with --rx-multibuf (the client's 64 KB GSO segments
#     reach it whole, as chained frames) beside Linux with GSO off
#   16,000 connections opened at once, 4 bytes echoed each: served,
#     failed, seconds
#   short connections (connect, 64 B each way, close; 64 at a time): conn/s
# Then xdptcp alone with 1, 2 and 4 queues (1 worker per queue, cores 0,1):
#   the share of packets handed between workers for 4,000 connections.
# And the data path's own ceiling, once per run: bench/xdp_reflect.rs, a
#   raw AF_XDP reflector on the same ring layer (pinned to core 0), echoing
#   full-sized UDP packets (1514-byte frames, like bulk echo's) from
#   bench/c/udp_flood.c (core 1): packets/s; beside it, xdptcp's bulk echo
#   (Linux GSO off row) in data segments/s each way (Mbit/s / 1448 bytes),
#   and their ratio.
#
# Output: a markdown table (stdout and target/bench-echo.md).
# RPS on the client's veth end only on request (BENCH_CLIENT_RPS=1): see up().
# Knobs: BENCH_SECS (default 3 per measurement), BENCH_RUNS (3),
# BENCH_ONLY=bulk (only the bulk rows and the data path's ceiling),
# BENCH_ONLY=burst (only the 16,000-connection burst, each server started
# afresh for it as in a full run), BENCH_BIN (the xdptcp binary to
# measure; default target/release/xdptcp), BENCH_CLIENT_RPS=1 (RPS on
# the client's end, core 1), BENCH_SERVER_RPS=1 (each server's receive on core 0).
set -euo pipefail
cd "$(dirname "$0")/.."

SECS=${BENCH_SECS:-3}
RUNS=${BENCH_RUNS:-3}
ONLY=${BENCH_ONLY:-}
[[ -z $ONLY || $ONLY == bulk || $ONLY == burst ]] || { echo "bench: BENCH_ONLY must be bulk or burst" >&2; exit 2; }
BIN=${BENCH_BIN:-$PWD/target/release/xdptcp}
P=eb$$
P=${P:0:9}
NSK=${P}k NSS=${P}s
OUT=$PWD/target
TMP=$(mktemp -d)
PIDS=()

if [[ $(id -u) != 0 ]]; then
  echo "bench: SKIP: needs root (namespaces, XDP, AF_XDP)" >&2
  exit 0
fi
for t in cc ethtool taskset python3; do
  command -v $t >/dev/null || { echo "bench: $t missing: run bash scripts/setup.sh" >&2; exit 1; }
done
[[ -x $BIN ]] || cargo build --release --bin xdptcp
REFLECT=$PWD/target/release/examples/xdp_reflect
[[ -x $REFLECT ]] || cargo build --release --example xdp_reflect
cc -O2 -o "$TMP/epoll_echo" bench/c/epoll_echo.c
cc -O2 -o "$TMP/epoll_client" bench/c/epoll_client.c
cc -O2 -o "$TMP/udp_flood" bench/c/udp_flood.c

stop_all() {
  local p
  for p in "${PIDS[@]}"; do
    kill -INT "$p" 2>/dev/null || true
  done
  for p in "${PIDS[@]}"; do
    for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
    { wait "$p"; } 2>/dev/null || true
  done
  PIDS=()
}
cleanup() {
  stop_all
  bash scripts/harness.sh --prefix "$P" down >/dev/null 2>&1 || true
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

up() { # queues
  bash scripts/harness.sh --prefix "$P" down >/dev/null 2>&1 || true
  bash scripts/harness.sh --prefix "$P" --queues "$1" up >/dev/null
  # The client's port space is not the limit (16,000 at once, short conns).
  ip netns exec "$NSK" sysctl -qw net.ipv4.ip_local_port_range="1024 65000" net.ipv4.tcp_tw_reuse=1
  # RPS on the client's veth end: veth hands a packet to its peer with
  # netif_rx on the sending CPU, so without it the Linux client's TCP
  # receive of the server's segments runs in the server's softirq, on the
  # server's core. With RPS (mask = the client's core 1) the kernel queues
  # it to core 1's backlog instead, the standard Linux way to run receive
  # processing on the consumer's CPU; it applies to both servers alike.
  # Off by default (BENCH_CLIENT_RPS=1 turns it on): veth then runs our
  # receive on the client's core too, which becomes the limit of the bulk
  # rows for both servers, and the reflector row measures that core, not
  # the data path (bench/echo_vs_linux.md, branch bk9). BENCH_SERVER_RPS=1 also puts each
  # server's own receive on core 0 (RPS on its end; see server_napi).
  local f
  if [[ ${BENCH_CLIENT_RPS:-0} != 0 ]]; then
    for f in $(ip netns exec "$NSK" sh -c "ls -d /sys/class/net/${P}k0/queues/rx-*"); do
      ip netns exec "$NSK" sh -c "echo 2 > $f/rps_cpus"
    done
  fi
  if [[ ${BENCH_SERVER_RPS:-0} != 0 ]]; then
    for f in $(ip netns exec "$NSS" sh -c "ls -d /sys/class/net/${P}s0/queues/rx-*"); do
      ip netns exec "$NSS" sh -c "echo 1 > $f/rps_cpus"
    done
  fi
}
epoll_client() { # mode addr conns [size] -> output line
  timeout $((SECS * 4 + 60)) ip netns exec "$NSK" taskset -c 1 "$TMP/epoll_client" "$1" "$2" 7 "$3" "$SECS" ${4:+"$4"}
}
# The client of the rr, bulk and short rows: `xdptcp loadgen` (default) on
# AF_XDP in the client namespace (addresses .16-.31 on the same veth), or
# with BENCH_CLIENT=epoll the C epoll client. Same output lines either way.
loadgen() { # rr|short addr conns -> output line as epoll_client prints it
  local args j
  case $1 in
    rr) args=(--mode echo --size 64 --conns "$3") ;;
    short) args=(--mode echo --size 64 --requests-per-conn 1 --conns "$3") ;;
  esac
  j=$(timeout $((SECS * 4 + 60)) ip netns exec "$NSK" taskset -c 1 "$BIN" loadgen \
    --iface "${P}k0=198.18.0.16-198.18.0.31/24" --queues 1 --cores 1 --target "$2:7" \
    "${args[@]}" --warmup 1 --duration "$SECS" --json 2>>"$TMP/loadgen.err") || true
  python3 - "$1" "$j" <<'PY'
import json, sys
mode, raw = sys.argv[1], sys.argv[2]
try:
    d = json.loads(raw)
except ValueError:
    print("0 0 0 1"); sys.exit()
l, err = d["latency_us"], d["errors"]
if mode == "rr":
    print(round(d["rps"]), l["p50"], l["p99"], err)
else:
    print(round(d["rps"]), err)
PY
}
client() { # mode addr conns -> output line
  if [[ ${BENCH_CLIENT:-loadgen} == epoll ]]; then epoll_client "$@"; else loadgen "$@"; fi
}
burst() { # addr
  timeout 120 ip netns exec "$NSK" taskset -c 1 "$TMP/epoll_client" burst "$1" 7 16000 60
}
linux_start() {
  ip netns exec "$NSS" taskset -c 0 "$TMP/epoll_echo" 198.18.0.3 7 600 2>/dev/null &
  PIDS+=($!)
  sleep 0.3
}
# BENCH_SERVER_RPS=1, xdptcp's side: native XDP runs in veth's NAPI on the
# CPU of whoever sent to us (RPS comes after XDP), so the NAPI is made a
# thread pinned to the server's core 0, as RPS does for Linux's receive.
server_napi() {
  [[ ${BENCH_SERVER_RPS:-0} != 0 ]] || return 0
  ip netns exec "$NSS" sh -c "echo 1 > /sys/class/net/${P}s0/threaded" 2>/dev/null || return 0
  local pat="napi/${P}s0-" t
  for t in $(pgrep "^${pat:0:15}" || true); do taskset -p 1 "$t" >/dev/null; done
}
xdptcp_start() { # queues cores stats [extra args...]
  ip netns exec "$NSS" "$BIN" echo --iface "${P}s0=198.18.0.2/24" --queues "$1" --cores "$2" \
    --duration 600 --stats-json "$3" "${@:4}" 2>>"$TMP/xdptcp.err" >/dev/null &
  PIDS+=($!)
  local _i
  for _i in $(seq 100); do
    [[ $(ip netns exec "$NSK" "$TMP/epoll_client" rr 198.18.0.2 7 1 0.1 2>/dev/null | cut -d' ' -f1) != 0 ]] && { server_napi; return; }
    sleep 0.1
  done
  echo "bench: xdptcp echo did not come up: $(tail -3 "$TMP/xdptcp.err")" >&2
  exit 1
}
reflect() { # -> packets/s echoed by the raw reflector
  local mac
  mac=$(ip -n "$NSS" -br link show "${P}s0" | awk '{print $3}')
  # The reflector answers no ARP: the client is told the MAC.
  ip -n "$NSK" neigh replace 198.18.0.2 lladdr "$mac" dev "${P}k0"
  ip netns exec "$NSS" taskset -c 0 "$REFLECT" "${P}s0" 198.18.0.2 $((SECS + 2)) >"$TMP/reflect.out" 2>>"$TMP/xdptcp.err" &
  PIDS+=($!)
  sleep 1
  server_napi
  read -r pps lost <<<"$(timeout $((SECS + 30)) ip netns exec "$NSK" taskset -c 1 "$TMP/udp_flood" 198.18.0.2 9 256 "$SECS" 1472)"
  stop_all
  ip -n "$NSK" neigh del 198.18.0.2 dev "${P}k0" 2>/dev/null || true
  echo "$pps"
}
gso() { ip netns exec "$NSS" ethtool -K "${P}s0" gso "$1" tso "$1" >/dev/null; }

# Results: lines "row side value" in $TMP/res.
rec() { echo "$1|$2|$3" >>"$TMP/res"; }
measure() { # side addr
  local s=$1 a=$2 c line
  if [[ $ONLY == burst ]]; then
    read -r served failed secs <<<"$(burst "$a")"
    rec "16,000 conns at once: served" "$s" "$served"
    rec "16,000 conns at once: failed" "$s" "$failed"
    rec "16,000 conns at once: seconds" "$s" "$secs"
    return
  fi
  for c in $([[ $ONLY == bulk ]] || echo 4 64 256); do
    line=$(client rr "$a" $c)
    read -r rps p50 p99 err <<<"$line"
    rec "64 B req/resp, $c conns: req/s" "$s" "$rps"
    rec "64 B req/resp, $c conns: p50 µs" "$s" "$p50"
    rec "64 B req/resp, $c conns: p99 µs" "$s" "$p99"
  done
  for g in on off; do
    [[ $s == linux ]] && gso $g
    read -r mbps err <<<"$(epoll_client bulk "$a" 2)"
    rec "bulk echo, 2 conns, Linux GSO $g: Mbit/s" "$s" "$mbps"
    [[ $s == linux && $g == off ]] && rec "$MB_ROW" linux "$mbps"
    if [[ $s == xdptcp && $g == off ]]; then
      rec "ceiling: xdptcp bulk echo, data segments/s each way" ceiling \
        "$(python3 -c "print(round($mbps * 1e6 / 8 / 1448))")"
    fi
  done
  gso on
  [[ $ONLY == bulk ]] && return
  read -r served failed secs <<<"$(burst "$a")"
  rec "16,000 conns at once: served" "$s" "$served"
  rec "16,000 conns at once: failed" "$s" "$failed"
  rec "16,000 conns at once: seconds" "$s" "$secs"
  sleep 1
  read -r cps err <<<"$(client short "$a" 64)"
  rec "short connections: conn/s" "$s" "$cps"
}

# xdptcp with multi-buffer receive: generic mode, where the client keeps its
# GSO/TSO (native mode on veth takes it) and its 64 KB segments reach the
# socket as chained frames (`--rx-multibuf`); beside Linux with GSO off.
MB_ROW="bulk echo, 2 conns, xdptcp --xdp-mode generic --rx-multibuf vs Linux GSO off: Mbit/s"
up 1
for run in $(seq "$RUNS"); do
  echo "bench: run $run of $RUNS" >&2
  linux_start
  measure linux 198.18.0.3
  stop_all
  xdptcp_start 1 0 "$TMP/x.json"
  measure xdptcp 198.18.0.2
  stop_all
  if [[ $ONLY != burst ]]; then
    xdptcp_start 1 0 "$TMP/mb.json" --xdp-mode generic --rx-multibuf
    read -r mbps err <<<"$(epoll_client bulk 198.18.0.2 2)"
    rec "$MB_ROW" xdptcp "$mbps"
    stop_all
  fi
  [[ $ONLY == burst ]] || rec "ceiling: raw AF_XDP reflector, 1514 B frames: packets/s" ceiling "$(reflect)"
done
for q in $([[ -n $ONLY ]] || echo 1 2 4); do
  up $q
  xdptcp_start $q 0,1 "$TMP/h$q.json"
  timeout 120 ip netns exec "$NSK" taskset -c 1 "$TMP/epoll_client" burst 198.18.0.2 7 4000 60 >/dev/null
  epoll_client rr 198.18.0.2 64 >/dev/null
  stop_all
  share=$(python3 -c "
import json, sys
r = json.load(open(sys.argv[1]))
out = sum(w['handoff_out'] for w in r['workers'])
rx = sum(w['rx_packets'] for w in r['workers'])
print(f'{100 * out / max(rx, 1):.3f}')" "$TMP/h$q.json")
  rec "hand-off share, $q queue(s): % of packets" xdptcp "$share"
done

python3 - "$TMP/res" "$RUNS" <<'EOF' | tee "$OUT/bench-echo.md"
import statistics, sys
rows, order = {}, []
for line in open(sys.argv[1]):
    row, side, v = line.rstrip("\n").split("|")
    if row not in rows:
        rows[row] = {"linux": [], "xdptcp": [], "ceiling": []}
        order.append(row)
    try:
        rows[row][side].append(float(v))
    except ValueError:
        pass
def fmt(v):
    return "–" if v is None else (f"{v:.0f}" if abs(v) >= 100 else f"{v:.3g}")
print(f"echo_vs_linux: {sys.argv[2]} run(s), medians (all runs in brackets); ratio = xdptcp / Linux\n")
print("| row | xdptcp | Linux epoll | ratio |")
print("|---|---|---|---|")
ceiling = [r for r in order if rows[r]["ceiling"]]
for row in order:
    if row in ceiling:
        continue
    x, l = rows[row]["xdptcp"], rows[row]["linux"]
    mx = statistics.median(x) if x else None
    ml = statistics.median(l) if l else None
    ratio = f"{mx / ml:.2f}" if mx is not None and ml else "–"
    allx = " [" + ", ".join(fmt(v) for v in x) + "]" if len(x) > 1 else ""
    alll = " [" + ", ".join(fmt(v) for v in l) + "]" if len(l) > 1 else ""
    print(f"| {row} | {fmt(mx)}{allx} | {fmt(ml)}{alll} | {ratio} |")
if ceiling:
    print("\n| the data path's ceiling (same veth, same run) | median [runs] |")
    print("|---|---|")
    meds = []
    for row in ceiling:
        v = rows[row]["ceiling"]
        meds.append(statistics.median(v))
        alls = " [" + ", ".join(fmt(x) for x in v) + "]" if len(v) > 1 else ""
        print(f"| {row.removeprefix('ceiling: ')} | {fmt(meds[-1])}{alls} |")
    if len(meds) == 2 and meds[1]:
        print(f"| ratio: bulk echo segments / reflector packets | {meds[0] / meds[1]:.2f} |")
EOF
