#!/usr/bin/env python3
"""The store's and the cache's costs: restoring N cached outputs into a fresh clone vs running
the N jobs vs a no-op, and opening a store of the previous format (migrated) vs the current.

    cargo build --release
    python3 bench/store_cache.py                 # 10,000 cached jobs, a 100,000-record store
    python3 bench/store_cache.py --quick         # tiny, seconds (tests/bench_smoke.rs runs it)

Every job is a trivial `cp`. Each repetition of a clone-based phase uses a fresh clone (a new
directory with the inputs and no `.flowrun/`), so what is timed is what a teammate pulling the
repository would see. Prints a markdown table of medians.

The oldest-format store (format 1) is made from a current one: later formats only added
tables, so dropping every table but `records` and `incomplete` and setting `user_version = 1`
gives exactly what the first release wrote. Opening it runs every migration (in one
transaction, a backup copy kept until it commits); the no-op after it is timed against a no-op
on a store that is already current.
"""

import argparse
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def write(path, text):
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def workflow(n, cache):
    flag = "cache: true," if cache else ""
    return f"""
rule("all", #{{ input: expand("out/{{i}}.txt", #{{ i: range(0, {n}).collect() }}) }});
rule("copy", #{{ input: "src/{{i}}.txt", output: "out/{{i}}.txt", {flag} shell: "cp {{input}} {{output}}" }});
"""


def clone(root, n, cache=True):
    """A fresh directory with the workflow and N inputs."""
    if os.path.exists(root):
        shutil.rmtree(root)
    os.makedirs(os.path.join(root, "src"))
    for i in range(n):
        with open(os.path.join(root, "src", f"{i}.txt"), "w") as f:
            f.write(f"{i}\n")
    write(os.path.join(root, "wf.rhai"), workflow(n, cache))
    return root


def timed(argv, cwd, cap):
    start = time.perf_counter()
    r = subprocess.run(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       text=True, timeout=cap)
    took = time.perf_counter() - start
    if r.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed in {cwd}:\n{r.stderr}")
    return took, r.stderr


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def fmt(t):
    return f"{t:.3f} s" if t >= 0.1 else f"{t * 1000:.1f} ms"


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny sizes, 2 repetitions")
    p.add_argument("--jobs", type=int, default=None, help="cached jobs (default 10,000; 20 quick)")
    p.add_argument("--records", type=int, default=None,
                   help="records in the migrated store (default 100,000; 50 quick)")
    p.add_argument("--reps", type=int, default=None, help="repetitions (default 5; 2 quick)")
    p.add_argument("--cores", type=int, default=2)
    p.add_argument("--cap", type=float, default=900, help="seconds before a run is stopped")
    p.add_argument("--flowrun", default=os.path.join(ROOT, "target", "release", "flowrun"))
    p.add_argument("--workdir", default=os.path.join(ROOT, "target", "bench", "store_cache"))
    p.add_argument("--out", help="also write the markdown table to this file")
    args = p.parse_args()
    n = args.jobs or (20 if args.quick else 10_000)
    records = args.records or (50 if args.quick else 100_000)
    reps = args.reps or (2 if args.quick else 5)
    exe = os.path.abspath(args.flowrun)
    if not os.path.exists(exe):
        sys.exit(f"{exe} is missing: cargo build --release")
    work = os.path.abspath(args.workdir)
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    cache = os.path.join(work, "cache")
    j = ["-j", str(args.cores)]

    # Fill the cache once.
    timed([exe, *j, "--cache-dir", cache, "wf.rhai"], clone(os.path.join(work, "filler"), n), args.cap)

    run, restore, noop = [], [], []
    for r in range(reps):
        d = clone(os.path.join(work, f"run{r}"), n, cache=False)
        run.append(timed([exe, *j, "wf.rhai"], d, args.cap)[0])
        d = clone(os.path.join(work, f"restore{r}"), n)
        took, err = timed([exe, *j, "--cache-dir", cache, "wf.rhai"], d, args.cap)
        if f"{n} restored from the cache" not in err:
            sys.exit(f"expected {n} restored jobs, got:\n{err[-2000:]}")
        restore.append(took)
        noop.append(timed([exe, *j, "--cache-dir", cache, "wf.rhai"], d, args.cap)[0])

    # A store of `records` outputs, current, then made previous-format.
    store_dir = clone(os.path.join(work, "store"), records, cache=False)
    timed([exe, *j, "wf.rhai"], store_dir, args.cap)
    db = os.path.join(store_dir, ".flowrun", "store.db")
    current = shutil.copy(db, db + ".current")
    conn = sqlite3.connect(current)
    latest = conn.execute("PRAGMA user_version").fetchone()[0]
    conn.close()
    migrated, fresh = [], []
    for _ in range(reps):
        shutil.copy(current, db)
        for ext in ("-wal", "-shm"):
            if os.path.exists(db + ext):
                os.remove(db + ext)
        fresh.append(timed([exe, *j, "wf.rhai"], store_dir, args.cap)[0])
        shutil.copy(current, db)
        conn = sqlite3.connect(db)
        # Format 1 had these two tables only; later formats added others.
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for t in tables:
            if t not in ("records", "incomplete"):
                conn.execute(f"DROP TABLE {t}")
        conn.execute("PRAGMA user_version = 1")
        conn.commit()
        conn.close()
        took, err = timed([exe, *j, "wf.rhai"], store_dir, args.cap)
        if "nothing to be done" not in err:
            sys.exit(f"the migrated store reran jobs:\n{err[-2000:]}")
        migrated.append(took)
        conn = sqlite3.connect(db)
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        conn.close()
        if version != latest:
            sys.exit(f"the store was not migrated (format {version}, expected {latest})")

    rows = [
        "| what | median | ratio |",
        "|---|---|---|",
        f"| {n} trivial jobs, fresh clone, run | {fmt(median(run))} | 1.00 |",
        f"| {n} trivial jobs, fresh clone, restored from the cache | {fmt(median(restore))} "
        f"| {median(restore) / median(run):.2f} |",
        f"| {n} jobs, no-op after the restore | {fmt(median(noop))} "
        f"| {median(noop) / median(run):.2f} |",
        f"| no-op on a {records}-record store, current format | {fmt(median(fresh))} | 1.00 |",
        f"| no-op on a {records}-record store of format 1 (migrated) | {fmt(median(migrated))} "
        f"| {median(migrated) / median(fresh):.2f} |",
    ]
    table = "\n".join(rows) + f"\n\n{reps} repetitions, -j{args.cores}, medians.\n"
    print(table)
    if args.out:
        write(args.out, table)


if __name__ == "__main__":
    main()
