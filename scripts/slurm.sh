#!/usr/bin/env bash
# A real single-node SLURM cluster on localhost for the tests: munged, slurmctld and slurmd from
# Debian's packages (scripts/setup-tests.sh installs them), no systemd, no slurmdbd.
#
#   scripts/slurm.sh start  [DIR]   start a cluster whose files all live in DIR; waits until the
#                                   node is idle; prints `export SLURM_CONF=DIR/slurm.conf`
#   scripts/slurm.sh stop   [DIR]   cancel every job, stop the daemons by the pids they wrote,
#                                   wait until they are gone
#   scripts/slurm.sh status [DIR]   exit 0 when all three daemons run, 3 when none does, 1 else
#   scripts/slurm.sh env    [DIR]   print `export SLURM_CONF=DIR/slurm.conf`
#
# DIR defaults to $SLURM_TEST_DIR, else ${CARGO_TARGET_DIR:-target}/slurm. Each DIR is its own
# cluster: its own munge key and socket, slurm.conf, state, spool, logs and pid files, and its
# own two TCP ports (the first free pair from 16817/16818 up, chosen under a machine-wide lock;
# SLURM_TEST_PORT=N forces N and N+1). So several clusters can run at once, e.g. one per test
# binary in a temporary directory. Clients find the cluster through SLURM_CONF.
#
# Needs root: slurmd runs jobs as their users and the daemons start as root (munged as munge).
# Environment: SLURM_START_TIMEOUT (s, default 30), SLURM_STOP_TIMEOUT (s per step, default 20).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
start_timeout=${SLURM_START_TIMEOUT:-30}
stop_timeout=${SLURM_STOP_TIMEOUT:-20}
port_lock=/run/lock/flowrun-slurm-ports.lock

die() { echo "slurm.sh: $*" >&2; exit 1; }
say() { echo "slurm.sh: $*" >&2; }
now() { echo "${EPOCHREALTIME/,/.}"; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
  exit 2
}

[ $# -ge 1 ] || usage
cmd=$1
dir=${2:-${SLURM_TEST_DIR:-${CARGO_TARGET_DIR:-$repo/target}/slurm}}
case "$cmd" in start | stop | status | env) ;; *) usage ;; esac
[ "$cmd" != start ] || mkdir -p "$dir"
if [ -d "$dir" ]; then dir=$(cd "$dir" && pwd -P); else dir=$(realpath -m "$dir"); fi
conf=$dir/slurm.conf
sock=$dir/munge/munge.socket
export SLURM_CONF=$conf

# --- pids ----------------------------------------------------------------------------------------
# The daemons write their pid files and remove them when they exit; `start` copies the pids into
# DIR/pids so that `stop` still knows them. A pid only counts when the process is alive (not a
# zombie), has the expected name, and its command line names this DIR's files (pids get reused).
pid_of() { # NAME -> pid from DIR/pids, or nothing
  if [ -f "$dir/pids" ]; then awk -v n="$1" '$1 == n { print $2 }' "$dir/pids"; fi
}
ours() { # NAME PID -> true when PID is that daemon of this cluster, alive
  local name=$1 pid=$2 state arg=$conf
  [ -n "$pid" ] && [ -r "/proc/$pid/stat" ] || return 1
  state=$(awk '{ print $3 }' "/proc/$pid/stat" 2>/dev/null) || return 1
  [ "$name" != munged ] || arg=--socket=$sock
  [ "$state" != Z ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$name" ] &&
    tr '\0' '\n' 2>/dev/null <"/proc/$pid/cmdline" | grep -qxF -- "$arg"
}
alive() { ours "$1" "$(pid_of "$1")"; }
daemons=(munged slurmctld slurmd)

# --- status / env --------------------------------------------------------------------------------
status() {
  local n=0 d
  for d in "${daemons[@]}"; do
    if alive "$d"; then
      n=$((n + 1))
      echo "$d: running (pid $(pid_of "$d"))"
    else
      echo "$d: not running"
    fi
  done
  if alive slurmctld; then sinfo -N -o '%N %T %C %m' 2>&1 || true; fi
  [ "$n" -eq 3 ] && return 0
  [ "$n" -eq 0 ] && return 3
  return 1
}

# --- stop ----------------------------------------------------------------------------------------
wait_gone() { # NAME PID: waits up to stop_timeout for it to exit; KILLs it after that
  local name=$1 pid=$2 t0
  t0=$(now)
  while ours "$name" "$pid"; do
    if awk -v a="$t0" -v b="$(now)" -v t="$stop_timeout" 'BEGIN { exit !(b - a > t) }'; then
      say "$name (pid $pid) did not exit within ${stop_timeout}s of SIGTERM; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.2
      return 1
    fi
    sleep 0.05
  done
}

# Pids of the processes this cluster started that are still alive apart from its daemons:
# slurmstepd, slurmscriptd and job processes, recognised by this cluster's SLURM_CONF in their
# environment (job processes also have SLURM_JOB_ID, which the caller of this script has not).
# Builtins only: this looks at every process.
leftovers() {
  local p pid line comm e mine job
  local -A skip=([$$]=1 [$BASHPID]=1)
  pid=$$
  while [ "$pid" -gt 1 ] && read -r line 2>/dev/null <"/proc/$pid/stat"; do
    line=${line##*) }
    read -r _ pid _ <<<"$line"
    skip[$pid]=1
  done
  for p in /proc/[0-9]*; do
    pid=${p#/proc/}
    [ -z "${skip[$pid]:-}" ] || continue
    read -r line 2>/dev/null <"$p/stat" || continue
    line=${line##*) }
    [ "${line%% *}" != Z ] || continue
    mine=0 job=0
    while IFS= read -r -d '' e; do
      case "$e" in
        "SLURM_CONF=$conf") mine=1 ;;
        SLURM_JOB_ID=*) job=1 ;;
      esac
    done 2>/dev/null <"$p/environ" || true
    [ "$mine" -eq 1 ] || continue
    read -r comm 2>/dev/null <"$p/comm" || continue
    case "$comm" in slurmstepd | slurmscriptd) ;; *) [ "$job" -eq 1 ] || continue ;; esac
    echo "$pid"
  done
}
describe() { # PID...: " pid(comm)" each
  local pid comm out=""
  for pid in $1; do
    comm='?'
    read -r comm 2>/dev/null <"/proc/$pid/comm" || true
    out+=" $pid($comm)"
  done
  echo "$out"
}

stop() {
  local t0 ok=0 ids d pid
  t0=$(now)
  if alive slurmctld; then
    # Cancel jobs first: killing slurmd leaves running job steps behind.
    mapfile -t ids < <(squeue -h -o %A 2>/dev/null | sort -u)
    if [ ${#ids[@]} -gt 0 ]; then
      scancel "${ids[@]}" 2>/dev/null || true
      while [ -n "$(squeue -h -t PD,R,CG,S,CF,RQ,SO,ST -o %A 2>/dev/null)" ]; do
        if awk -v a="$t0" -v b="$(now)" -v t="$stop_timeout" 'BEGIN { exit !(b - a > t) }'; then
          say "jobs still not finished ${stop_timeout}s after scancel:"
          squeue -t all >&2 || true
          ok=1
          break
        fi
        sleep 0.1
      done
    fi
  fi
  # slurmd and slurmctld together (each takes a moment to exit), then munged, which they use.
  local -A pids=()
  for d in slurmd slurmctld; do
    pid=$(pid_of "$d")
    if ours "$d" "$pid"; then
      kill -TERM "$pid"
      pids[$d]=$pid
    fi
  done
  for d in "${!pids[@]}"; do wait_gone "$d" "${pids[$d]}" || ok=1; done
  # What outlived the daemons (after a crash, or jobs that would not end) is killed.
  local left
  left=$(leftovers)
  if [ -n "$left" ]; then
    say "killing what is left of this cluster:$(describe "$left")"
    # shellcheck disable=SC2086 # a list of pids
    kill -KILL $left 2>/dev/null || true
    sleep 0.2
  fi
  pid=$(pid_of munged)
  if ours munged "$pid"; then
    kill -TERM "$pid"
    wait_gone munged "$pid" || ok=1
  fi
  left=$(leftovers)
  for d in "${daemons[@]}"; do
    ! alive "$d" || left+=" $(pid_of "$d")"
  done
  if [ -n "$left" ]; then
    say "still running after stop:$(describe "$left")"
    ok=1
  fi
  rm -f "$dir/pids"
  say "stopped in $(since "$t0") s ($dir)"
  return "$ok"
}

# --- start ---------------------------------------------------------------------------------------
show_logs() {
  local f
  for f in "$dir/munge/munged.log" "$dir/log/slurmctld.log" "$dir/log/slurmd.log"; do
    [ -f "$f" ] || continue
    echo "--- last lines of $f" >&2
    tail -n 15 "$f" >&2
  done
}

fail_start() {
  say "$*"
  show_logs
  stop >/dev/null 2>&1 || true
  exit 1
}

port_free() { [ -z "$(ss -Htln "sport = :$1" 2>/dev/null)" ]; }

choose_ports() {
  if [ -n "${SLURM_TEST_PORT:-}" ]; then
    ctld_port=$SLURM_TEST_PORT
    if ! { port_free "$ctld_port" && port_free $((ctld_port + 1)); }; then
      die "SLURM_TEST_PORT=$ctld_port: port $ctld_port or $((ctld_port + 1)) is in use"
    fi
  else
    ctld_port=16817
    until port_free "$ctld_port" && port_free $((ctld_port + 1)); do
      ctld_port=$((ctld_port + 2))
      [ "$ctld_port" -lt 17817 ] || die "no free port pair in 16817..17816"
    done
  fi
  slurmd_port=$((ctld_port + 1))
}

# The short hostname must resolve (slurmctld and slurmd find their own names in slurm.conf).
ensure_hostname() {
  local host=$1
  getent hosts "$host" >/dev/null && return 0
  say "adding '127.0.0.1 $host' to /etc/hosts"
  printf '127.0.0.1\t%s\n' "$host" >>/etc/hosts
}

write_conf() {
  local host=$1 node cpus sockets cores threads mem defmem
  # e.g. NodeName=vm CPUs=2 Boards=1 SocketsPerBoard=1 CoresPerSocket=2 ThreadsPerCore=1 RealMemory=24105
  node=$(slurmd -C | head -n 1)
  field() { sed -n "s/.*[[:space:]]$1=\([0-9]*\).*/\1/p" <<<"$node"; }
  cpus=$(field CPUs)
  sockets=$(field SocketsPerBoard)
  cores=$(field CoresPerSocket)
  threads=$(field ThreadsPerCore)
  mem=$(field RealMemory)
  if [ -z "$cpus" ] || [ -z "$sockets" ] || [ -z "$cores" ] || [ -z "$threads" ] || [ -z "$mem" ]; then
    die "cannot read the node's hardware from 'slurmd -C': $node"
  fi
  defmem=$((mem / cpus / 2))
  [ "$defmem" -le 1024 ] || defmem=1024
  cat >"$conf" <<EOF
# Written by scripts/slurm.sh start: a single-node test cluster; every file is under $dir.
ClusterName=flowrun-test
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
CommunicationParameters=NoInAddrAny
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$sock
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# No cgroups and no slurmdbd here.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/linux
# The only --mem enforcement without cgroups: usage polled every second, over the limit killed.
JobAcctGatherParams=OverMemoryKill
JobAcctGatherFrequency=task=1
AccountingStorageType=accounting_storage/none
# Cores and memory are consumable; DefMemPerCPU keeps a job without --mem from taking the node.
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=$defmem
# Schedule a submitted job at once, not on the next 3 s tick.
SchedulerParameters=batch_sched_delay=0
# Finished jobs stay visible to 'squeue -t all' for 10 minutes.
MinJobAge=600
# Seconds between SIGTERM and SIGKILL when a job is cancelled or times out.
KillWait=5
ReturnToService=2
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus Sockets=$sockets CoresPerSocket=$cores ThreadsPerCore=$threads RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
}

start() {
  local t0 host d missing=()
  t0=$(now)
  [ "$(id -u)" -eq 0 ] || die "must run as root (slurmd runs jobs as their users)"
  for d in munged munge unmunge slurmctld slurmd sinfo sbatch squeue scancel ss; do
    command -v "$d" >/dev/null || missing+=("$d")
  done
  [ ${#missing[@]} -eq 0 ] || die "missing ${missing[*]}: run 'bash scripts/setup-tests.sh' first"
  if status >/dev/null 2>&1; then
    say "already running ($dir)"
    echo "export SLURM_CONF=$conf"
    return 0
  fi
  stop >/dev/null 2>&1 || true # what is left of an earlier instance in this DIR

  host=$(hostname -s)
  # UNIX socket paths have at most 107 bytes: slurmstepd's are DIR/spool/<node>_<job>.<step>.
  if [ $((${#dir} + ${#host} + 29)) -gt 107 ]; then
    die "the directory path is too long for UNIX sockets (${#dir} bytes): $dir"
  fi
  ensure_hostname "$host"
  # munged checks the socket directory is reachable by everyone, the key readable only by it.
  chmod 0755 "$dir"
  mkdir -p "$dir/munge" "$dir/state" "$dir/spool" "$dir/log"
  rm -rf "${dir:?}/state/"* "${dir:?}/spool/"*
  rm -f "$dir/log/"*.log "$dir/munge/munged.log"
  if [ ! -s "$dir/munge/munge.key" ]; then
    head -c 1024 /dev/urandom >"$dir/munge/munge.key"
  fi
  chown -R munge:munge "$dir/munge"
  chmod 0755 "$dir/munge"
  chmod 0400 "$dir/munge/munge.key"
  if ! runuser -u munge -- test -w "$dir/munge"; then
    namei -l "$dir" >&2 || true
    die "user munge cannot reach $dir/munge: every directory above it must be searchable by others (o+x); a mktemp -d directory is 0700"
  fi

  # Ports are chosen and bound under one machine-wide lock, so concurrent starts differ. The
  # daemons must not inherit the lock's descriptor (they would hold the lock for ever).
  local lockfd
  exec {lockfd}>"$port_lock"
  flock -w "$start_timeout" "$lockfd" || die "waited ${start_timeout}s for $port_lock"
  choose_ports
  write_conf "$host"

  runuser -u munge -- /usr/sbin/munged --force --socket="$sock" \
    --key-file="$dir/munge/munge.key" --pid-file="$dir/munge/munged.pid" \
    --log-file="$dir/munge/munged.log" --seed-file="$dir/munge/munged.seed" {lockfd}>&- ||
    fail_start "munged did not start"
  record munged "$dir/munge/munged.pid"
  munge -n -S "$sock" | unmunge -S "$sock" >/dev/null 2>&1 || fail_start "munge does not answer"

  slurmctld -c -f "$conf" {lockfd}>&- || fail_start "slurmctld did not start"
  record slurmctld "$dir/slurmctld.pid"
  slurmd -f "$conf" {lockfd}>&- || fail_start "slurmd did not start"
  record slurmd "$dir/slurmd.pid"

  local state=""
  while [ "$state" != idle ]; do
    if awk -v a="$t0" -v b="$(now)" -v t="$start_timeout" 'BEGIN { exit !(b - a > t) }'; then
      fail_start "the node is not idle after ${start_timeout}s (sinfo: '${state:-no answer}')"
    fi
    for d in "${daemons[@]}"; do alive "$d" || fail_start "$d exited during start"; done
    sleep 0.05
    state=$(sinfo -h -N -o %T 2>/dev/null || true)
  done
  exec {lockfd}>&-
  echo "export SLURM_CONF=$conf" >"$dir/env"
  say "started in $(since "$t0") s ($dir, ports $ctld_port/$slurmd_port)"
  echo "export SLURM_CONF=$conf"
}

record() { # NAME PIDFILE: copies the pid the daemon wrote into DIR/pids
  local name=$1 file=$2 pid="" _
  for _ in $(seq 100); do
    [ -s "$file" ] && pid=$(tr -dc 0-9 2>/dev/null <"$file") && [ -n "$pid" ] && break
    sleep 0.02
  done
  [ -n "$pid" ] || fail_start "$name wrote no pid file ($file)"
  echo "$name $pid" >>"$dir/pids"
  ours "$name" "$pid" || fail_start "$name (pid $pid) is not running"
}

case "$cmd" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  env) echo "export SLURM_CONF=$conf" ;;
esac
