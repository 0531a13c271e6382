#!/usr/bin/env bash
# Idempotent setup: system packages the build and tests need.
set -euo pipefail
PKGS=(clang llvm m4 libelf-dev zlib1g-dev libpcap-dev linux-libc-dev pkg-config make nftables iproute2 iputils-ping ethtool tshark tcpdump curl wrk iperf3 python3 nginx-light)
missing=()
for p in "${PKGS[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # tshark asks whether non-root users may capture; answer no.
  echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
  apt-get install -y -qq "${missing[@]}" >/dev/null
  # The tests and benchmarks start nginx themselves, inside their own
  # namespaces; the distribution's service (port 80 of this host) stays off.
  if [[ " ${missing[*]} " == *" nginx-light "* ]]; then
    systemctl disable --now nginx >/dev/null 2>&1 || service nginx stop >/dev/null 2>&1 || true
  fi
fi
