#!/usr/bin/env bash
# Set up everything the tests need (idempotently) and run every test:
# unit and packet-script tests, simulation sweeps, fuzz targets (bolero, a
# brief run each), and the veth/AF_XDP tests against the Linux kernel (these
# need root; under CI=true they fail loudly instead of skipping).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh

if [[ $(id -u) -ne 0 ]]; then
  echo "test.sh: WARNING: not root — the veth/AF_XDP tests will not run here" >&2
fi

echo "== format and lints"
cargo fmt --check
cargo clippy --release --all-targets -- -D warnings

echo "== build"
cargo build --release --all-targets

echo "== tests"
# Test binaries run one after another; two threads within each (2 cores).
cargo test --release -- --test-threads=2
