#!/usr/bin/env python3
"""A checkpoint that makes a chunk fewer, at scale (issue 13): N samples of 10 lines, each split
by a checkpoint into one chunk per line, each chunk counted, the counts gathered. After the
full run, K samples lose their last line: their checkpoints rerun, their gathers rerun, and one
count job each is dropped (named, its output removed). Prints the full run, the shrinking run,
a no-op after it, and how many jobs were dropped.

    python3 bench/checkpoint_shrink.py --samples 1000 --shrink 100
"""

import argparse
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checkpoints import CHECKPOINT_RHAI  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LINES = 10

# bench/checkpoints.py's checkpoint workflow, with a split that makes one chunk per line.
SPLIT_COPIES = "run: |job| {{ for i in 0..{chunks} {{ write_text(`${{job.output[0]}}/c${{i}}`, read_text(job.input[0])); }} }},"
SPLIT_LINES = """run: |job| {{
        let i = 0;
        for line in read_lines(job.input[0]) {{ write_text(`${{job.output[0]}}/c${{i}}`, line); i += 1; }}
    }},"""
assert SPLIT_COPIES in CHECKPOINT_RHAI
WORKFLOW = CHECKPOINT_RHAI.replace(SPLIT_COPIES, SPLIT_LINES)


def timed(cmd, cwd):
    start = time.perf_counter()
    out = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    took = time.perf_counter() - start
    if out.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{out.stdout}\n{out.stderr}")
    return took, out.stderr


def write_sample(d, i, lines):
    with open(os.path.join(d, "data", f"s{i}.txt"), "w") as f:
        f.write("".join(f"line {k} of {i}\n" for k in range(lines)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=1000)
    ap.add_argument("--shrink", type=int, default=100)
    ap.add_argument("--flowrun", default=os.path.join(ROOT, "target/release/flowrun"))
    args = ap.parse_args()
    d = os.path.join(ROOT, "target/bench/checkpoint_shrink")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(os.path.join(d, "data"))
    for i in range(args.samples):
        write_sample(d, i, LINES)
    with open(os.path.join(d, "wf.rhai"), "w") as f:
        f.write(WORKFLOW.format(n=args.samples, chunks=LINES))
    tool = [args.flowrun, "wf.rhai", "-j", "2"]
    full, _ = timed(tool + ["-q"], d)
    for i in range(args.shrink):
        write_sample(d, i, LINES - 1)
    shrink, err = timed(tool, d)
    dropped = sum(1 for line in err.splitlines() if line.startswith("  Dropped "))
    noop, _ = timed(tool + ["-q"], d)
    jobs = args.samples * (LINES + 2) + 1
    print(f"{args.samples} samples × {LINES} chunks ({jobs} jobs), {args.shrink} shrink by one\n")
    print("| full run -j2 | shrinking run | dropped | no-op after |\n|---|---|---|---|")
    print(f"| {full:.2f} s | {shrink:.2f} s | {dropped} | {noop:.2f} s |")
    if dropped != args.shrink:
        sys.exit(f"expected {args.shrink} dropped jobs, saw {dropped}")
    shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
