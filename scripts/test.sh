#!/usr/bin/env bash
# Set up everything the tests need (idempotently) and run every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --release --all-targets
cargo test --release
