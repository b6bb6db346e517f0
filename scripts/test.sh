#!/usr/bin/env bash
# Installs what the test suite needs (as root, non-interactively) and runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo test --all-targets --features mpi 2>&1
