#!/usr/bin/env python3
"""What a job cost, flowrun's `benchmark` file against Snakemake's `benchmark:`, on the same jobs.

Each scenario is one Python job (`job.py`, written next to the workflows) that allocates and
touches memory, spins the CPU or sleeps, then writes the truth as the kernel saw it from inside
the job: its peak resident set (`VmHWM` of /proc/self/status) and its CPU time
(`os.times()`). Both tools run the same command with a `benchmark` file; the table puts their
`s`, `max_rss` and `cpu_time` beside the truth. flowrun reaps the job with `wait4` and reads
exact figures; Snakemake samples the process tree with psutil every 0.5 s (then every 30 s).

    python3 bench/cost.py                  # every scenario, 3 repetitions (a few minutes)
    python3 bench/cost.py --quick          # one short scenario once (the smoke test's)
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))

# The job: a list of steps, each `alloc:MiB` (allocate and touch, kept), `free`, `sleep:s` or
# `spin:s` (CPU seconds); at the end the truth goes to the output file.
JOB = r'''
import os, re, sys, time
out, steps = sys.argv[1], sys.argv[2:]
held = []
for step in steps:
    what, _, arg = step.partition(":")
    if what == "alloc":
        b = bytearray(int(arg) * 1024 * 1024)
        b[::4096] = b"x" * len(b[::4096])
        held.append(b)
    elif what == "free":
        held.clear()
    elif what == "sleep":
        time.sleep(float(arg))
    elif what == "spin":
        t = time.process_time()
        while time.process_time() - t < float(arg):
            pass
hwm = int(re.search(r"VmHWM:\s+(\d+)", open("/proc/self/status").read()).group(1))
t = os.times()
open(out, "w").write(f"{hwm / 1024:.2f}\t{t.user + t.system:.2f}\n")
'''

SCENARIOS = {
    "short: 200 MiB, exits at once": ["alloc:200"],
    "steady: 500 MiB held 3 s": ["alloc:500", "sleep:3"],
    "spike: 1.5 GiB for 0.2 s within 3 s": ["sleep:1.4", "alloc:1536", "sleep:0.2", "free",
                                             "sleep:1.4"],
    "cpu: 2 s of CPU": ["spin:2"],
}
QUICK = ["short: 200 MiB, exits at once"]


def flowrun_files(d, steps):
    args = " ".join(steps)
    with open(os.path.join(d, "wf.rhai"), "w") as f:
        f.write(f'rule("job", #{{ output: "truth.tsv", benchmark: "bench.tsv",\n'
                f'    shell: "python3 job.py {{output}} {args}" }});\n')


def snakemake_files(d, steps):
    args = " ".join(steps)
    with open(os.path.join(d, "Snakefile"), "w") as f:
        f.write('rule job:\n    output: "truth.tsv"\n    benchmark: "bench.tsv"\n'
                f'    shell: "python3 job.py {{output}} {args}"\n')


def read_bench(path):
    with open(path) as f:
        header, values = f.read().splitlines()[:2]
    return dict(zip(header.split("\t"), values.split("\t")))


def run_once(tool, exe, steps, workdir):
    d = tempfile.mkdtemp(prefix=f"{tool}-", dir=workdir)
    with open(os.path.join(d, "job.py"), "w") as f:
        f.write(JOB)
    if tool == "flowrun":
        flowrun_files(d, steps)
        cmd = [exe, "wf.rhai", "-j1"]
    else:
        snakemake_files(d, steps)
        cmd = [exe, "-c1", "--quiet"]
    subprocess.run(cmd, cwd=d, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                   timeout=300)
    with open(os.path.join(d, "truth.tsv")) as f:
        rss, cpu = f.read().split()
    got = read_bench(os.path.join(d, "bench.tsv"))
    shutil.rmtree(d)
    return {"true_rss": float(rss), "true_cpu": float(cpu), "s": got["s"],
            "max_rss": got["max_rss"], "cpu_time": got["cpu_time"]}


def error(value, truth):
    try:
        v = float(value)
    except ValueError:
        return value
    return f"{v:.1f} ({100 * (v - truth) / truth:+.0f}%)" if truth else f"{v:.2f}"


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="one short scenario, once")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--flowrun", default=None, help="the flowrun binary (default: release, "
                   "else debug build under target/)")
    p.add_argument("--snakemake", default=os.path.join(TARGET, "pyenv", "bin", "snakemake"))
    p.add_argument("--workdir", default=os.path.join(TARGET, "bench", "cost"))
    p.add_argument("--out", default=None, help="also write the table to this file")
    args = p.parse_args()
    flowrun = args.flowrun or next(
        (x for x in (os.path.join(TARGET, b, "flowrun") for b in ("release", "debug"))
         if os.path.exists(x)), None)
    if flowrun is None:
        sys.exit("no flowrun binary: run `cargo build --release` first")
    tools = [("flowrun", flowrun)]
    if os.path.exists(args.snakemake):
        tools.append(("snakemake", args.snakemake))
    else:
        print(f"no Snakemake at {args.snakemake}: flowrun only", file=sys.stderr)
    os.makedirs(args.workdir, exist_ok=True)
    names = QUICK if args.quick else list(SCENARIOS)
    reps = 1 if args.quick else args.reps
    lines = ["| scenario | tool | run | s | max_rss MiB (vs truth) | truth MiB | "
             "cpu_time s (vs truth) | truth s |",
             "|---|---|---|---|---|---|---|---|"]
    for name in names:
        for tool, exe in tools:
            for rep in range(reps):
                r = run_once(tool, exe, SCENARIOS[name], args.workdir)
                lines.append(f"| {name} | {tool} | {rep + 1} | {r['s']} | "
                             f"{error(r['max_rss'], r['true_rss'])} | {r['true_rss']:.1f} | "
                             f"{error(r['cpu_time'], r['true_cpu'])} | {r['true_cpu']:.2f} |")
                print(lines[-1], flush=True)
    table = "\n".join(lines) + "\n"
    if args.out:
        with open(args.out, "w") as f:
            f.write(table)


if __name__ == "__main__":
    main()
