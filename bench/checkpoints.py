#!/usr/bin/env python3
"""Checkpoints at scale (issue 13): N samples, each split by a checkpoint into 10 chunks, each
chunk counted, the counts gathered per sample, against the same workflow written without a
checkpoint (the 10 chunk names known in advance). 11 jobs per sample plus `all`.

Every job's work is a `run` closure (flowrun) or `run:` block (Snakemake) writing a small file,
so the times are the tools' own: resolving, planning, re-planning, recording.

    python3 bench/checkpoints.py --samples 10000                # flowrun only
    python3 bench/checkpoints.py --samples 200 --snakemake      # both tools, smaller

Prints, per variant: the full run from clean (-j2), a dry run and a no-op after it; and the
ratios the issue asks for: the checkpoint run's time beyond the static one, and no-op/no-op.
flowrun's own planning time is read from the full run's `--trace` (time before the first pass
starts, the gaps between passes, and the `took` of each `grown` event), since the full runs'
wall times differ by more than that from one run to the next on a shared machine (every job's
write is an fsync).
"""

import argparse
import os
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHUNKS = 10

STATIC_RHAI = """let n = {n};
let samples = range(0, n).collect().map(|i| `s${{i}}`);
let chunks = range(0, {chunks}).collect().map(|i| `c${{i}}`);
rule("all", #{{ input: expand("summary/{{s}}.txt", #{{ s: samples }}) }});
rule("split", #{{
    input: "data/{{s}}.txt",
    output: expand("chunks/{{{{s}}}}/{{c}}", #{{ c: chunks }}),
    run: |job| {{ for p in job.output {{ write_text(p, read_text(job.input[0])); }} }},
}});
rule("count", #{{ input: "chunks/{{s}}/{{c}}", output: "counts/{{s}}/{{c}}.txt",
    run: |job| write_text(job.output[0], read_text(job.input[0]).len.to_string()) }});
rule("gather", #{{
    input: expand("counts/{{{{s}}}}/{{c}}.txt", #{{ c: chunks }}),
    output: "summary/{{s}}.txt",
    run: |job| write_text(job.output[0], `${{job.input.len}}`),
}});
"""

CHECKPOINT_RHAI = """let n = {n};
let samples = range(0, n).collect().map(|i| `s${{i}}`);
rule("all", #{{ input: expand("summary/{{s}}.txt", #{{ s: samples }}) }});
rule("split", #{{
    input: "data/{{s}}.txt",
    output: directory("chunks/{{s}}"),
    checkpoint: true,
    run: |job| {{ for i in 0..{chunks} {{ write_text(`${{job.output[0]}}/c${{i}}`, read_text(job.input[0])); }} }},
}});
rule("count", #{{ input: "chunks/{{s}}/{{c}}", output: "counts/{{s}}/{{c}}.txt",
    run: |job| write_text(job.output[0], read_text(job.input[0]).len.to_string()) }});
rule("gather", #{{
    input: |w| {{
        let dir = checkpoint_output("split", w);
        expand("counts/{{s}}/{{c}}.txt", #{{ s: w.s, c: glob_wildcards(dir + "/{{c}}").c }})
    }},
    output: "summary/{{s}}.txt",
    run: |job| write_text(job.output[0], `${{job.input.len}}`),
}});
"""

SNAKEFILE_STATIC = """N = {n}
SAMPLES = [f"s{{i}}" for i in range(N)]
CHUNKS = [f"c{{i}}" for i in range({chunks})]
rule all:
    input: expand("summary/{{s}}.txt", s=SAMPLES)
rule split:
    input: "data/{{s}}.txt"
    output: expand("chunks/{{{{s}}}}/{{c}}", c=CHUNKS)
    run:
        text = open(input[0]).read()
        for p in output:
            open(p, "w").write(text)
rule count:
    input: "chunks/{{s}}/{{c}}"
    output: "counts/{{s}}/{{c}}.txt"
    run:
        open(output[0], "w").write(str(len(open(input[0]).read())))
rule gather:
    input: expand("counts/{{{{s}}}}/{{c}}.txt", c=CHUNKS)
    output: "summary/{{s}}.txt"
    run:
        open(output[0], "w").write(str(len(input)))
"""

SNAKEFILE_CHECKPOINT = """import os
N = {n}
SAMPLES = [f"s{{i}}" for i in range(N)]
rule all:
    input: expand("summary/{{s}}.txt", s=SAMPLES)
checkpoint split:
    input: "data/{{s}}.txt"
    output: directory("chunks/{{s}}")
    run:
        os.makedirs(output[0], exist_ok=True)
        text = open(input[0]).read()
        for i in range({chunks}):
            open(f"{{output[0]}}/c{{i}}", "w").write(text)
rule count:
    input: "chunks/{{s}}/{{c}}"
    output: "counts/{{s}}/{{c}}.txt"
    run:
        open(output[0], "w").write(str(len(open(input[0]).read())))
def chunks(w):
    d = checkpoints.split.get(s=w.s).output[0]
    return expand("counts/{{s}}/{{c}}.txt", s=w.s, c=sorted(glob_wildcards(d + "/{{c}}").c))
rule gather:
    input: chunks
    output: "summary/{{s}}.txt"
    run:
        open(output[0], "w").write(str(len(input)))
"""


def timed(cmd, cwd, cap):
    start = time.perf_counter()
    try:
        out = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=cap)
    except subprocess.TimeoutExpired:
        return None
    took = time.perf_counter() - start
    if out.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed in {cwd}:\n{out.stdout}\n{out.stderr}")
    return took


def planning_time(trace):
    """From a run's event trace: the seconds spent resolving and planning (up to the first
    pass's start, then from each pass's end to the next one's start, and the planning of the
    jobs checkpoints told of while a pass ran, which each `grown` event times), and the
    core-seconds left idle at the ends of passes (from the last job start of a pass to its end,
    the cores not running a job: what waiting for the pass to end costs)."""
    import json

    total, idle, last_end = 0.0, 0.0, 0.0
    cores, changes = 1, []
    with open(trace) as f:
        for line in f:
            e = json.loads(line)
            kind, t = e["event"], e["t"]
            if kind == "run_start":
                total += t - last_end
                cores, changes = e["cores"], []
            elif kind == "grown":
                total += e["took"]
            elif kind in ("job_start", "job_end"):
                changes.append((t, 1 if kind == "job_start" else -1))
            elif kind == "run_end":
                last_end = t
                starts = [c for c, d in changes if d > 0]
                if starts:
                    running, at = 0, None
                    for c, d in changes + [(t, 0)]:
                        if at is not None:
                            idle += (cores - running) * (c - at)
                        running += d
                        if at is not None or c == starts[-1]:
                            at = c
    return total, idle


def prepare(work, n, name, text):
    d = os.path.join(work, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(os.path.join(d, "data"))
    for i in range(n):
        with open(os.path.join(d, "data", f"s{i}.txt"), "w") as f:
            f.write(f"sample {i}\n")
    with open(os.path.join(d, "Snakefile" if name.startswith("smk") else "wf.rhai"), "w") as f:
        f.write(text)
    return d


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=10000)
    ap.add_argument("--flowrun", default=os.path.join(ROOT, "target/release/flowrun"))
    ap.add_argument("--snakemake", action="store_true")
    ap.add_argument("--venv", default=os.path.join(ROOT, "target/pyenv"))
    ap.add_argument("--cap", type=float, default=1800)
    args = ap.parse_args()
    n = args.samples
    work = os.path.join(ROOT, "target/bench/checkpoints")
    rows = []
    variants = [("flowrun static", STATIC_RHAI), ("flowrun checkpoint", CHECKPOINT_RHAI)]
    if args.snakemake:
        variants += [("smk static", SNAKEFILE_STATIC), ("smk checkpoint", SNAKEFILE_CHECKPOINT)]
    results = {}
    planning = {}
    for name, template in variants:
        d = prepare(work, n, name.replace(" ", "_"), template.format(n=n, chunks=CHUNKS))
        if name.startswith("smk"):
            tool = [os.path.join(args.venv, "bin/snakemake"), "--cores", "2", "--quiet"]
            full = timed(tool, d, args.cap)
            dry = timed(tool + ["-n"], d, args.cap)
            noop = timed(tool, d, args.cap)
        else:
            tool = [args.flowrun, "-q", "wf.rhai"]
            full = timed(tool + ["-j", "2", "--trace", "trace.jsonl"], d, args.cap)
            dry = timed(tool + ["-n"], d, args.cap)
            noop = timed(tool, d, args.cap)
            if full is not None:
                planning[name] = planning_time(os.path.join(d, "trace.jsonl"))
        results[name] = (full, dry, noop)
        fmt = lambda t: "timeout" if t is None else f"{t:.2f} s"
        rows.append(f"| {name} | {fmt(full)} | {fmt(dry)} | {fmt(noop)} |")
    print(f"{n} samples × {CHUNKS} chunks ({n * (CHUNKS + 2) + 1} jobs)\n")
    print("| variant | full run -j2 | dry run after | no-op after |\n|---|---|---|---|")
    print("\n".join(rows))
    for tool in ["flowrun", "smk"]:
        s, c = results.get(f"{tool} static"), results.get(f"{tool} checkpoint")
        if s and c and None not in s + c:
            print(f"\n{tool}: checkpoint full run − static = {c[0] - s[0]:+.2f} s; "
                  f"no-op checkpoint/static = {c[2] / s[2]:.2f}×")
    if len(planning) == 2:
        (s, s_idle), (c, c_idle) = planning["flowrun static"], planning["flowrun checkpoint"]
        print(f"\nflowrun planning (before the first job, and between passes): static {s:.2f} s, "
              f"checkpoint {c:.2f} s, beyond static {c - s:+.2f} s")
        print(f"cores idle at the ends of passes: static {s_idle:.2f}, "
              f"checkpoint {c_idle:.2f} core-seconds")
    fs, ss = results.get("flowrun checkpoint"), results.get("smk checkpoint")
    if fs and ss and None not in fs + ss:
        print(f"Snakemake/flowrun, checkpoint variant: full {ss[0] / fs[0]:.1f}×, no-op {ss[2] / fs[2]:.1f}×")


if __name__ == "__main__":
    main()
