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
    `--baseline` adds another flowrun binary, measured the same way;
  - NumPy in memory: `np.load(path).mean(axis=0)`;
  - NumPy memory-mapped, summed in chunks of 65,536 rows;
  - `cat file > /dev/null` (the read-bandwidth limit).
The page cache is warmed first (one untimed `cat`); repetitions are interleaved. Wall time, GB/s (file bytes / wall) and peak
RSS (GNU time, %M) are reported as medians.

async: 500 HTTP GETs to a 127.0.0.1 server (threaded, listen backlog 1024) that answers each
request after 50 ms, by flowrun `model: "async", concurrency: 100`, by Python asyncio (raw HTTP
over `asyncio.open_connection`, a semaphore of 100) and serially (urllib, one at a time). The ideal
is 500 / 100 × 50 ms = 0.25 s.
"""
import argparse
import http.server
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

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


def colmean(args, rows):
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
    size = os.path.getsize(os.path.realpath(link))
    subprocess.run(["cat", link], stdout=subprocess.DEVNULL, check=True)  # warm the page cache

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


# ---------------------------------------------------------------------------------------------
# async
# ---------------------------------------------------------------------------------------------


class Slow(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def do_GET(self):
        time.sleep(0.05)
        body = f"page {self.path}\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


class Server(http.server.ThreadingHTTPServer):
    request_queue_size = 1024
    daemon_threads = True


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

PY_ASYNCIO = """import asyncio, sys
base_host, port, n = "127.0.0.1", int(sys.argv[1]), int(sys.argv[2])
async def get(sem, i):
    async with sem:
        r, w = await asyncio.open_connection(base_host, port)
        w.write(f"GET /p{i} HTTP/1.0\\r\\nHost: {base_host}\\r\\n\\r\\n".encode())
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

PY_SERIAL = """import sys, urllib.request
port, n = int(sys.argv[1]), int(sys.argv[2])
for i in range(n):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/p{i}") as r:
        assert r.status == 200
"""


def fetch(args, rows):
    srv = Server(("127.0.0.1", 0), Slow)
    port = srv.server_address[1]
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    work = os.path.join(args.workdir, "async")
    os.makedirs(work, exist_ok=True)
    with open(os.path.join(work, "wf.rhai"), "w") as f:
        f.write(ASYNC_WF)
    n = 500

    def flowrun():
        shutil.rmtree(os.path.join(work, "results"), ignore_errors=True)
        r = timed([args.flowrun, "-q", "wf.rhai", "-j", "2", "--config", f"base=http://127.0.0.1:{port}",
                   "--config", f"n={n}"], cwd=work)
        assert open(os.path.join(work, "results", "fetch.txt")).read().strip() == str(n)
        return r

    variants = [
        ("flowrun async, concurrency 100", flowrun, args.reps),
        ("Python asyncio (open_connection), semaphore 100",
         lambda: timed([sys.executable, "-c", PY_ASYNCIO, str(port), str(n)]), args.reps),
        ("serial (urllib, one at a time)", lambda: timed([sys.executable, "-c", PY_SERIAL, str(port), str(n)]),
         args.serial_reps),
    ]
    res = {}
    for name, fn, reps in variants:
        samples = [fn() for _ in range(reps)]
        t = statistics.median(s[0] for s in samples)
        r = statistics.median(s[1] for s in samples)
        res[name] = (t, r, [s[0] for s in samples])
        if args.verbose:
            print(f"  {name}: {fmt(t)} {[round(s[0], 3) for s in samples]} RSS {r:.0f} MiB", file=sys.stderr)
    srv.shutdown()
    ideal = n / 100 * 0.05
    fr = res["flowrun async, concurrency 100"][0]
    py = res["Python asyncio (open_connection), semaphore 100"][0]
    rows.append(f"\n## async, {n} GETs, 50 ms each, 127.0.0.1 (ideal {ideal:.2f} s at concurrency 100)\n")
    rows.append("| variant | wall (median) | × ideal | time / flowrun | peak RSS (MiB) | samples (s) |")
    rows.append("|---|---|---|---|---|---|")
    for name, (t, r, s) in res.items():
        rows.append(f"| {name} | {fmt(t)} | {t / ideal:.2f}× | {t / fr:.2f}× | {r:.0f} | "
                    f"{', '.join(f'{x:.2f}' for x in s)} |")
    rows.append(f"\nflowrun: {fr / ideal:.2f}× the ideal (target ≤ 1.2×), {fr / py:.2f}× Python asyncio "
                f"(target ≤ 1×). Wall times include process start and (flowrun) workflow load.")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target")
    p.add_argument("--flowrun", default=os.path.join(target, "release", "flowrun"))
    p.add_argument("--python", default=os.path.join(target, "pyenv", "bin", "python"),
                   help="a Python with NumPy (default: $CARGO_TARGET_DIR/pyenv/bin/python)")
    p.add_argument("--baseline", help="another flowrun binary to measure the same way, interleaved")
    p.add_argument("--npy", help="an existing 16,777,216 × 16 float64 .npy to use instead of making one")
    p.add_argument("--only", default="colmean,async")
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--serial-reps", type=int, default=1)
    p.add_argument("--workdir", default=os.path.join(ROOT, "target", "bench-data"))
    p.add_argument("--out", help="also write the tables to this file")
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    rows = [f"Data steps, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} CPUs, "
            f"load average at start {os.getloadavg()[0]:.2f}, {args.reps} repetitions (medians)."]
    only = args.only.split(",")
    if "colmean" in only:
        colmean(args, rows)
    if "async" in only:
        fetch(args, rows)
    text = "\n".join(rows) + "\n"
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    sys.exit(main())
