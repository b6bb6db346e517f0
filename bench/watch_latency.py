#!/usr/bin/env python3
"""Watch-mode benchmark: latency from a saved change to the start of the first rerun job, and
CPU used while idle. Run on demand (not part of the test suite):

    cargo build --release && python3 bench/watch_latency.py [--flowrun target/release/flowrun]

Prints the median latency over N edits next to the debounce, and idle CPU seconds per minute.
"""
import argparse, os, statistics, subprocess, sys, tempfile, time

p = argparse.ArgumentParser()
p.add_argument("--flowrun", default="target/release/flowrun")
p.add_argument("--edits", type=int, default=20)
p.add_argument("--debounce", type=int, default=100)
args = p.parse_args()
flowrun = os.path.abspath(args.flowrun)

with tempfile.TemporaryDirectory() as d:
    open(os.path.join(d, "wf.rhai"), "w").write(
        'rule("stamp", #{ input: "in.txt", output: "out.txt", '
        'shell: "date +%s.%N > started; cat {input} > {output}" });\n')
    open(os.path.join(d, "in.txt"), "w").write("0\n")
    proc = subprocess.Popen([flowrun, "--watch", "--debounce", str(args.debounce), "wf.rhai"],
                            cwd=d, stderr=subprocess.PIPE, text=True)
    def wait_line(needle):
        while True:
            line = proc.stderr.readline()
            if not line:
                sys.exit("flowrun ended")
            if needle in line:
                return line
    wait_line("watching for changes")
    latencies = []
    for i in range(1, args.edits + 1):
        t0 = time.time()
        with open(os.path.join(d, "in.txt"), "w") as f:
            f.write(f"{i}\n")
        wait_line("in.txt changed")
        started = float(open(os.path.join(d, "started")).read())
        latencies.append((started - t0) * 1000)
        time.sleep(0.2)
    stat = lambda: sum(int(x) for x in open(f"/proc/{proc.pid}/stat").read().rsplit(")", 1)[1].split()[11:13])
    hz = os.sysconf("SC_CLK_TCK")
    before = stat(); time.sleep(10); idle = (stat() - before) / hz
    proc.send_signal(2); proc.wait(timeout=10)

med = statistics.median(latencies)
print(f"| metric | value | target |")
print(f"|---|---|---|")
print(f"| change → job start, median of {len(latencies)} | {med:.0f} ms | ≤ debounce ({args.debounce} ms) + 50 ms |")
print(f"| beyond the debounce | {med - args.debounce:.0f} ms | ≤ 50 ms |")
print(f"| idle CPU | {idle / 10 * 60:.3f} s per minute | ~0 |")
