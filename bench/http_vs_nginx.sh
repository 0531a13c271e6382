#!/usr/bin/env bash
# xdptcp http / xdptcp loadgen side by side with nginx / wrk / iperf3, in
# one run, on one machine (root). Builds its own harness topology (a
# 1-queue veth between two namespaces it creates, 198.18.0.0/15 only) and
# removes it on exit, also on failure. Servers are pinned to core 0,
# clients to core 1; Linux and xdptcp rows alternate.
#
#   1. HTTP matrix: keep-alive GET of a 64-byte body, 64 connections,
#      {wrk, xdptcp loadgen} x {nginx (1 worker), xdptcp http (1 worker)}
#   2. connections/s: loadgen --mode connect against nginx and xdptcp http
#   3. bulk: iperf3 -> iperf3 vs loadgen --mode bulk -> a Linux sink,
#      and the reverse (iperf3 -R vs loadgen --reverse from a Linux source)
#   4. latency at a fixed rate (open loop, half of nginx's measured
#      capacity): p50/p99/p99.9 for both servers
#   5. CPU seconds per million requests (whole machine, /proc/stat)
#
# Output: a markdown table (stdout and target/bench-http.md), JSON
# (target/bench-http.json) and latency plots (target/bench-http-*.svg).
# Knobs: BENCH_SECS (default 5 per measurement), BENCH_CONNS (64),
# BENCH_CLIENT_RPS=1 (RPS on the client's veth end; see client_rps).
set -euo pipefail
cd "$(dirname "$0")/.."

SECS=${BENCH_SECS:-5}
CONNS=${BENCH_CONNS:-64}
BIN=$PWD/target/release/xdptcp
P=hb$$
P=${P:0:9}
NSK=${P}k NSS=${P}s
OUT=$PWD/target
TMP=$(mktemp -d)
PIDS=()

if [[ $(id -u) != 0 ]]; then
  echo "bench: SKIP: needs root (namespaces, XDP, AF_XDP)" >&2
  exit 0
fi
for t in nginx wrk iperf3 python3; do
  command -v $t >/dev/null || { echo "bench: $t missing: run bash scripts/setup.sh" >&2; exit 1; }
done
[[ -x $BIN ]] || cargo build --release --bin xdptcp

stop_all() {
  local p
  for p in "${PIDS[@]}"; do
    kill -INT "$p" 2>/dev/null || true
  done
  for p in "${PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
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

bash scripts/harness.sh --prefix "$P" --queues 1 up >/dev/null
K() { ip netns exec "$NSK" "$@"; }
S() { ip netns exec "$NSS" "$@"; }
# BENCH_CLIENT_RPS=1: RPS on the client's veth end (mask: the client's
# core 1) for the HTTP and latency rows. veth hands a packet to its peer
# on the sending CPU, so without it wrk's TCP receive of the answers runs
# in the server's softirq on core 0, for nginx and xdptcp alike; RPS
# queues it to core 1 (as bench/echo_vs_linux.sh does by default). Off by
# default here: loadgen's receive runs in XDP, before RPS, so it stays on
# the server's core and the client rows (loadgen vs wrk) would compare a
# client that does its own receive with one that does not. Never for the
# bulk rows (iperf3 vs loadgen on the client end: the same asymmetry).
client_rps() { # mask (0: off)
  [[ ${BENCH_CLIENT_RPS:-0} != 0 ]] || return 0
  K sh -c "echo $1 > /sys/class/net/${NSK}0/queues/rx-0/rps_cpus"
}
client_rps 2

# Same 64-byte body from both servers.
mkdir -p "$TMP/www/bytes"
python3 -c "import sys; sys.stdout.write(''.join(chr(97 + i % 26) for i in range(64)))" >"$TMP/www/bytes/64"
cat >"$TMP/nginx.conf" <<NGX
daemon off; master_process off; worker_processes 1; user root; pid $TMP/nginx.pid;
error_log $TMP/nginx.err; worker_rlimit_nofile 20000;
events { worker_connections 16384; }
http { access_log off; client_body_temp_path $TMP/b; proxy_temp_path $TMP/p;
  fastcgi_temp_path $TMP/f; uwsgi_temp_path $TMP/u; scgi_temp_path $TMP/s;
  keepalive_requests 100000000; open_file_cache max=16;
  server { listen 198.18.0.3:8080 backlog=8192 reuseport; root $TMP/www; } }
NGX
SOURCE='
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("198.18.0.3", 5002)); s.listen(16); s.settimeout(120)
blob = b"x" * (1 << 20)
import threading
def pump(c):
    try:
        while True: c.sendall(blob)
    except OSError: pass
while True:
    c, _ = s.accept(); threading.Thread(target=pump, args=(c,), daemon=True).start()
'
SINK='
import socket, threading
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("198.18.0.3", 5001)); s.listen(16); s.settimeout(120)
def drain(c):
    b = bytearray(1 << 20)
    try:
        while c.recv_into(b): pass
    except OSError: pass  # the client resets its connections when it stops
while True:
    c, _ = s.accept(); threading.Thread(target=drain, args=(c,), daemon=True).start()
'

wait_port() { # host port
  for _ in $(seq 100); do
    K python3 -c "import socket; socket.create_connection(('$1', $2), timeout=0.5).close()" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "bench: nothing listening on $1:$2" >&2; exit 1
}
# Background servers: `ip netns exec` execs the program, so $! is its pid.
start_nginx() { ip netns exec "$NSS" taskset -c 0 nginx -c "$TMP/nginx.conf" & PIDS+=($!); wait_port 198.18.0.3 8080; }
start_xhttp() {
  ip netns exec "$NSS" "$BIN" http --iface "${NSS}0=198.18.0.2/24" --queues 1 --cores 0 --duration 600 2>>"$TMP/xhttp.log" &
  PIDS+=($!); wait_port 198.18.0.2 80
}
cpu_jiffies() { awk '/^cpu /{print $2+$3+$4+$7+$8}' /proc/stat; }
HZ=$(getconf CLK_TCK)

RESULTS=$TMP/results.tsv
: >"$RESULTS"
# record ROW CLIENT SERVER METRIC VALUE CPU_S REQUESTS P50 P99 P999
record() { printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$RESULTS"; }

loadgen() { # args...: prints the JSON line
  K taskset -c 1 "$BIN" loadgen --iface "${NSK}0=198.18.0.16-198.18.0.31/24" --queues 1 --cores 1 \
    --json "$@" 2>"$TMP/loadgen.log" || { cat "$TMP/loadgen.log" >&2; return 1; }
}
jget() { python3 -c "import json,sys; d=json.loads(sys.argv[1]); print(eval(sys.argv[2]))" "$1" "$2"; }

wrk_run() { # url -> "rps p50_us p99_us requests"
  local out
  out=$(K taskset -c 1 wrk -t1 -c"$CONNS" -d"${SECS}s" --latency "$1")
  echo "$out" >>"$TMP/wrk.log"
  if grep -q "Socket errors" <<<"$out"; then echo "bench: wrk: $(grep 'Socket errors' <<<"$out")" >&2; fi
  python3 - "$out" <<'PY'
import re, sys
t = sys.argv[1]
def us(v):
    n, u = re.match(r"([\d.]+)(\w+)", v).groups(); n = float(n)
    return int(n * {"us": 1, "ms": 1e3, "s": 1e6}[u])
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1))
req = int(re.search(r"(\d+) requests in", t).group(1))
p50 = us(re.search(r"50%\s+(\S+)", t).group(1)); p99 = us(re.search(r"99%\s+(\S+)", t).group(1))
print(rps, p50, p99, req)
PY
}

echo "bench: $SECS s per measurement, $CONNS connections; server on core 0, client on core 1" >&2

# 1. HTTP matrix.
for server in nginx xdptcp; do
  if [[ $server == nginx ]]; then start_nginx; URL=http://198.18.0.3:8080/bytes/64; T=198.18.0.3:8080
  else start_xhttp; URL=http://198.18.0.2/bytes/64; T=198.18.0.2:80; fi
  for client in wrk loadgen; do
    c0=$(cpu_jiffies)
    if [[ $client == wrk ]]; then
      read -r rps p50 p99 req < <(wrk_run "$URL"); p999=
    else
      j=$(loadgen --mode http --target $T --path /bytes/64 --conns "$CONNS" --duration "$SECS" --warmup 1)
      rps=$(jget "$j" 'd["rps"]'); p50=$(jget "$j" 'd["latency_us"]["p50"]'); p99=$(jget "$j" 'd["latency_us"]["p99"]')
      p999=$(jget "$j" 'd["latency_us"]["p999"]'); req=$(jget "$j" 'd["requests"]')
    fi
    cpu=$(python3 -c "print(($(cpu_jiffies) - $c0) / $HZ)")
    record http "$client" "$server" rps "$rps" "$cpu" "$req" "$p50" "$p99" "$p999"
    echo "bench: http $client -> $server: $rps req/s" >&2
  done
  # 2. connections per second (loadgen; a GET with Connection: close each).
  c0=$(cpu_jiffies)
  j=$(loadgen --mode connect --target $T --path /bytes/64 --conns "$CONNS" --duration "$SECS" --warmup 1)
  cpu=$(python3 -c "print(($(cpu_jiffies) - $c0) / $HZ)")
  record connect loadgen "$server" conn/s "$(jget "$j" 'd["rps"]')" "$cpu" "$(jget "$j" 'd["requests"]')" \
    "$(jget "$j" 'd["latency_us"]["p50"]')" "$(jget "$j" 'd["latency_us"]["p99"]')" "$(jget "$j" 'd["latency_us"]["p999"]')"
  echo "bench: connect loadgen -> $server: $(jget "$j" 'd["rps"]') conn/s" >&2
  [[ $server == nginx ]] && NGINX_RPS=$(awk -F'\t' '$1=="http" && $2=="wrk" && $3=="nginx" {print $5}' "$RESULTS")
  stop_all
done

# 4. Latency at a fixed rate: half of nginx's capacity (as wrk measured it).
RATE=$(python3 -c "print(int(float('${NGINX_RPS:-20000}') / 2))")
for server in nginx xdptcp; do
  if [[ $server == nginx ]]; then start_nginx; T=198.18.0.3:8080; else start_xhttp; T=198.18.0.2:80; fi
  c0=$(cpu_jiffies)
  j=$(loadgen --mode http --target $T --path /bytes/64 --conns "$CONNS" --rate "$RATE" --duration "$SECS" \
    --warmup 1 --hist "$OUT/bench-http-$server.hist" --plot "$OUT/bench-http-$server.svg")
  cpu=$(python3 -c "print(($(cpu_jiffies) - $c0) / $HZ)")
  record latency loadgen "$server" "p99_us@${RATE}rps" "$(jget "$j" 'd["latency_us"]["p99"]')" "$cpu" \
    "$(jget "$j" 'd["requests"]')" "$(jget "$j" 'd["latency_us"]["p50"]')" "$(jget "$j" 'd["latency_us"]["p99"]')" \
    "$(jget "$j" 'd["latency_us"]["p999"]')"
  echo "bench: latency at $RATE req/s -> $server: p99 $(jget "$j" 'd["latency_us"]["p99"]') us" >&2
  stop_all
done

client_rps 0
# 3. Bulk: iperf3 vs loadgen against Linux, both directions. iperf3 runs
# twice: at the veth defaults (GSO/TSO hand the kernel 64 KB segments) and
# with GSO/TSO off on both ends (1,448-byte segments, as xdptcp sends).
gso() { K ethtool -K "${NSK}0" gso "$1" tso "$1" >/dev/null; S ethtool -K "${NSS}0" gso "$1" tso "$1" >/dev/null; }
iperf() { # row client-name [-R]
  ip netns exec "$NSS" taskset -c 0 iperf3 -s -B 198.18.0.3 >/dev/null 2>&1 & PIDS+=($!); wait_port 198.18.0.3 5201
  local c0 mbps
  c0=$(cpu_jiffies)
  mbps=$(K taskset -c 1 iperf3 -c 198.18.0.3 -t "$SECS" ${3:-} -J | python3 -c "import json,sys; e=json.load(sys.stdin)['end']; print(round(e.get('sum_received', e.get('sum', {})).get('bits_per_second', 0)/1e6,1))")
  record "$1" "$2" linux Mbit/s "$mbps" "$(python3 -c "print(($(cpu_jiffies) - $c0) / $HZ)")" "" "" "" ""
  echo "bench: $1 $2: $mbps Mbit/s" >&2
  stop_all
}
iperf bulk iperf3
iperf bulk-reverse iperf3 -R
gso off
iperf bulk iperf3-nogso
iperf bulk-reverse iperf3-nogso -R
gso on
ip netns exec "$NSS" taskset -c 0 python3 -c "$SINK" & PIDS+=($!); wait_port 198.18.0.3 5001
c0=$(cpu_jiffies)
j=$(loadgen --mode bulk --target 198.18.0.3:5001 --conns 1 --duration "$SECS")
record bulk loadgen linux Mbit/s "$(jget "$j" 'd["throughput_mbps"]')" "$(python3 -c "print(($(cpu_jiffies) - $c0) / $HZ)")" "" "" "" ""
stop_all
ip netns exec "$NSS" taskset -c 0 python3 -c "$SOURCE" & PIDS+=($!); wait_port 198.18.0.3 5002
c0=$(cpu_jiffies)
j=$(loadgen --mode bulk --reverse --target 198.18.0.3:5002 --conns 1 --duration "$SECS")
record bulk-reverse loadgen linux Mbit/s "$(jget "$j" 'd["throughput_mbps"]')" "$(python3 -c "print(($(cpu_jiffies) - $c0) / $HZ)")" "" "" "" ""
stop_all

python3 - "$RESULTS" "$OUT" "$SECS" "$CONNS" <<'PY'
import json, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
out, secs, conns = sys.argv[2], sys.argv[3], sys.argv[4]
R = {}
for r in rows:
    R[(r[0], r[1], r[2])] = r
def val(k):
    r = R.get(k)
    return float(r[4]) if r and r[4] else None
def cpu_per_m(k):
    # CPU seconds per million requests; for bulk rows, per GB moved.
    r = R.get(k)
    if not r or not r[5] or float(r[5]) == 0: return ""
    if r[3] == "Mbit/s":
        gb = float(r[4]) * float(secs) / 8 / 1000
        return "%.2f/GB" % (float(r[5]) / gb) if gb else ""
    if not r[6] or float(r[6]) == 0: return ""
    return "%.2f" % (float(r[5]) / (float(r[6]) / 1e6))
def ratio(a, b):
    return "%.2fx" % (a / b) if a and b else "n/a"
lines = ["| row | xdptcp | Linux | ratio | CPU s / M req or / GB (xdptcp / Linux) |", "|---|---|---|---|---|"]
def row(name, kx, kl, unit):
    x, l = val(kx), val(kl)
    lines.append("| %s | %s %s | %s %s | %s | %s / %s |" % (name, x, unit, l, unit, ratio(x, l), cpu_per_m(kx), cpu_per_m(kl)))
# Server and client ratios twice each: with the other side fixed to the
# faster tool (the one that is not the limit) and to the slower one.
row("server, same client (loadgen): xdptcp http vs nginx", ("http", "loadgen", "xdptcp"), ("http", "loadgen", "nginx"), "req/s")
row("server, same client (wrk): xdptcp http vs nginx", ("http", "wrk", "xdptcp"), ("http", "wrk", "nginx"), "req/s")
row("client, same server (xdptcp http): loadgen vs wrk", ("http", "loadgen", "xdptcp"), ("http", "wrk", "xdptcp"), "req/s")
row("client, same server (nginx): loadgen vs wrk", ("http", "loadgen", "nginx"), ("http", "wrk", "nginx"), "req/s")
row("end to end: loadgen -> xdptcp http vs wrk -> nginx", ("http", "loadgen", "xdptcp"), ("http", "wrk", "nginx"), "req/s")
row("connections/s: loadgen -> xdptcp vs loadgen -> nginx", ("connect", "loadgen", "xdptcp"), ("connect", "loadgen", "nginx"), "conn/s")
row("bulk: loadgen -> Linux sink vs iperf3 -> iperf3", ("bulk", "loadgen", "linux"), ("bulk", "iperf3", "linux"), "Mbit/s")
row("bulk reverse: loadgen <- Linux vs iperf3 -R", ("bulk-reverse", "loadgen", "linux"), ("bulk-reverse", "iperf3", "linux"), "Mbit/s")
row("bulk, iperf3 with GSO/TSO off (1,448-byte segments like ours)", ("bulk", "loadgen", "linux"), ("bulk", "iperf3-nogso", "linux"), "Mbit/s")
row("bulk reverse, iperf3 with GSO/TSO off", ("bulk-reverse", "loadgen", "linux"), ("bulk-reverse", "iperf3-nogso", "linux"), "Mbit/s")
lat = [r for r in rows if r[0] == "latency"]
for r in lat:
    lines.append("| latency at %s, %s: p50 / p99 / p99.9 us | %s | | | |" % (r[3].split("@")[1], r[2], " / ".join(r[7:10])))
if len(lat) == 2:
    x = next(float(r[8]) for r in lat if r[2] == "xdptcp"); l = next(float(r[8]) for r in lat if r[2] == "nginx")
    lines.append("| p99 at a fixed rate (ratio: Linux / xdptcp, above 1 favours xdptcp) | %d us | %d us | %s | |" % (x, l, ratio(l, x)))
md = "\n".join(lines)
hdr = "xdptcp vs Linux, %s s per measurement, %s connections, server on core 0, client on core 1 (2-core machine)\n\n" % (secs, conns)
print(hdr + md)
open(out + "/bench-http.md", "w").write(hdr + md + "\n")
keys = ["row", "client", "server", "metric", "value", "cpu_s", "requests", "p50_us", "p99_us", "p999_us"]
json.dump([dict(zip(keys, r)) for r in rows], open(out + "/bench-http.json", "w"), indent=1)
print("\nJSON: %s/bench-http.json; latency plots: %s/bench-http-xdptcp.svg, %s/bench-http-nginx.svg" % (out, out, out))
PY
