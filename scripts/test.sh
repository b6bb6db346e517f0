#!/usr/bin/env bash
# Installs what the test suite needs (scripts/setup-tests.sh: the main job's tools and the
# test-only ones; as root, non-interactively) and runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-tests.sh
cargo test --all-targets --features mpi 2>&1
