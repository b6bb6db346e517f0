# shellcheck shell=bash
# Helpers shared by scripts/setup.sh and scripts/setup-tests.sh (sourced, not run).

# Runs a command as root: directly when we are root, else through sudo.
as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# True when the Debian package is installed.
installed() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'ok installed'
}

# apt_install [APT-OPTION...] -- PACKAGE...: installs the packages that are not installed yet,
# non-interactively; does nothing (not even `apt-get update`) when all of them are.
apt_install() {
  local opts=() need=()
  while [ $# -gt 0 ] && [ "$1" != -- ]; do opts+=("$1"); shift; done
  [ $# -gt 0 ] && shift
  local pkg
  for pkg in "$@"; do
    installed "$pkg" || need+=("$pkg")
  done
  [ ${#need[@]} -gt 0 ] || return 0
  echo "setup: installing ${need[*]}" >&2
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${opts[@]}" "${need[@]}" >/dev/null
}
