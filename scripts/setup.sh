#!/usr/bin/env bash
# Installs what the main job needs (README: `cargo run --release --features mpi --
# workflows/colmean.rhai`), non-interactively, once:
#   - OpenMPI (`libopenmpi-dev`, `openmpi-bin`: `mpirun` and the headers) for the `mpi`
#     execution model, and libclang (`libclang-dev`, `clang`) that the `mpi` crate's bindings
#     generator needs at build time.
# Nothing else: colmean.rhai is plain flowrun (no Python). The test suite's extra tools
# (Python with NumPy and Snakemake, Make, SLURM) are in scripts/setup-tests.sh.
# Needs root (or passwordless sudo) for apt-get; does nothing that is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/common.sh
. scripts/common.sh

apt_install -- openmpi-bin libopenmpi-dev libclang-dev clang
