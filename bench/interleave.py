#!/usr/bin/env python3
"""Full runs (-j2) of one bench/run.py scenario, tools interleaved round by round.

On a shared, noisy machine a ratio is only fair when both sides ran under the same load: each
round here runs every variant once, in rotating order, and the medians over rounds are compared.
Besides wall time it reports CPU time (user + sys of the tool and every process it waited for),
which load disturbs far less, per job as well.

    python3 bench/interleave.py --rounds 5 before=/tmp/flowrun-old after=target/release/flowrun \\
        make=make ninja=ninja xargs=xargs

A variant is NAME=CMD, CMD being `make`, `ninja`, `xargs` (the bare spawning floor: the same
copies through `xargs -P 2 -L 1 cp`, without the aggregate job) or a flowrun binary, possibly
with options (`"bar=target/release/flowrun --progress bar"`). flowrun runs with `-q` and its
stderr discarded, as in bench/run.py; `--loud` drops `-q` and reads its stderr through a pipe
(what the per-job lines and the status line cost), reporting how many bytes it wrote.
"""
import argparse
import os
import shlex
import statistics
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as R  # noqa: E402  (the same scenarios, workflows and commands as the main runner)


def start(tool, exe, sc, d, loud=False):
    """Starts one full run in `d` (cleaned first); returns the process and, with `loud`, a
    list that receives the size of its stderr."""
    R.clean(sc, "make" if tool == "xargs" else tool, d)
    if tool == "xargs":
        pairs = open(os.path.join(d, "pairs"), "w+")
        pairs.write("".join(f"src/{i}.txt out/{i}.txt\n" for i in range(sc.n)))
        pairs.seek(0)
        return subprocess.Popen(["xargs", "-P", "2", "-L", "1", "cp"], cwd=d, stdin=pairs,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL), None
    cmd = R.command(tool, shlex.split(exe), "full", 2)
    if not (loud and tool == "flowrun"):
        return subprocess.Popen(cmd, cwd=d, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL), None
    cmd.remove("-q")
    proc = subprocess.Popen(cmd, cwd=d, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    size = []
    threading.Thread(target=lambda: size.append(len(proc.stderr.read())), daemon=True).start()
    return proc, size


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("variants", nargs="+", metavar="NAME=CMD")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--scenario", default="fan-out 10k", help="a scenario name of bench/run.py")
    p.add_argument("--workdir", default=os.path.join(R.ROOT, "target", "bench-interleave"))
    p.add_argument("--loud", action="store_true",
                   help="flowrun without -q, its stderr read through a pipe")
    args = p.parse_args()
    sc = next(s for s in R.FULL + R.QUICK if s.name == args.scenario)
    variants = [v.split("=", 1) for v in args.variants]
    dirs = {}
    for name, exe in variants:
        tool = exe if exe in ("make", "ninja", "xargs") else "flowrun"
        dirs[name] = (tool, exe, R.setup(sc, "make" if tool == "xargs" else tool,
                                         os.path.join(args.workdir, name)))
    wall = {n: [] for n, _ in variants}
    cpu = {n: [] for n, _ in variants}
    for r in range(args.rounds):
        k = r % len(variants)
        for name, _ in variants[k:] + variants[:k]:
            tool, exe, d = dirs[name]
            load = os.getloadavg()[0]
            t0 = time.perf_counter()
            proc, size = start(tool, exe, sc, d, args.loud)
            _, status, ru = os.wait4(proc.pid, 0)
            took = time.perf_counter() - t0
            if size is not None:
                deadline = time.time() + 10
                while not size and time.time() < deadline:
                    time.sleep(0.01)
            noise = f"  stderr {size[0]} B" if size else ""
            if os.waitstatus_to_exitcode(status) != 0:
                sys.exit(f"{name} failed in {d}")
            wall[name].append(took)
            cpu[name].append(ru.ru_utime + ru.ru_stime)
            print(f"round {r} {name:8} wall {took:7.3f} s  cpu {cpu[name][-1]:7.3f} s  "
                  f"load {load:.2f}{noise}", file=sys.stderr, flush=True)
    med = statistics.median
    n = sc.jobs
    print(f"{sc.name} ({n} jobs), -j2, {args.rounds} interleaved rounds, medians")
    for name, _ in variants:
        print(f"{name:8} wall {med(wall[name]):7.3f} s  cpu {med(cpu[name]):7.3f} s "
              f"({med(cpu[name]) / n * 1e6:5.0f} µs/job)  walls "
              + " ".join(f"{x:.2f}" for x in wall[name]))
    for ref, _ in variants:
        if dirs[ref][0] == "flowrun":
            continue
        for name, _ in variants:
            if name != ref:
                print(f"{name:8} / {ref}: wall {med(wall[name]) / med(wall[ref]):.3f}x, "
                      f"per job {(med(wall[name]) - med(wall[ref])) / n * 1e6:+.0f} µs wall, "
                      f"{(med(cpu[name]) - med(cpu[ref])) / n * 1e6:+.0f} µs CPU")


if __name__ == "__main__":
    main()
