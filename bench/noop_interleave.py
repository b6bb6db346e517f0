#!/usr/bin/env python3
"""No-ops on trees that are already built, tools interleaved round by round.

`bench/run.py` times each tool's phases one after another; on a shared machine the load can
change between them. This script takes trees run.py left behind (its `--workdir`, e.g. the
Snakemake tree it built itself in `--batch` slices, which takes ~10 minutes to make) and times
the no-op of every variant once per round, in rotating order, reporting medians of wall and CPU
time (user + sys of the tool and its children) and the ratios to the first variant.

    python3 bench/noop_interleave.py --rounds 7 \\
        "flowrun=/tmp/b/fan-out_10k/flowrun:target/release/flowrun -q wf.rhai -j 2" \\
        "ninja=/tmp/b/fan-out_10k/ninja:ninja --quiet -j 2" \\
        "snakemake=/tmp/b/fan-out_10k/snakemake:target/pyenv/bin/snakemake -s Snakefile --quiet all --cores 2"

A variant is NAME=DIR:COMMAND; `--reps NAME=K` repeats a fast variant K times per round (each
repetition a sample). Every command must report nothing to do: the script checks that no
output file changed its modification time.
"""
import argparse
import os
import resource
import shlex
import statistics
import subprocess
import time


def snapshot(d):
    """Modification times of every file under d, outside the tools' own state."""
    seen = {}
    for root, dirs, files in os.walk(d):
        dirs[:] = [x for x in dirs if x not in (".flowrun", ".snakemake")]
        for f in files:
            if f.startswith(".ninja"):
                continue
            p = os.path.join(root, f)
            seen[p] = os.stat(p).st_mtime_ns
    return seen


def once(d, argv):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(argv, cwd=d, check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    took = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return took, cpu


def fmt(t):
    return f"{t * 1000:.1f} ms" if t < 1 else f"{t:.2f} s"


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("variants", nargs="+", metavar="NAME=DIR:COMMAND")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--reps", action="append", default=[], metavar="NAME=K")
    args = p.parse_args()
    variants = []
    for v in args.variants:
        name, rest = v.split("=", 1)
        d, cmd = rest.split(":", 1)
        variants.append((name, d, shlex.split(cmd)))
    reps = {k: int(n) for k, n in (r.split("=", 1) for r in args.reps)}
    before = {name: snapshot(d) for name, d, _ in variants}
    for name, d, argv in variants:  # warm the page cache and check every tree is up to date
        once(d, argv)
    samples = {name: [] for name, _, _ in variants}
    for rnd in range(args.rounds):
        k = rnd % len(variants)
        for name, d, argv in variants[k:] + variants[:k]:
            for _ in range(reps.get(name, 1)):
                samples[name].append(once(d, argv))
    for name, d, _ in variants:
        if snapshot(d) != before[name]:
            raise SystemExit(f"{name}: files changed in {d}: not a no-op")
    load = os.getloadavg()
    first = variants[0][0]
    wall0 = statistics.median(w for w, _ in samples[first])
    cpu0 = statistics.median(c for _, c in samples[first])
    print(f"{args.rounds} rounds, load average now {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}\n")
    print(f"| variant | n | wall (median) | CPU (median) | {first}/this, wall | {first}/this, CPU |")
    print("|---|---|---|---|---|---|")
    for name, _, _ in variants:
        wall = statistics.median(w for w, _ in samples[name])
        cpu = statistics.median(c for _, c in samples[name])
        print(f"| {name} | {len(samples[name])} | {fmt(wall)} | {fmt(cpu)} | "
              f"{wall0 / wall:.3g} | {cpu0 / cpu:.3g} |")


if __name__ == "__main__":
    main()
