#!/usr/bin/env bash
# Goodput of one bulk connection at 1% loss and 40 ms RTT, SACK on and off,
# over several seeds, against the Mathis et al. bound MSS/RTT * 1.22/sqrt(p)
# (Mathis, Semke, Mahdavi, Ott, "The Macroscopic Behavior of the TCP
# Congestion Avoidance Algorithm", CCR 1997). The bound models Reno with
# periodic loss; CUBIC and SACK may exceed it somewhat, a broken recovery
# falls far below.
#
# Usage: scripts/mathis.sh [bytes] [seeds]   (defaults: 8M, 5; CCS="newreno cubic")
set -euo pipefail
cd "$(dirname "$0")/.."
BYTES=${1:-8M}
SEEDS=${2:-5}
LOSS=0.01
DELAY_MS=20          # one way: RTT 40 ms
RATE_MBPS=1000
MTU=1500
MSS=$((MTU - 52))    # with the timestamps option
CCS=${CCS:-newreno cubic}

cargo build --release --quiet
BIN=target/release/xdptcp

bound=$(awk -v mss=$MSS -v rtt=$((2 * DELAY_MS)) -v p=$LOSS \
    'BEGIN { printf "%.2f", mss * 8 / (rtt / 1000) * 1.22 / sqrt(p) / 1e6 }')
echo "Mathis bound: MSS ${MSS} B, RTT $((2 * DELAY_MS)) ms, p ${LOSS} -> ${bound} Mbit/s (${BYTES} per run)"
printf '%-8s %-5s %-5s %8s %12s %8s %8s %8s %8s\n' cc sack seed intact goodput_mbps ratio retx rto fastrec
for cc in $CCS; do
    for sack in on off; do
        flag=""
        [ "$sack" = off ] && flag="--no-sack"
        for seed in $(seq 1 "$SEEDS"); do
            j=$($BIN sim --json --bytes "$BYTES" --loss $LOSS --delay-ms $DELAY_MS \
                --rate-mbps $RATE_MBPS --mtu $MTU --cc "$cc" --seed "$seed" $flag 2>/dev/null || true)
            if [ -z "$j" ]; then echo "$cc sack $sack seed $seed: no output"; continue; fi
            python3 - "$j" "$bound" "$cc" "$sack" "$seed" <<'PY'
import json, sys
j = json.loads(sys.argv[1]); bound = float(sys.argv[2])
g = j["goodput_mbps"]
print("%-8s %-5s %-5s %8s %12.2f %8.2f %8d %8d %8d" % (sys.argv[3], sys.argv[4], sys.argv[5], j["intact"], g,
      g / bound, j["retransmits"], j["rto_timeouts"], j["fast_recoveries"]))
PY
        done
    done
done
