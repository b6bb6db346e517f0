#!/usr/bin/env bash
# Overhead per item of the `process` model compared with `thread`.
#
# A workflow maps N trivial items (`map: |job, i| i`, summed by `reduce`) with
# `model: "thread", threads: 1`, with `model: "process", procs: 2`, and, to show the cost
# without the second worker's help, with `model: "process", procs: 1`. Starting the
# workers and loading the workflow costs the same whatever N is, so the per-item figures come
# from the difference between a large and a small run (the slope), which leaves only what each
# item costs: encoding, the pipe round trip, decoding, and folding.
#
#   bash bench/process_overhead.sh            # builds the release binary first
#   FLOWRUN=path/to/flowrun N=20000 REPS=5 bash bench/process_overhead.sh
#
# Prints µs/item for each, the process model's overhead per item beyond the thread model, and
# the ratio of the per-item costs. Target: overhead ≤ 20 µs per item.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
N=${N:-20000}
SMALL=${SMALL:-200}
REPS=${REPS:-5}
if [ -z "${FLOWRUN:-}" ]; then
    (cd "$here" && cargo build --release --quiet)
    FLOWRUN="${CARGO_TARGET_DIR:-$here/target}/release/flowrun"
fi
[ -x "$FLOWRUN" ] || { echo "no flowrun binary at $FLOWRUN" >&2; exit 2; }

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cat > "$dir/overhead.rhai" <<'RHAI'
let cfg = config(#{ n: 20000, model: "thread", procs: 2 });
rule("all", #{
    output: "sum.txt",
    model: cfg.model, threads: 1, procs: cfg.procs,
    items: range(0, cfg.n).collect(),
    map: |job, i| i,
    reduce: |acc, x| acc + x,
    finish: |job, s| write_text(job.output[0], `${s}`),
});
RHAI

# Best wall time in seconds of REPS runs.
best() {
    local model=$1 procs=$2 n=$3 best="" t0 t1 t
    for _ in $(seq "$REPS"); do
        t0=$(date +%s%N)
        (cd "$dir" && "$FLOWRUN" overhead.rhai -F -q -j2 \
            --config "model=$model" --config "procs=$procs" --config "n=$n" >/dev/null)
        t1=$(date +%s%N)
        t=$(( t1 - t0 ))
        if [ -z "$best" ] || [ "$t" -lt "$best" ]; then best=$t; fi
    done
    expected=$(( n * (n - 1) / 2 ))
    got=$(cat "$dir/sum.txt")
    [ "$got" = "$expected" ] || { echo "$model n=$n: sum $got, expected $expected" >&2; exit 1; }
    echo "$best"
}

tt_big=$(best thread 1 "$N");   tt_small=$(best thread 1 "$SMALL")
tp_big=$(best process 2 "$N");  tp_small=$(best process 2 "$SMALL")
t1_big=$(best process 1 "$N");  t1_small=$(best process 1 "$SMALL")

awk -v n="$N" -v s="$SMALL" -v reps="$REPS" \
    -v tb="$tt_big" -v ts="$tt_small" -v pb="$tp_big" -v ps="$tp_small" \
    -v ob="$t1_big" -v os="$t1_small" 'BEGIN {
    thread  = (tb - ts) / (n - s) / 1000;       # µs per item
    process = (pb - ps) / (n - s) / 1000;
    single  = (ob - os) / (n - s) / 1000;
    printf "%d items (per-item cost = slope between %d and %d items), best of %d runs\n", n, s, n, reps;
    printf "thread  (threads: 1): %8.1f ms total, %6.2f us/item\n", tb / 1e6, thread;
    printf "process (procs: 2):   %8.1f ms total, %6.2f us/item\n", pb / 1e6, process;
    printf "process (procs: 1):   %8.1f ms total, %6.2f us/item\n", ob / 1e6, single;
    printf "process overhead:     %6.2f us/item beyond the work, procs 2 vs thread (target <= 20)\n", process - thread;
    printf "                      %6.2f us/item with procs 1\n", single - thread;
    printf "ratio process/thread: %6.2f (procs 2), %.2f (procs 1)\n", process / thread, single / thread;
}'
