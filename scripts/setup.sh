#!/usr/bin/env bash
# Installs what flowrun's tests and examples use, non-interactively, once:
#   - OpenMPI (`libopenmpi-dev`, `openmpi-bin`) for the `mpi` execution model, and libclang
#     (`libclang-dev`, `clang`) that the `mpi` crate's bindings generator needs at build time;
#   - zsh and fish, which tests/completions.rs sources flowrun's completion scripts into;
#   - python3 with venv, and a venv at target/pyenv with NumPy (the tests' oracle) and Snakemake
#     (the twin that tests/snakemake_twin.rs compares reruns with).
# Needs root (or passwordless sudo) for apt-get; does nothing that is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'ok installed'; }

need=()
for pkg in openmpi-bin libopenmpi-dev libclang-dev clang zsh fish; do
  installed "$pkg" || need+=("$pkg")
done
command -v python3 >/dev/null || need+=(python3)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need+=(python3-venv)
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]}" >&2
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${need[@]}" >/dev/null
fi

if ! target/pyenv/bin/python -c 'import numpy' >/dev/null 2>&1; then
  echo "setup: creating target/pyenv with numpy" >&2
  mkdir -p target
  python3 -m venv target/pyenv
  target/pyenv/bin/pip install -q --disable-pip-version-check numpy
fi

SNAKEMAKE_VERSION=9.27.1
if ! target/pyenv/bin/python -c "import importlib.metadata as m, sys; sys.exit(m.version('snakemake') != '$SNAKEMAKE_VERSION')" >/dev/null 2>&1; then
  echo "setup: installing snakemake $SNAKEMAKE_VERSION into target/pyenv" >&2
  target/pyenv/bin/pip install -q --disable-pip-version-check "snakemake==$SNAKEMAKE_VERSION"
fi

# The async benchmark's server runs on uvloop (bench/slow_server.py says why).
if ! target/pyenv/bin/python -c 'import uvloop' >/dev/null 2>&1; then
  echo "setup: installing uvloop into target/pyenv" >&2
  target/pyenv/bin/pip install -q --disable-pip-version-check uvloop
fi
