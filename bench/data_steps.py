#!/usr/bin/env python3
"""Data-step benchmarks (issue 5, item 2): chunked colmean on a 2 GiB .npy, and async HTTP fetches.

Run on demand, from the repository root, after `cargo build --release`:

    python3 bench/data_steps.py                       # both parts
    python3 bench/data_steps.py --only colmean --npy /path/to/existing.npy
    python3 bench/data_steps.py --only async --reps 5

colmean: column means of a 16,777,216 × 16 float64 `.npy` (2 GiB; made with flowrun's
`write_random_npy` through a tiny workflow unless `--npy` names an existing file) by
  - flowrun, `model: "chunked"`, `threads: 2`, `chunk: 65536`, rerun with its store kept (the
    input's signature is recorded) and as a first run (`.flowrun` removed before each run);
    `--baseline` adds another flowrun binary, measured the same way (also in async);
  - NumPy in memory: `np.load(path).mean(axis=0)`;
  - NumPy memory-mapped, summed in chunks of 65,536 rows;
  - `cat file > /dev/null` (the read-bandwidth limit).
The page cache is warmed first (one untimed `cat`); repetitions are interleaved. Wall time, GB/s (file bytes / wall) and peak
RSS (GNU time, %M) are reported as medians.

models: the same column means under `chunked`, `thread`, `process`, `hybrid` and `mpi` (2 cores
each), checked to be bitwise identical.

async: 500 HTTP GETs (`--n`) to `bench/slow_server.py`, a 127.0.0.1 asyncio server in its own
process that answers each request 50 ms after it arrives (keep-alive capable, backlog 4096), by
flowrun `model: "async", concurrency: 100`, by Python asyncio with a new connection per request
(a semaphore of 100), by Python asyncio over 100 keep-alive connections (the floor a client can
reach against this server) and serially (urllib, one at a time). Repetitions are interleaved.
The server's log of arrival and answer times splits each run into start-up (until the first
request arrives), the turnaround between an answer and the request it makes room for, and the
time after the last answer. The ideal is 500 / 100 × 50 ms = 0.25 s.
"""
import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROWS, COLS, CHUNK = 16_777_216, 16, 65_536


def timed(argv, cwd=None, env=None):
    """Runs argv under GNU time; returns (wall seconds, peak RSS MiB, CPU seconds user + system).
    On a busy machine the CPU time is the steadier figure: wall time includes waiting for a core."""
    fd, rss_path = tempfile.mkstemp(prefix="bench-rss-")
    os.close(fd)
    t0 = time.perf_counter()
    p = subprocess.run(["/usr/bin/time", "-f", "%U %S %M", "-o", rss_path] + argv, cwd=cwd, env=env,
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    took = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(f"`{' '.join(argv)}` failed ({p.returncode}):\n{p.stderr.decode(errors='replace')[-2000:]}")
    user, system, rss = open(rss_path).read().split()[-3:]
    os.remove(rss_path)
    return took, int(rss) / 1024, float(user) + float(system)


def fmt(t):
    return f"{t * 1000:.0f} ms" if t < 1 else f"{t:.2f} s"


# ---------------------------------------------------------------------------------------------
# colmean
# ---------------------------------------------------------------------------------------------

MAKE_NPY = f"""rule("all", #{{ input: "data/colmean.npy" }});
rule("data", #{{ output: "data/colmean.npy", run: |job| write_random_npy(job.output[0], {ROWS}, {COLS}, 42) }});
"""

CHUNKED = f"""rule("all", #{{ input: "results/colmean.csv" }});
rule("colmean", #{{
    input: "data/colmean.npy",
    output: "results/colmean.csv",
    model: "chunked",
    chunk: {CHUNK},
    threads: 2,
    map: |job, rows| #{{ sum: rows.col_sums(), n: rows.rows }},
    reduce: |acc, part| #{{ sum: acc.sum + part.sum, n: acc.n + part.n }},
    finish: |job, s| {{
        let lines = ["column,mean"];
        for c in 0..s.sum.len() {{ lines.push(`${{c}},${{s.sum[c] / s.n}}`); }}
        write_lines(job.output[0], lines);
    }},
}});
"""

NUMPY_MEM = "import numpy as np, sys; m = np.load(sys.argv[1]).mean(axis=0); print(m[:2])"
NUMPY_MMAP = f"""import numpy as np, sys
a = np.load(sys.argv[1], mmap_mode="r")
s = np.zeros(a.shape[1])
for i in range(0, a.shape[0], {CHUNK}):
    s += a[i:i + {CHUNK}].sum(axis=0)
print((s / a.shape[0])[:2])
"""


def prepare_npy(args):
    """The work directory holding data/colmean.npy (made once, or linked from --npy), page cache warm."""
    work = os.path.join(args.workdir, "colmean")
    os.makedirs(os.path.join(work, "data"), exist_ok=True)
    link = os.path.join(work, "data", "colmean.npy")
    if args.npy:
        if os.path.lexists(link):
            os.remove(link)
        os.symlink(os.path.abspath(args.npy), link)
    elif not os.path.exists(link):
        with open(os.path.join(work, "make.rhai"), "w") as f:
            f.write(MAKE_NPY)
        print("making the 2 GiB .npy with write_random_npy ...", file=sys.stderr)
        subprocess.run([args.flowrun, "-q", "make.rhai"], cwd=work, check=True)
    subprocess.run(["cat", link], stdout=subprocess.DEVNULL, check=True)  # warm the page cache
    return work, link, os.path.getsize(os.path.realpath(link))


def colmean(args, rows):
    work, link, size = prepare_npy(args)

    def flowrun_in(binary, tag, first_run):
        """A flowrun variant in its own directory (its own `.flowrun`). With `first_run` the
        store is removed before every repetition, so the input has no recorded signature;
        otherwise one untimed run first leaves the record a rerun finds."""
        run_dir = os.path.join(work, tag)
        os.makedirs(os.path.join(run_dir, "data"), exist_ok=True)
        data = os.path.join(run_dir, "data", "colmean.npy")
        if not os.path.lexists(data):
            os.symlink(os.path.realpath(link), data)
        with open(os.path.join(run_dir, "wf.rhai"), "w") as f:
            f.write(CHUNKED)
        shutil.rmtree(os.path.join(run_dir, ".flowrun"), ignore_errors=True)
        argv = [binary, "-q", "wf.rhai", "-j", "2"]
        if not first_run:
            subprocess.run(argv, cwd=run_dir, check=True, stdout=subprocess.DEVNULL)

        def run():
            shutil.rmtree(os.path.join(run_dir, "results"), ignore_errors=True)
            if first_run:
                shutil.rmtree(os.path.join(run_dir, ".flowrun"), ignore_errors=True)
            return timed(argv, cwd=run_dir)
        return run

    flowrun_name = "flowrun chunked (threads 2, chunk 65536)"
    variants = [(flowrun_name, flowrun_in(args.flowrun, "flowrun", False)),
                (flowrun_name + ", first run", flowrun_in(args.flowrun, "flowrun-first", True))]
    if args.baseline:
        variants += [("baseline " + flowrun_name, flowrun_in(args.baseline, "baseline", False)),
                     ("baseline " + flowrun_name + ", first run",
                      flowrun_in(args.baseline, "baseline-first", True))]
    variants += [
        ("NumPy in memory (np.load().mean)", lambda: timed([args.python, "-c", NUMPY_MEM, link])),
        ("NumPy memory-mapped, 65536-row chunks", lambda: timed([args.python, "-c", NUMPY_MMAP, link])),
        ("cat file > /dev/null", lambda: timed(["cat", link])),
    ]
    # Repetitions are interleaved (every variant once, then again...), so that a change of
    # load on the shared machine affects every variant alike.
    samples = {name: [] for name, _ in variants}
    for _ in range(args.reps):
        for name, fn in variants:
            samples[name].append(fn())
    res = {}
    for name, _ in variants:
        t = statistics.median(s[0] for s in samples[name])
        r = statistics.median(s[1] for s in samples[name])
        cpu = statistics.median(s[2] for s in samples[name])
        res[name] = (t, r, cpu, [s[0] for s in samples[name]])
        if args.verbose:
            print(f"  {name}: {fmt(t)} {[round(s[0], 3) for s in samples[name]]} RSS {r:.0f} MiB "
                  f"CPU {cpu:.2f} s", file=sys.stderr)
    cat = res["cat file > /dev/null"][0]
    mmap = res["NumPy memory-mapped, 65536-row chunks"][0]
    rows.append(f"\n## colmean, {size / 2**30:.2f} GiB .npy ({ROWS:,} × {COLS} float64), page cache warm\n")
    rows.append("| variant | wall (median) | GB/s | % of cat | time / flowrun | CPU user+sys (median) | "
                "peak RSS (MiB) | samples (s) |")
    rows.append("|---|---|---|---|---|---|---|---|")
    fr = res[flowrun_name][0]
    first = res[flowrun_name + ", first run"][0]
    for name, (t, r, cpu, s) in res.items():
        rows.append(f"| {name} | {fmt(t)} | {size / t / 1e9:.2f} | {cat / t * 100:.0f}% | "
                    f"{t / fr:.2f}× | {cpu:.2f} s | {r:.0f} | {', '.join(f'{x:.2f}' for x in s)} |")
    rows.append(f"\nflowrun / cat bandwidth: {cat / fr * 100:.0f}% (target ≥ 70%), first run "
                f"{cat / first * 100:.0f}%; NumPy chunked time / flowrun time: {mmap / fr:.2f}×, "
                f"first run {mmap / first:.2f}× (target ≥ 2×).")


# The same column means under every model flowrun has: `chunked` streams the file, the others
# map the indices of 65,536-row blocks read with `read_rows` (as rules/matrix.rhai does).
MODELS = {
    "chunked": "threads: 2",
    "thread": "threads: 2",
    "process": "procs: 2",
    "hybrid": "procs: 2, threads: 1",
    "mpi": "ranks: 2",
}
MODEL_RULE = """rule("mean_MODEL", #{
    input: "data/colmean.npy",
    output: "results/MODEL.csv",
    model: "MODEL",
    SETTINGS,
    reduce: |acc, sums| acc + sums,
    finish: |job, sums| write_csv(job.output[0], sums / npy_info(job.input[0]).rows),
    MAP
});
"""
CHUNK_MAP = "chunk: CHUNK, map: |job, rows| rows.col_sums(),"
BLOCK_MAP = """items: |job| range(0, (npy_info(job.input[0]).rows + CHUNK - 1) / CHUNK).collect(),
    map: |job, b| read_rows(job.input[0], b * CHUNK, CHUNK).col_sums(),"""


def colmean_models(args, rows):
    work, _, size = prepare_npy(args)
    text = ""
    for model, settings in MODELS.items():
        body = CHUNK_MAP if model == "chunked" else BLOCK_MAP
        text += MODEL_RULE.replace("MAP", body).replace("SETTINGS", settings) \
            .replace("MODEL", model).replace("CHUNK", str(CHUNK))
    with open(os.path.join(work, "models.rhai"), "w") as f:
        f.write(text)
    rows.append(f"\n## colmean under each model, same {size / 2**30:.2f} GiB .npy, -j 2, page cache warm\n")
    rows.append("| model | settings | wall (median) | GB/s | peak RSS (MiB) | samples (s) |")
    rows.append("|---|---|---|---|---|---|")
    for model, settings in MODELS.items():
        out = os.path.join(work, "results", f"{model}.csv")

        def run():
            if os.path.exists(out):
                os.remove(out)
            return timed([args.flowrun, "-q", "models.rhai", "-j", "2", f"results/{model}.csv"], cwd=work)

        try:
            samples = [run() for _ in range(args.reps)]
        except SystemExit as e:  # e.g. a build without the `mpi` feature
            rows.append(f"| {model} | {settings} | failed: {str(e).splitlines()[-1][:120]} | | | |")
            continue
        t = statistics.median(x[0] for x in samples)
        r = statistics.median(x[1] for x in samples)
        if args.verbose:
            print(f"  colmean {model}: {fmt(t)} RSS {r:.0f} MiB", file=sys.stderr)
        rows.append(f"| {model} | {settings} | {fmt(t)} | {size / t / 1e9:.2f} | {r:.0f} | "
                    f"{', '.join(f'{x[0]:.2f}' for x in samples)} |")
    # Every model must give the same bytes (issue 3's guarantee); a benchmark that broke it would
    # be measuring something else.
    outs = {m: open(os.path.join(work, "results", f"{m}.csv"), "rb").read()
            for m in MODELS if os.path.exists(os.path.join(work, "results", f"{m}.csv"))}
    same = len(set(outs.values())) <= 1
    rows.append(f"\nResults bitwise identical across {', '.join(outs)}: {'yes' if same else 'NO'}.")


# ---------------------------------------------------------------------------------------------
# async
# ---------------------------------------------------------------------------------------------


ASYNC_WF = """let cfg = config(#{ base: "http://127.0.0.1:8000", n: 500 });
rule("all", #{ input: "results/fetch.txt" });
rule("fetch", #{
    output: "results/fetch.txt",
    model: "async",
    concurrency: 100,
    params: #{ base: cfg.base, n: cfg.n },
    items: |job| { let u = []; for i in 0..job.params.n { u.push(`${job.params.base}/p${i}`); } u },
    map: |job, url| http_get(url, #{ timeout_ms: 30000 }),
    init: 0,
    reduce: |acc, r| { if r.status != 200 { throw `status ${r.status}`; } acc + 1 },
    finish: |job, n| write_text(job.output[0], `${n}\n`),
});
"""

# A new connection for every request (HTTP/1.0), as simple asyncio code is usually written.
PY_ASYNCIO = """import asyncio, sys
host, port, n = "127.0.0.1", int(sys.argv[1]), int(sys.argv[2])
async def get(sem, i):
    async with sem:
        r, w = await asyncio.open_connection(host, port)
        w.write(f"GET /p{i} HTTP/1.0\\r\\nHost: {host}\\r\\n\\r\\n".encode())
        await w.drain()
        data = await r.read()
        w.close()
        assert data.startswith(b"HTTP/1.0 200"), data[:40]
        return len(data)
async def main():
    sem = asyncio.Semaphore(100)
    res = await asyncio.gather(*(get(sem, i) for i in range(n)))
    assert len(res) == n
asyncio.run(main())
"""

# The floor a client can reach: 100 keep-alive connections, each taking the next item as soon as
# its previous answer is read (no ordering, no per-item work beyond reading the answer).
PY_KEEPALIVE = """import asyncio, sys
host, port, n = "127.0.0.1", int(sys.argv[1]), int(sys.argv[2])
items = iter(range(n))
async def worker():
    r, w = await asyncio.open_connection(host, port)
    got = 0
    for i in items:
        w.write(f"GET /p{i} HTTP/1.1\\r\\nHost: {host}\\r\\n\\r\\n".encode())
        head = await r.readuntil(b"\\r\\n\\r\\n")
        assert head.startswith(b"HTTP/1.1 200"), head[:40]
        length = int(head.lower().split(b"content-length:")[1].split(b"\\r\\n")[0])
        await r.readexactly(length)
        got += 1
    w.close()
    return got
async def main():
    assert sum(await asyncio.gather(*(worker() for _ in range(100)))) == n
asyncio.run(main())
"""

PY_SERIAL = """import sys, urllib.request
port, n = int(sys.argv[1]), int(sys.argv[2])
for i in range(n):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/p{i}") as r:
        assert r.status == 200
"""


# Requests to 127.0.0.1 go straight there, whatever proxy the environment names.
DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))
NO_PROXY_ENV = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}


class SlowServer:
    """`bench/slow_server.py` in its own process: answers each request 50 ms after it arrives."""

    def __init__(self, python):
        self.proc = subprocess.Popen([python, os.path.join(ROOT, "bench", "slow_server.py"),
                                      "--delay-ms", "50"], stdout=subprocess.PIPE, text=True)
        words = self.proc.stdout.readline().split()
        self.port, self.loop = int(words[1]), words[3]

    def take_log(self):
        """(arrived, answered, connection) of every request since the last call, by arrival."""
        with DIRECT.open(f"http://127.0.0.1:{self.port}/__log") as r:
            return sorted(json.loads(line) for line in r.read().decode().splitlines())

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


def timeline(started, ended, log, window, delay=0.05):
    """Where one run's wall time went, from the server's log: start-up until the first request
    arrived; the turnaround from an answer to the request it frees a window slot for (the k-th
    answer lets request k + window start), median and worst; the time after the last answer;
    and how late the server answered (beyond `delay`), its own share of the time."""
    answers = sorted(a for _, a, _ in log)
    turns = [log[k + window][0] - answers[k] for k in range(len(log) - window)]
    return {
        "start": log[0][0] - started,
        "turn": statistics.median(turns) if turns else math.nan,
        "turn_max": max(turns, default=math.nan),
        "exit": ended - answers[-1],
        "late_max": max(b - a - delay for a, b, _ in log),
        "conns": len({c for _, _, c in log}),
    }


def fetch(args, rows):
    # The server and the Python clients run on the venv's Python when there is one: it has
    # uvloop for the server (the clients keep asyncio's own loop, as the target names it).
    python_exe = args.python if os.path.exists(args.python) else sys.executable
    srv = SlowServer(python_exe)
    port, n = srv.port, args.n
    work = os.path.join(args.workdir, "async")

    # Every client alike, e.g. `--client-nice -10` to keep other work on a shared machine out of it.
    nice = ["nice", "-n", str(args.client_nice)] if args.client_nice else []

    def flowrun_in(binary, name):
        # Each binary in its own directory, so that their stores do not mix.
        run_dir = os.path.join(work, name)
        os.makedirs(run_dir, exist_ok=True)
        with open(os.path.join(run_dir, "wf.rhai"), "w") as f:
            f.write(ASYNC_WF)

        def run():
            shutil.rmtree(os.path.join(run_dir, "results"), ignore_errors=True)
            r = timed(nice + [binary, "-q", "wf.rhai", "-j", "2", "--config", f"base=http://127.0.0.1:{port}",
                       "--config", f"n={n}"], cwd=run_dir, env=NO_PROXY_ENV)
            assert open(os.path.join(run_dir, "results", "fetch.txt")).read().strip() == str(n)
            return r
        return run

    def python(code):
        return lambda: timed(nice + [python_exe, "-c", code, str(port), str(n)], env=NO_PROXY_ENV)

    # (name, run once, repetitions, requests in flight)
    variants = [("flowrun async, concurrency 100", flowrun_in(args.flowrun, "flowrun"), args.reps, 100)]
    if args.baseline:
        variants.append(("baseline flowrun async, concurrency 100", flowrun_in(args.baseline, "baseline"),
                         args.reps, 100))
    variants += [
        ("Python asyncio, new connection per request, semaphore 100", python(PY_ASYNCIO), args.reps, 100),
        ("Python asyncio, 100 keep-alive connections (floor)", python(PY_KEEPALIVE), args.reps, 100),
        ("serial (urllib, one at a time)", python(PY_SERIAL), args.serial_reps, 1),
    ]
    variants = [v for v in variants if v[2] > 0]  # `--serial-reps 0` leaves the slow one out
    samples = {name: [] for name, _, _, _ in variants}
    try:
        # Interleaved: every variant once per round, so a change in load touches all alike.
        for rnd in range(max(reps for _, _, reps, _ in variants)):
            for name, fn, reps, window in variants:
                if rnd < reps:
                    srv.take_log()
                    t0 = time.monotonic()
                    took, rss, _cpu = fn()
                    log = srv.take_log()
                    assert len(log) == n, f"{name}: the server saw {len(log)} requests, not {n}"
                    samples[name].append((took, rss, timeline(t0, t0 + took, log, window)))
    finally:
        # Never leave the server behind (it would also hold the caller's output pipe open).
        srv.stop()
    ideal = math.ceil(n / 100) * 0.05
    res = {}
    for name, s in samples.items():
        med = {k: statistics.median(x[2][k] for x in s) for k in s[0][2]}
        res[name] = (statistics.median(x[0] for x in s), statistics.median(x[1] for x in s), med,
                     [x[0] for x in s])
        if args.verbose:
            print(f"  {name}: {fmt(res[name][0])} {[round(x, 3) for x in res[name][3]]} {med}", file=sys.stderr)
    fr = res["flowrun async, concurrency 100"][0]
    py = res["Python asyncio, new connection per request, semaphore 100"][0]
    rows.append(f"\n## async, {n} GETs, 50 ms each, 127.0.0.1 (ideal {ideal:.2f} s at concurrency 100; "
                f"server on {srv.loop})\n")
    rows.append("| variant | wall (median) | × ideal | time / flowrun | start → 1st request | turnaround "
                "median / max | last answer → exit | server late, max | connections | peak RSS (MiB) | "
                "samples (s) |")
    rows.append("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, (t, r, m, s) in res.items():
        rows.append(f"| {name} | {fmt(t)} | {t / ideal:.2f}× | {t / fr:.2f}× | {m['start'] * 1000:.1f} ms | "
                    f"{m['turn'] * 1000:.2f} / {m['turn_max'] * 1000:.1f} ms | {m['exit'] * 1000:.1f} ms | "
                    f"{m['late_max'] * 1000:.1f} ms | {m['conns']:.0f} | {r:.0f} | "
                    f"{', '.join(f'{x:.3f}' for x in s)} |")
    rows.append(f"\nflowrun: {fr / ideal:.2f}× the ideal (target ≤ 1.2×), {fr / py:.2f}× Python asyncio "
                f"(target ≤ 1×). Wall times include process start and (flowrun) workflow load.")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target")
    p.add_argument("--flowrun", default=os.path.join(target, "release", "flowrun"))
    p.add_argument("--python", default=os.path.join(target, "pyenv", "bin", "python"),
                   help="a Python with NumPy (default: $CARGO_TARGET_DIR/pyenv/bin/python)")
    p.add_argument("--baseline", help="another flowrun binary to measure the same way, interleaved "
                   "(colmean and async)")
    p.add_argument("--npy", help="an existing 16,777,216 × 16 float64 .npy to use instead of making one")
    p.add_argument("--only", default="colmean,models,async")
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--serial-reps", type=int, default=1)
    p.add_argument("--n", type=int, default=500, help="async: how many GETs")
    p.add_argument("--client-nice", type=int, default=0,
                   help="async: run every client under `nice -n N` (negative N needs root)")
    p.add_argument("--workdir", default=os.path.join(ROOT, "target", "bench-data"))
    p.add_argument("--out", help="also write the tables to this file")
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    rows = [f"Data steps, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} CPUs, "
            f"load average at start {os.getloadavg()[0]:.2f}, {args.reps} repetitions (medians)"
            + (f", async clients at nice {args.client_nice}." if args.client_nice else ".")]
    only = args.only.split(",")
    if "colmean" in only:
        colmean(args, rows)
    if "models" in only:
        colmean_models(args, rows)
    if "async" in only:
        fetch(args, rows)
    text = "\n".join(rows) + "\n"
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    sys.exit(main())
