#!/bin/sh
# `flowrun --version` and the load of a 200-rule workflow (issue 5 targets: ≤ 5 ms; ≤ 50 ms),
# with hyperfine (apt-get install hyperfine). Run from the repository root after
# `cargo build --release`; FLOWRUN overrides the binary. Prints hyperfine's table and medians.
set -eu
FLOWRUN=${FLOWRUN:-${CARGO_TARGET_DIR:-$PWD/target}/release/flowrun}
DIR=${DIR:-${CARGO_TARGET_DIR:-$PWD/target}/bench-startup}
rm -rf "$DIR" && mkdir -p "$DIR/src" && cd "$DIR"
echo 0 > src/0.txt
# 200 rules: a chain src/0.txt -> c/1.txt -> ... -> c/200.txt, one rule per step, written out.
{
  echo 'rule("all", #{ input: "c/200.txt" });'
  echo 'rule("c1", #{ input: "src/0.txt", output: "c/1.txt", shell: "cp {input} {output}" });'
  k=2
  while [ $k -le 200 ]; do
    echo "rule(\"c$k\", #{ input: \"c/$((k-1)).txt\", output: \"c/$k.txt\", shell: \"cp {input} {output}\" });"
    k=$((k+1))
  done
} > wf.rhai
hyperfine -N --warmup 5 --runs ${RUNS:-50} --export-json startup.json --export-markdown startup.md \
  -n "flowrun --version" "$FLOWRUN --version" \
  -n "flowrun --list (load 200 rules)" "$FLOWRUN --list wf.rhai" \
  -n "flowrun -n (load + plan 200 rules)" "$FLOWRUN -q -n wf.rhai" >/dev/null
cat startup.md
python3 - <<'PY'
import json, statistics
for r in json.load(open("startup.json"))["results"]:
    t = r["times"]
    print("%s: median %.2f ms, min %.2f ms" % (r["command"], statistics.median(t) * 1000, min(t) * 1000))
PY
