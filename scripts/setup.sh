#!/usr/bin/env bash
# Installs the system packages flowrun's tests and examples use, once, non-interactively.
# Needs root (or passwordless sudo) on Debian/Ubuntu; does nothing when all is present.
#
# - OpenMPI (`libopenmpi-dev`, `openmpi-bin`) for the `mpi` execution model, and libclang
#   (`libclang-dev`, `clang`) that the `mpi` crate's bindings generator needs at build time.
set -euo pipefail
need=()
command -v bash >/dev/null || need+=(bash)
for pkg in libopenmpi-dev openmpi-bin libclang-dev clang; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  echo "setup: installing ${need[*]}" >&2
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${need[@]}"
fi
