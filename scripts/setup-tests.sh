#!/usr/bin/env bash
# Installs what the test suite needs on top of the main job's tools (scripts/setup.sh),
# non-interactively, once:
#   - Make and python3 (tests/bench_smoke.rs runs the benchmark harnesses with them);
#   - zsh and fish (tests/completions.rs sources flowrun's completion scripts into them);
#   - a venv at target/pyenv with NumPy (tests/models.rs's oracle), Snakemake (the twin that
#     tests/snakemake_twin.rs compares reruns with) and uvloop (the async benchmark's server);
#   - R (`r-base-core`, without recommends) for tests/scripts.rs's R script rule;
#   - Chromium (`chromium`, without recommends), in which tests/report_browser.rs opens an HTML
#     report headless;
#   - uv in target/pyenv, which builds the software environments of tests/software.rs;
#   - SLURM from Debian's packages (munge, slurmctld, slurmd, slurm-client) for the single-node
#     test cluster that scripts/slurm.sh starts; installed without recommends and without
#     starting any service.
# Needs root (or passwordless sudo) for apt-get; does nothing that is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/common.sh
. scripts/common.sh

bash scripts/setup.sh

# --- Make, shells, Python ------------------------------------------------------------------------
extra=(make zsh fish)
command -v python3 >/dev/null || extra+=(python3)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || extra+=(python3-venv)
apt_install -- "${extra[@]}"
apt_install --no-install-recommends -- r-base-core
apt_install --no-install-recommends -- chromium

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

# Software environments (`software: #{ python: ... }`) are made with uv.
if [ ! -x target/pyenv/bin/uv ]; then
  echo "setup: installing uv into target/pyenv" >&2
  target/pyenv/bin/pip install -q --disable-pip-version-check uv
fi

# --- SLURM ---------------------------------------------------------------------------------------
# No systemd here: the packages' postinst scripts would try to start munge/slurmctld/slurmd.
# A policy-rc.d that exits 101 tells them not to; it is put in place for the install only and an
# existing one (Docker images ship one) is restored afterwards. Never purge these packages: that
# removes OpenMPI too (they share libmunge2/libpmix2).
slurm_pkgs=(munge slurmctld slurmd slurm-client)
missing=0
for pkg in "${slurm_pkgs[@]}"; do installed "$pkg" || missing=1; done
if [ "$missing" -eq 1 ]; then
  policy=/usr/sbin/policy-rc.d
  saved=$(mktemp)
  had_policy=0
  if [ -e "$policy" ]; then had_policy=1; cp -p "$policy" "$saved"; fi
  restore_policy() {
    if [ "$had_policy" -eq 1 ]; then
      as_root cp -p "$saved" "$policy"
    else
      as_root rm -f "$policy"
    fi
    rm -f "$saved"
  }
  trap restore_policy EXIT
  printf '#!/bin/sh\n# Temporary (scripts/setup-tests.sh): start no service while installing.\nexit 101\n' |
    as_root tee "$policy" >/dev/null
  as_root chmod 0755 "$policy"
  apt_install --no-install-recommends -- "${slurm_pkgs[@]}"
  restore_policy
  trap - EXIT
fi
