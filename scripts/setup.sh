#!/usr/bin/env bash
# Installs the system packages flowrun's tests and examples use, once, non-interactively.
# Needs root (or passwordless sudo) on Debian/Ubuntu; does nothing when all is present.
set -euo pipefail
need=()
command -v bash >/dev/null || need+=(bash)
if [ ${#need[@]} -gt 0 ]; then
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${need[@]}"
fi
