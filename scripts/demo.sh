#!/usr/bin/env bash
# A short guided demo of xdptcp on a fresh machine:
#   0. install what is missing (scripts/setup.sh, idempotent), cargo build --release
#   1. `xdptcp sim`: 8 connections over a simulated lossy link (1% loss, 20 ms),
#      then `xdptcp swarm`: 2,000 random mixes with every invariant checked
#   2. (root + AF_XDP) `xdptcp echo` on a 2-queue veth between two network
#      namespaces, a kernel-TCP client echoing data through it and checking
#      every byte, the stack's counters;
#   3. `xdptcp http` with `xdptcp loadgen` against it (verified, latency plot);
#   4. bench/http_vs_nginx.sh: xdptcp vs nginx/wrk/iperf3, a table of ratios.
# The namespaces are removed at the end.
# Every step is bounded in time; namespaces are removed on exit or failure.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
BIN=target/release/xdptcp
PREFIX=demo$$
PREFIX=${PREFIX:0:9}
TMP=$(mktemp -d)
ECHO_PID=

cleanup() {
  if [[ -n $ECHO_PID ]] && kill -0 "$ECHO_PID" 2>/dev/null; then
    kill -INT "$ECHO_PID" 2>/dev/null || true
    sleep 1
    kill -KILL "$ECHO_PID" 2>/dev/null || true
  fi
  if [[ $(id -u) == 0 ]]; then
    bash scripts/harness.sh --prefix "$PREFIX" down >/dev/null 2>&1 || true
  fi
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "0. setup: system packages (idempotent) and a release build"
if [[ $(id -u) == 0 ]]; then
  bash scripts/setup.sh
else
  bash scripts/setup.sh 2>/dev/null || echo "demo: not root: cannot install missing packages; trying the build anyway"
fi
cargo build --release --bin xdptcp

say "1. simulator: 8 connections x 2 MiB, 1% loss each way, 20 ms one-way delay, 100 Mbit/s"
echo "\$ $BIN sim --bytes 2M --conns 8 --loss 0.01 --delay-ms 20 --rate-mbps 100 --seed 1"
timeout 120 "$BIN" sim --bytes 2M --conns 8 --loss 0.01 --delay-ms 20 --rate-mbps 100 --seed 1

say "1b. swarm: 2,000 random simulator mixes, every invariant checked on each"
echo "\$ $BIN swarm --seed 1 --runs 2000 --jobs 2"
timeout 300 "$BIN" swarm --seed 1 --runs 2000 --jobs 2

say "2. AF_XDP: xdptcp echo on a 2-queue veth, Linux's TCP as the client"
if [[ $(id -u) != 0 ]]; then
  echo "demo: part 2 needs root (network namespaces, XDP, AF_XDP): skipped."
  echo "demo: run 'sudo scripts/demo.sh' to see it."
  exit 0
fi
echo "\$ scripts/harness.sh --prefix $PREFIX --queues 2 up"
bash scripts/harness.sh --prefix "$PREFIX" --queues 2 up
NSK=${PREFIX}k NSS=${PREFIX}s
echo "\$ ip netns exec $NSS $BIN echo --iface ${PREFIX}s0=198.18.0.2/24 --queues 2 --duration 60"
ip netns exec "$NSS" "$BIN" echo --iface "${PREFIX}s0=198.18.0.2/24" --queues 2 --duration 60 \
  --stats-json "$TMP/stats.json" 2>"$TMP/echo.log" &
ECHO_PID=$!

# The client: kernel TCP in the other namespace. 4 connections, 4 MiB each,
# a pseudo-random stream per connection, every echoed byte compared.
CLIENT='
import hashlib, os, socket, sys, threading, time
N, SIZE = 4, 4 << 20
deadline = time.time() + 20
while True:  # wait (bounded) for the listener
    try:
        socket.create_connection(("198.18.0.2", 7), timeout=1).close(); break
    except OSError:
        if time.time() > deadline: sys.exit("demo: xdptcp echo did not start listening")
        time.sleep(0.2)
ok = [False] * N
def conn(i):
    data = hashlib.shake_256(b"demo %d" % i).digest(SIZE)
    s = socket.create_connection(("198.18.0.2", 7), timeout=20)
    def send():
        s.sendall(data); s.shutdown(socket.SHUT_WR)
    t = threading.Thread(target=send); t.start()
    got = bytearray()
    while True:
        b = s.recv(1 << 16)
        if not b: break
        got += b
    t.join(); s.close()
    ok[i] = bytes(got) == data
    print("  connection %d: sent %d bytes, echoed %d bytes, %s" % (i, SIZE, len(got), "identical" if ok[i] else "DIFFERENT"))
t0 = time.time()
ts = [threading.Thread(target=conn, args=(i,)) for i in range(N)]
[t.start() for t in ts]; [t.join() for t in ts]
dt = time.time() - t0
print("  %d x %d MiB echoed in %.2f s (%.0f Mbit/s each way)" % (N, SIZE >> 20, dt, N * SIZE * 8 / dt / 1e6))
sys.exit(0 if all(ok) else 1)
'
echo "\$ ip netns exec $NSK python3 -c <client: 4 connections x 4 MiB, verified>"
ip netns exec "$NSK" timeout 60 python3 -c "$CLIENT"

echo "\$ ip netns exec $NSK ping -c 2 198.18.0.2   # ICMP echo, answered by xdptcp"
ip netns exec "$NSK" ping -c 2 -W 2 198.18.0.2 | sed -n '2,3p'

say "the stack's counters (SIGINT to xdptcp echo)"
kill -INT "$ECHO_PID"
wait "$ECHO_PID" || { cat "$TMP/echo.log"; exit 1; }
ECHO_PID=
sed 's/^/  /' "$TMP/echo.log"
python3 - "$TMP/stats.json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
keys = ("rx_packets", "tx_packets", "conns_opened", "retransmits", "rto_timeouts", "fast_recoveries")
for w in r.get("workers", []):
    tot = {k: sum(s.get(k, 0) for s in w.get("stacks", [])) for k in keys}
    print("  worker %s: %s, hand-offs out %s in %s" % (w.get("worker"), ", ".join("%s %s" % kv for kv in tot.items()), w.get("handoff_out"), w.get("handoff_in")))
EOF

say "3. xdptcp http with xdptcp loadgen against it (both on AF_XDP, one on each end of the veth)"
ip netns exec "$NSS" "$BIN" http --iface "${PREFIX}s0=198.18.0.2/24" --queues 2 --duration 60 \
  2>"$TMP/http.log" &
ECHO_PID=$!
for _ in $(seq 50); do
  ip netns exec "$NSK" python3 -c "import socket; socket.create_connection(('198.18.0.2', 80), timeout=0.5).close()" \
    2>/dev/null && break
  sleep 0.2
done
echo "\$ ip netns exec $NSK $BIN loadgen --iface ${PREFIX}k0=198.18.0.16-198.18.0.31/24 --target 198.18.0.2:80 --mode http --conns 64 --duration 5 --verify --plot target/demo-latency.svg"
ip netns exec "$NSK" timeout 60 "$BIN" loadgen --iface "${PREFIX}k0=198.18.0.16-198.18.0.31/24" \
  --target 198.18.0.2:80 --mode http --conns 64 --duration 5 --warmup 1 --verify \
  --plot target/demo-latency.svg 2> >(grep -v '^xdptcp: ' >&2)
echo "  latency plot: target/demo-latency.svg"
kill -INT "$ECHO_PID"
wait "$ECHO_PID" || true
ECHO_PID=

say "harness down"
bash scripts/harness.sh --prefix "$PREFIX" down

say "4. side by side with Linux: nginx, wrk, iperf3 (bench/http_vs_nginx.sh)"
BENCH_SECS=${BENCH_SECS:-3} bash bench/http_vs_nginx.sh
echo
echo "demo: done."
