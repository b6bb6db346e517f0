#!/usr/bin/env python3
"""flowrun vs Snakemake 9 + snakemake-executor-plugin-slurm on a real single-node SLURM.

The same workflow for both: N independent jobs (`echo i > out/i.txt`) and one aggregate job
needing all of them, every job submitted with sbatch. For each tool: a fresh directory, the
controller's RPC counters reset (`sdiag --reset`), one full run, then `sdiag` read back: wall
time, and RPCs by type (submissions, job-info queries for status, ...).

    python3 bench/slurm.py                 # 300 jobs (the issue's size), ~15 min on 2 cores
    python3 bench/slurm.py --jobs 20       # a quick look

The cluster is started with scripts/slurm.sh in a temporary directory and stopped at the end.
flowrun is target/debug/flowrun unless --flowrun says otherwise; Snakemake and the plugin come
from target/pyenv (the plugin is installed there with pip, pinned, when missing).
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PLUGIN = "snakemake-executor-plugin-slurm==2.8.0"


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kw)


def sdiag_counts(env):
    """RPC counts by message type since the last reset."""
    out = sh(["sdiag"], env=env).stdout
    counts = {}
    section = out.split("Remote Procedure Call statistics by message type", 1)[-1]
    section = section.split("Remote Procedure Call statistics by user", 1)[0]
    for m in re.finditer(r"^\s+(\w+)\s+\(\s*\d+\)\s+count:(\d+)", section, re.M):
        counts[m.group(1)] = int(m.group(2))
    return counts


def flowrun_workflow(n):
    return (
        f'let ids = []; for i in 0..{n} {{ ids.push(i); }}\n'
        'rule("all", #{ input: "agg.txt", local: true });\n'
        'rule("one", #{ output: "out/{i}.txt", shell: "echo {wildcards.i} > {output}" });\n'
        'rule("agg", #{ input: expand("out/{i}.txt", #{ i: ids }), output: "agg.txt",\n'
        '    shell: "cat {input} | wc -l > {output}" });\n'
    )


def snakemake_workflow(n):
    return (
        f"IDS = list(range({n}))\n"
        "localrules: all\n"
        'rule all:\n    input: "agg.txt"\n'
        'rule one:\n    output: "out/{i}.txt"\n    shell: "echo {wildcards.i} > {output}"\n'
        'rule agg:\n    input: expand("out/{i}.txt", i=IDS)\n    output: "agg.txt"\n'
        '    shell: "cat {input} | wc -l > {output}"\n'
    )


def run_tool(name, cmd, workdir, env, n):
    sh(["sdiag", "--reset"], env=env)
    start = time.monotonic()
    p = subprocess.run(cmd, cwd=workdir, env=env, text=True, capture_output=True)
    wall = time.monotonic() - start
    counts = sdiag_counts(env)
    ok = p.returncode == 0 and (workdir / "agg.txt").read_text().strip() == str(n)
    if not ok:
        sys.stderr.write(f"{name} failed ({p.returncode}):\n{p.stderr[-3000:]}\n")
    return {"tool": name, "wall": wall, "ok": ok, "rpc": counts, "stderr": p.stderr}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--jobs", type=int, default=300)
    ap.add_argument("--flowrun", default=str(REPO / "target/debug/flowrun"))
    ap.add_argument("--venv", default=str(REPO / "target/pyenv"))
    ap.add_argument("--only", default="flowrun,snakemake,snakemake-1s",
                    help="which runs, comma-separated (default: all three)")
    args = ap.parse_args()
    venv = Path(args.venv)
    if subprocess.run([venv / "bin/python", "-m", "pip", "show", "-q",
                       "snakemake-executor-plugin-slurm"], capture_output=True).returncode:
        sh([venv / "bin/python", "-m", "pip", "install", "-q", PLUGIN])
    base = Path(tempfile.mkdtemp(prefix="flowrun-bench-slurm-", dir="/tmp"))
    os.chmod(base, 0o755)
    cluster = base / "cluster"
    conf = cluster / "slurm.conf"
    # The plugin's job step drops every SLURM_* variable but a few before its inner `srun`,
    # SLURM_CONF included, so on a cluster configured through SLURM_CONF (as this one is) the
    # step cannot find the controller. A shim `srun` on PATH puts it back.
    shim = base / "shim"
    shim.mkdir()
    real_srun = shutil.which("srun")
    (shim / "srun").write_text(f'#!/bin/sh\nSLURM_CONF={conf} exec {real_srun} "$@"\n')
    os.chmod(shim / "srun", 0o755)
    env = dict(os.environ, SLURM_CONF=str(conf),
               PATH=f"{shim}:{venv / 'bin'}:{os.environ['PATH']}")
    sh(["bash", REPO / "scripts/slurm.sh", "start", cluster])
    results = []
    try:
        # The first job after start waits for the controller's first scheduling pass.
        sh(["sbatch", "--wait", "--wrap", "true", "-o", "/dev/null"], env=env)
        n = args.jobs
        runs = [
            ("flowrun", "flowrun", "Flowfile.rhai", flowrun_workflow(n),
             [args.flowrun, "--executor", "slurm", "-j", str(n + 1), "-v", "--progress",
              "lines", "Flowfile.rhai"]),
            ("snakemake", "snakemake (defaults)", "Snakefile", snakemake_workflow(n),
             [venv / "bin/python", "-m", "snakemake", "--executor", "slurm", "-j", str(n + 1),
              "--slurm-status-command", "squeue", "--slurm-no-account", "--quiet"]),
            ("snakemake-1s", "snakemake (status every 1 s)", "Snakefile", snakemake_workflow(n),
             [venv / "bin/python", "-m", "snakemake", "--executor", "slurm", "-j", str(n + 1),
              "--slurm-status-command", "squeue", "--slurm-no-account", "--quiet",
              "--slurm-init-seconds-before-status-checks", "1",
              "--seconds-between-status-checks", "1"]),
        ]
        only = set(args.only.split(","))
        for key, name, file, text, cmd in runs:
            if key not in only:
                continue
            work = base / re.sub(r"\W+", "-", name)
            work.mkdir()
            (work / file).write_text(text)
            r = run_tool(name, [str(c) for c in cmd], work, env, n)
            results.append(r)
            # Each run's figures as soon as it ends: a long run cut short loses nothing else.
            print(f"{name}: {r['wall']:.1f} s, ok={r['ok']}, RPCs {r['rpc']}", flush=True)
    finally:
        sh(["bash", REPO / "scripts/slurm.sh", "stop", cluster])
    kinds = sorted({k for r in results for k in r["rpc"]})
    print(f"\n{args.jobs} jobs + 1 aggregate, single-node SLURM 22.05 (2 CPUs)\n")
    print("| tool | wall (s) | " + " | ".join(kinds) + " |")
    print("|---|---:|" + "---:|" * len(kinds))
    for r in results:
        cells = " | ".join(str(r["rpc"].get(k, 0)) for k in kinds)
        mark = "" if r["ok"] else " (failed)"
        print(f"| {r['tool']}{mark} | {r['wall']:.1f} | {cells} |")
    for r in results:
        line = [l for l in r["stderr"].splitlines() if l.startswith("SLURM run")]
        if line:
            print(f"\n{r['tool']}: {line[-1]}")
    shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
