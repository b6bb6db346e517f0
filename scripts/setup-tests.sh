#!/usr/bin/env bash
# Installs what the test suite needs on top of the main job's tools (scripts/setup.sh),
# non-interactively, once:
#   - Make and python3 (tests/bench_smoke.rs runs the benchmark harnesses with them);
#   - a venv at target/pyenv with NumPy (tests/models.rs's oracle), Snakemake (the twin that
#     tests/snakemake_twin.rs compares reruns with) and uvloop (the async benchmark's server).
# Needs root (or passwordless sudo) for apt-get; does nothing that is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/common.sh
. scripts/common.sh

bash scripts/setup.sh

# --- Make, Python --------------------------------------------------------------------------------
extra=(make)
command -v python3 >/dev/null || extra+=(python3)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || extra+=(python3-venv)
apt_install -- "${extra[@]}"

if ! target/pyenv/bin/python -c 'import numpy' >/dev/null 2>&1; then
  echo "setup: creating target/pyenv with numpy" >&2
  mkdir -p target
  python3 -m venv target/pyenv
  target/pyenv/bin/pip install -q --disable-pip-version-check numpy
fi

# bench/run.py pins the same version.
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

