#!/usr/bin/env bash
# Installs what the test suite needs (scripts/setup-tests.sh: the main job's tools and the
# test-only ones; as root, non-interactively) and runs every test, then checks the SLURM test
# cluster of scripts/slurm.sh end to end (scripts/slurm-check.sh, about 15 s).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-tests.sh
cargo test --all-targets --features mpi 2>&1
bash scripts/slurm-check.sh
