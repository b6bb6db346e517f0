#!/usr/bin/env bash
# Checks scripts/slurm.sh end to end (about 15 s): two clusters started at once in temporary
# directories, then on the first one a job's state and output through `squeue`, `scancel`, an array
# job, `--mem` enforcement and refusal, a failing job; then both are stopped with jobs still
# running or pending, and nothing of them may be left running. Needs root and the packages of
# scripts/setup-tests.sh. Prints what it checks; exits non-zero on the first failure.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
slurm=$here/slurm.sh

fail() { echo "slurm-check: FAILED: $*" >&2; exit 1; }
ok() { echo "slurm-check: ok: $*" >&2; }
now() { echo "${EPOCHREALTIME/,/.}"; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }

base=$(mktemp -d /tmp/flowrun-slurm-check.XXXXXX)
chmod 0755 "$base" # munged (user munge) must reach its socket below it
one=$base/one
two=$base/two
cleanup() {
  local rc=$?
  "$slurm" stop "$one" >/dev/null 2>&1 || true
  "$slurm" stop "$two" >/dev/null 2>&1 || true
  if [ "$rc" -eq 0 ]; then rm -rf "$base"; else echo "slurm-check: files kept in $base" >&2; fi
}
trap cleanup EXIT

# The state of job $1 as `squeue -t all` reports it (empty while unknown).
state() { squeue -h -t all -j "$1" -o %T 2>/dev/null || true; }
# Waits up to $2 seconds until job $1 is no longer PENDING/RUNNING/COMPLETING; prints its state.
wait_done() {
  local id=$1 limit=$2 t0 s
  t0=$(now)
  while :; do
    s=$(state "$id")
    case "$s" in PENDING | RUNNING | COMPLETING | CONFIGURING | "") ;; *) echo "$s"; return 0 ;; esac
    awk -v a="$t0" -v b="$(now)" -v t="$limit" 'BEGIN { exit !(b - a > t) }' &&
      fail "job $id still '$s' after ${limit}s"
    sleep 0.1
  done
}
# True when process $1 is gone (a zombie waiting for init to reap it counts as gone).
gone() { [ ! -d "/proc/$1" ] || [ "$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null)" = Z ]; }
field() { scontrol show job "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }

# --- two clusters at once ------------------------------------------------------------------------
t0=$(now)
"$slurm" start "$one" >/dev/null &
p1=$!
"$slurm" start "$two" >/dev/null &
p2=$!
wait "$p1" || fail "start of $one"
wait "$p2" || fail "start of $two"
ok "two clusters started at once in $(since "$t0") s"
port() { sed -n "s/^$1=//p" "$2/slurm.conf"; }
[ "$(port SlurmctldPort "$one")" != "$(port SlurmctldPort "$two")" ] || fail "both clusters got one port"

export SLURM_CONF=$two/slurm.conf
cd "$two"
other=$(sbatch --parsable -J check-two -o "$two/%j.out" --wrap 'echo two')
[ "$(wait_done "$other" 20)" = COMPLETED ] || fail "job on the second cluster"
ok "the second cluster ran job $other"

export SLURM_CONF=$one/slurm.conf
cd "$one"
[ -z "$(squeue -h -t all --name check-two)" ] || fail "the first cluster sees the second's job"

# --- one job: state, output, comment -------------------------------------------------------------
t0=$(now)
id=$(sbatch --parsable -J check-run --comment run-42 -c 2 -o "$one/%j.out" --wrap 'nproc; sleep 1')
[[ "$id" =~ ^[0-9]+$ ]] || fail "sbatch --parsable printed '$id'"
line=$(squeue -h -t all --name check-run -o '%i|%T|%k')
[[ "$line" =~ ^$id\|(PENDING|RUNNING)\|run-42$ ]] || fail "squeue line '$line'"
[ "$(wait_done "$id" 20)" = COMPLETED ] || fail "job $id did not complete"
[ "$(cat "$one/$id.out")" = 2 ] || fail "job $id saw $(cat "$one/$id.out") CPUs, not 2"
ok "job $id: '$line', COMPLETED, nproc 2, in $(since "$t0") s"

# --- scancel -------------------------------------------------------------------------------------
id=$(sbatch --parsable -J check-cancel -o "$one/%j.out" --wrap 'echo $$ > pid; exec sleep 600')
for _ in $(seq 100); do [ -s pid ] && [ "$(state "$id")" = RUNNING ] && break; sleep 0.1; done
[ -s pid ] || fail "job $id never ran"
job_pid=$(cat pid)
t0=$(now)
scancel "$id"
[ "$(wait_done "$id" 20)" = CANCELLED ] || fail "job $id not CANCELLED"
for _ in $(seq 50); do gone "$job_pid" && break; sleep 0.1; done
gone "$job_pid" || fail "job $id's process $job_pid still runs after scancel"
ok "scancel: job $id CANCELLED ($(field "$id" ExitCode)) and its process gone in $(since "$t0") s"

# --- array ---------------------------------------------------------------------------------------
t0=$(now)
# shellcheck disable=SC2016 # the job expands it
id=$(sbatch --parsable -J check-array -a 1-3 -o "$one/%A_%a.out" --wrap 'echo task $SLURM_ARRAY_TASK_ID')
for _ in $(seq 200); do
  [ "$(squeue -h -t all --name check-array -o %T | grep -c COMPLETED)" -eq 3 ] && break
  sleep 0.1
done
states=$(squeue -h -t all --name check-array -o '%i|%T' | sort | tr '\n' ' ')
[ "$states" = "${id}_1|COMPLETED ${id}_2|COMPLETED ${id}_3|COMPLETED " ] || fail "array: $states"
for a in 1 2 3; do [ "$(cat "$one/${id}_$a.out")" = "task $a" ] || fail "array task $a output"; done
ok "array $id: $states in $(since "$t0") s"

# --- memory --------------------------------------------------------------------------------------
t0=$(now)
# shellcheck disable=SC2016 # perl's $x
id=$(sbatch --parsable -J check-mem --mem=50M -o "$one/%j.out" \
  --wrap 'perl -e "\$x = q(a) x (300 * 1024 * 1024); sleep 30"')
s=$(wait_done "$id" 20)
code=$(field "$id" ExitCode)
[ "$s|$code" = "FAILED|0:9" ] || fail "over --mem: $s, ExitCode $code"
ok "over --mem: FAILED, ExitCode 0:9, reason $(field "$id" Reason), after $(since "$t0") s"
if out=$(sbatch --parsable -J check-bigmem --mem=100000000 --wrap true 2>&1); then
  fail "an impossible --mem was accepted: $out"
fi
ok "an impossible --mem is refused: ${out##*error: }"

# --- a failing job -------------------------------------------------------------------------------
id=$(sbatch --parsable -J check-fail -o "$one/%j.out" --wrap 'exit 3')
s=$(wait_done "$id" 20)
code=$(field "$id" ExitCode)
[ "$s|$code" = "FAILED|3:0" ] || fail "exit 3: $s, ExitCode $code"
ok "exit 3: FAILED, ExitCode 3:0"

# --- stop with work in flight --------------------------------------------------------------------
sbatch --parsable -J check-left -a 1-4 -o /dev/null --wrap 'exec sleep 600' >/dev/null
for _ in $(seq 100); do [ "$(squeue -h -t R --name check-left | wc -l)" -ge 2 ] && break; sleep 0.1; done
running=$(squeue -h -t R --name check-left | wc -l)
[ "$running" -ge 1 ] || fail "no job of check-left runs"
daemon_pids=$(awk '{ print $2 }' "$one/pids" "$two/pids" | tr '\n' ' ')
t0=$(now)
"$slurm" stop "$one"
"$slurm" stop "$two"
ok "stopped both clusters ($running jobs running, others pending) in $(since "$t0") s"

# Nothing may be left: no daemon (a zombie waiting for init to reap it is not running), no
# slurmstepd, no job process (sleep 600) of either cluster.
left=""
for p in /proc/[0-9]*; do
  pid=${p#/proc/}
  ! gone "$pid" || continue
  if [[ " $daemon_pids " == *" $pid "* ]]; then left+=" $pid($(cat "$p/comm"))"; continue; fi
  tr '\0' '\n' 2>/dev/null <"$p/environ" | grep -qE "^SLURM_CONF=$base/" &&
    [ "$pid" != $$ ] && left+=" $pid($(cat "$p/comm" 2>/dev/null))"
done
[ -z "$left" ] || fail "left running:$left"
ok "no daemon, job step or job of either cluster is left"
echo "slurm-check: all checks passed" >&2
