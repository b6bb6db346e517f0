#!/usr/bin/env python3
"""flowrun vs Snakemake, GNU Make and Ninja on the same generated workflows.

Run on demand (never as part of the test suite), from the repository root:

    cargo build --release && python3 bench/run.py            # the full suite (long)
    python3 bench/run.py --quick --only flowrun,make         # seconds: the smoke version

Each scenario is generated once per tool under `--workdir` (default `target/bench`), and every
tool runs every phase in the same invocation of this script, so ratios compare like with like.
Timing is wall clock around the child process (spawned by Python, ~1 ms of overhead included for
every tool alike); peak RSS is the child's `ru_maxrss` from `wait4` (the largest process of the
tree that the tool waited for, so for Make and Ninja it is mostly Make/Ninja themselves).

See bench/README.md for the scenarios, phases and options.
"""
import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOOLS = ["flowrun", "snakemake", "make", "ninja"]
# The version scripts/setup-tests.sh puts into target/pyenv (which the twin tests use), so that a
# venv this script has to create itself measures the same Snakemake.
SNAKEMAKE_VERSION = "9.27.1"
PHASES = ["dry", "full", "noop", "touch"]
PHASE_TITLES = {
    "dry": "dry run",
    "full": "full run -j2",
    "noop": "no-op",
    "touch": "rerun, one input changed",
}


# ---------------------------------------------------------------------------------------------
# Scenarios: each is a list of steps; a step maps one file to another with `cp`.
# ---------------------------------------------------------------------------------------------


class Scenario:
    """kind: fanout (N copies + an aggregate), chain (N copies in a line), wild (N samples × R rules)."""

    def __init__(self, name, kind, n, rules=1):
        self.name, self.kind, self.n, self.rules = name, kind, n, rules

    @property
    def jobs(self):
        if self.kind == "fanout":
            return self.n + 1
        if self.kind == "chain":
            return self.n
        return self.n * self.rules

    def sources(self):
        if self.kind == "chain":
            return ["src/0.txt"]
        if self.kind == "fanout":
            return [f"src/{i}.txt" for i in range(self.n)]
        return [f"src/s{i}.txt" for i in range(self.n)]

    def out_dirs(self):
        if self.kind == "fanout":
            return ["out"]
        if self.kind == "chain":
            return ["chain"]
        return [f"w{r}" for r in range(1, self.rules + 1)]

    # --- flowrun -----------------------------------------------------------------------------
    def flowrun(self):
        n = self.n
        if self.kind == "fanout":
            return f"""let ids = (0..{n}).collect();
rule("all", #{{ input: "agg.txt" }});
rule("agg", #{{
    input: expand("out/{{i}}.txt", #{{ i: ids }}),
    output: "agg.txt",
    shell: "ls out | wc -l > {{output}}",
}});
rule("copy", #{{ input: "src/{{i}}.txt", output: "out/{{i}}.txt", shell: "cp {{input}} {{output}}" }});
"""
        if self.kind == "chain":
            return f"""rule("all", #{{ input: "chain/{n}.txt" }});
rule("c1", #{{ input: "src/0.txt", output: "chain/1.txt", shell: "cp {{input}} {{output}}" }});
for k in 2..={n} {{
    rule(`c${{k}}`, #{{ input: `chain/${{k - 1}}.txt`, output: `chain/${{k}}.txt`, shell: "cp {{input}} {{output}}" }});
}}
"""
        lines = [
            f"let ids = (0..{n}).collect().map(|i| `s${{i}}`);",
            f'rule("all", #{{ input: expand("w{self.rules}/{{s}}.txt", #{{ s: ids }}) }});',
        ]
        for r in range(1, self.rules + 1):
            src = "src" if r == 1 else f"w{r - 1}"
            lines.append(
                f'rule("step{r}", #{{ input: "{src}/{{s}}.txt", output: "w{r}/{{s}}.txt", '
                f'shell: "cp {{input}} {{output}}" }});'
            )
        return "\n".join(lines) + "\n"

    # --- Snakemake ---------------------------------------------------------------------------
    def snakefile(self):
        n = self.n
        if self.kind == "fanout":
            return f"""IDS = [str(i) for i in range({n})]
rule all:
    input: "agg.txt"
rule agg:
    input: expand("out/{{i}}.txt", i=IDS)
    output: "agg.txt"
    shell: "ls out | wc -l > {{output}}"
rule copy:
    input: "src/{{i}}.txt"
    output: "out/{{i}}.txt"
    shell: "cp {{input}} {{output}}"
"""
        if self.kind == "chain":
            return f"""wildcard_constraints:
    k=r"\\d+"
rule all:
    input: "chain/{n}.txt"
rule step:
    input: lambda w: "src/0.txt" if int(w.k) == 1 else f"chain/{{int(w.k) - 1}}.txt"
    output: "chain/{{k}}.txt"
    shell: "cp {{input}} {{output}}"
"""
        out = [f'IDS = ["s" + str(i) for i in range({n})]',
               "rule all:", f'    input: expand("w{self.rules}/{{s}}.txt", s=IDS)']
        for r in range(1, self.rules + 1):
            src = "src" if r == 1 else f"w{r - 1}"
            out += [f"rule step{r}:", f'    input: "{src}/{{s}}.txt"',
                    f'    output: "w{r}/{{s}}.txt"', '    shell: "cp {input} {output}"']
        return "\n".join(out) + "\n"

    def snakemake_batch_rule(self):
        """The Snakefile's rule with one input per sample, which `--batch` can slice, or None.

        A fan-out's aggregate and the wildcard scenario's `all` need every sample; a chain's
        steps each have one input, so a chain cannot be built in batches.
        """
        return {"fanout": "agg", "wild": "all"}.get(self.kind)

    # --- Make --------------------------------------------------------------------------------
    def makefile(self):
        n = self.n
        if self.kind == "fanout":
            outs = " ".join(f"out/{i}.txt" for i in range(n))
            return (f".PHONY: all\nall: agg.txt\nOUTS := {outs}\n"
                    "agg.txt: $(OUTS)\n\tls out | wc -l > $@\n"
                    "out/%.txt: src/%.txt\n\tcp $< $@\n")
        if self.kind == "chain":
            lines = [".PHONY: all", f"all: chain/{n}.txt", "chain/1.txt: src/0.txt", "\tcp $< $@"]
            for k in range(2, n + 1):
                lines += [f"chain/{k}.txt: chain/{k - 1}.txt", "\tcp $< $@"]
            return "\n".join(lines) + "\n"
        outs = " ".join(f"w{self.rules}/s{i}.txt" for i in range(n))
        lines = [".PHONY: all", f"all: {outs}"]
        for r in range(1, self.rules + 1):
            src = "src" if r == 1 else f"w{r - 1}"
            lines += [f"w{r}/%.txt: {src}/%.txt", "\tcp $< $@"]
        # Intermediate files are not deleted and not considered missing-but-optional.
        lines.append(".SECONDARY:")
        return "\n".join(lines) + "\n"

    # --- Ninja -------------------------------------------------------------------------------
    def ninja(self):
        n = self.n
        lines = ["rule cp", "  command = cp $in $out",
                 "rule agg", "  command = ls out | wc -l > $out"]
        if self.kind == "fanout":
            for i in range(n):
                lines.append(f"build out/{i}.txt: cp src/{i}.txt")
            lines.append("build agg.txt: agg " + " ".join(f"out/{i}.txt" for i in range(n)))
            lines.append("default agg.txt")
        elif self.kind == "chain":
            lines.append("build chain/1.txt: cp src/0.txt")
            for k in range(2, n + 1):
                lines.append(f"build chain/{k}.txt: cp chain/{k - 1}.txt")
            lines.append(f"default chain/{n}.txt")
        else:
            for r in range(1, self.rules + 1):
                src = "src" if r == 1 else f"w{r - 1}"
                for i in range(n):
                    lines.append(f"build w{r}/s{i}.txt: cp {src}/s{i}.txt")
            lines.append("default " + " ".join(f"w{self.rules}/s{i}.txt" for i in range(n)))
        return "\n".join(lines) + "\n"


FULL = [
    Scenario("fan-out 1k", "fanout", 1000),
    Scenario("fan-out 10k", "fanout", 10_000),
    Scenario("fan-out 100k", "fanout", 100_000),
    Scenario("chain 1k", "chain", 1000),
    Scenario("wildcards 10k×5", "wild", 10_000, 5),
]
QUICK = [
    Scenario("fan-out 20", "fanout", 20),
    Scenario("chain 10", "chain", 10),
    Scenario("wildcards 5×3", "wild", 5, 3),
]


# ---------------------------------------------------------------------------------------------
# Running
# ---------------------------------------------------------------------------------------------


def ensure_tools(wanted, args):
    """Returns {tool: argv prefix}; installs what is missing where it can."""
    found = {}
    if "flowrun" in wanted:
        exe = os.path.abspath(args.flowrun)
        if not os.path.exists(exe):
            sys.exit(f"flowrun binary `{exe}` not found: build it with `cargo build --release` "
                     f"or pass --flowrun")
        found["flowrun"] = [exe]
    # Make also prepares Snakemake's tree for the large scenarios (see prep_with_make).
    need = set(wanted) | ({"make"} if "snakemake" in wanted else set())
    apt = [p for t, p in (("make", "make"), ("ninja", "ninja-build")) if t in need and not shutil.which(t)]
    if apt:
        if os.geteuid() != 0:
            sys.exit(f"missing {' '.join(apt)}: install them (apt-get install {' '.join(apt)})")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        print(f"installing {' '.join(apt)} with apt-get ...", file=sys.stderr)
        subprocess.run(["apt-get", "update", "-q"], env=env, check=False, stdout=subprocess.DEVNULL)
        subprocess.run(["apt-get", "install", "-y", "-q", *apt], env=env, check=True,
                       stdout=subprocess.DEVNULL)
    for t in ("make", "ninja"):
        if t in wanted:
            found[t] = [shutil.which(t)]
    if "snakemake" in wanted:
        venv = os.path.abspath(args.venv)
        exe = os.path.join(venv, "bin", "snakemake")
        if not os.path.exists(exe):
            print(f"installing Snakemake {SNAKEMAKE_VERSION} into {venv} (pip, from PyPI) ...",
                  file=sys.stderr)
            subprocess.run([sys.executable, "-m", "venv", venv], check=True)
            subprocess.run([os.path.join(venv, "bin", "pip"), "install", "-q",
                            f"snakemake=={SNAKEMAKE_VERSION}"], check=True)
        found["snakemake"] = [exe]
    return found


def version(exe):
    out = subprocess.run(exe + ["--version"], capture_output=True, text=True)
    return (out.stdout.strip() or out.stderr.strip()).splitlines()[-1] if out.returncode == 0 else "?"


def command(tool, exe, phase, jobs):
    j = str(jobs)
    if tool == "flowrun":
        base = exe + ["-q", "wf.rhai"]
        return base + ["-n"] if phase == "dry" else base + ["-j", j]
    if tool == "snakemake":
        base = exe + ["-s", "Snakefile", "--quiet", "all", "--cores", j]
        return base + ["-n"] if phase == "dry" else base
    if tool == "make":
        base = exe + ["-s", "-f", "Makefile"]
        return base + ["-n"] if phase == "dry" else base + ["-j", j]
    if tool == "ninja":
        base = exe + ["--quiet"] if ninja_has_quiet(exe) else exe
        return base + ["-n"] if phase == "dry" else base + ["-j", j]
    raise ValueError(tool)


_quiet = {}


def ninja_has_quiet(exe):
    key = exe[0]
    if key not in _quiet:
        out = subprocess.run(exe + ["--help"], capture_output=True, text=True)
        _quiet[key] = "--quiet" in (out.stdout + out.stderr)
    return _quiet[key]


TIME = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None


class Failed(Exception):
    pass


class TimedOut(Exception):
    pass


def timed(argv, cwd, cap):
    """Runs argv; returns (seconds, peak RSS in MiB)."""
    err_path = os.path.join(cwd, ".bench-stderr")
    rss_path = os.path.join(cwd, ".bench-rss")
    # GNU time reports the tool's own peak: the ru_maxrss that Python would see from wait4
    # includes Python's own resident size, inherited through vfork/exec.
    wrapped = [TIME, "-f", "%M", "-o", rss_path] + argv if TIME else argv
    with open(err_path, "wb") as err:
        t0 = time.perf_counter()
        p = subprocess.Popen(wrapped, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=err, start_new_session=True)
        deadline = t0 + cap if cap else None
        reaped = False
        try:
            while True:
                pid, status, ru = os.wait4(p.pid, os.WNOHANG if deadline else 0)
                if pid:
                    reaped = True
                    break
                if time.perf_counter() > deadline:
                    raise TimedOut()
                time.sleep(0.002)
            took = time.perf_counter() - t0
        finally:
            # On a timeout or an interrupt the tool's whole session dies; after a normal exit
            # this kills only what the tool left running in it (nothing, usually).
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            if not reaped:
                os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        tail = open(err_path, errors="replace").read()[-1500:]
        raise Failed(f"`{' '.join(argv)}` in {cwd} exited with {p.returncode}:\n{tail}")
    if TIME:
        try:
            return took, int(open(rss_path).read().split()[-1]) / 1024
        except (OSError, ValueError, IndexError):
            return took, float("nan")
    return took, ru.ru_maxrss / 1024


def write(path, text):
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def setup(sc, tool, root):
    d = os.path.join(root, sc.name.replace(" ", "_").replace("×", "x"), tool)
    if os.path.exists(d):
        shutil.rmtree(d)
    os.makedirs(os.path.join(d, "src"))
    for i, s in enumerate(sc.sources()):
        with open(os.path.join(d, s), "w") as f:
            f.write(f"{i}\n")
    name, text = {
        "flowrun": ("wf.rhai", sc.flowrun),
        "snakemake": ("Snakefile", sc.snakefile),
        "make": ("Makefile", sc.makefile),
        "ninja": ("build.ninja", sc.ninja),
    }[tool]
    write(os.path.join(d, name), text())
    return d


def clean(sc, tool, d):
    for sub in sc.out_dirs() + [".flowrun", ".snakemake", "agg.txt", ".ninja_log", ".ninja_deps"]:
        p = os.path.join(d, sub)
        if os.path.isdir(p):
            shutil.rmtree(p)
        elif os.path.exists(p):
            os.remove(p)
    if tool == "make":  # Make does not create directories for its targets
        for sub in sc.out_dirs():
            os.makedirs(os.path.join(d, sub), exist_ok=True)


def prep_build(sc, tool, exe, d, args):
    """The untimed full build that the no-op and rerun phases need; returns how it was made.

    It has its own long limit, --prep-cap (a 100k-job build takes minutes), never the per-run
    cap. Snakemake above --snakemake-max-full-jobs does not build its tree in one run: its time
    per job grows with the size of its DAG (9.27 builds a 10k fan-out at ~1.3 jobs/s, i.e. over
    two hours), see snakemake_prep.
    """
    clean(sc, tool, d)
    if tool == "snakemake" and sc.jobs > args.snakemake_max_full_jobs:
        return snakemake_prep(sc, exe, d, args)
    timed(command(tool, exe, "full", 2), d, args.prep_cap)
    return ""


def snakemake_prep(sc, exe, d, args):
    """Builds Snakemake's large tree in `--batch` slices, or with Make when it cannot be sliced.

    A no-op always follows Snakemake's own build, after which every output has a metadata record
    (`.snakemake/metadata`: code, params, input and software versions) that the no-op reads and
    compares; on a tree built by anyone else there are no records and that work is skipped. So
    Snakemake builds its own tree: `--batch RULE=i/n` plans and runs only the i-th slice of the
    inputs of the rule that needs every sample (the last slice also runs that rule), and slices
    of --snakemake-batch-jobs jobs keep each DAG small (~26 jobs/s at 1,000 jobs a slice).
    A chain has no such rule (and `--snakemake-prep make` asks for it): then Make runs the same
    commands, which gives the lower bound of Snakemake's no-op, without metadata.
    """
    rule = sc.snakemake_batch_rule()
    if args.snakemake_prep == "make" or rule is None:
        prep_with_make(sc, d, args.prep_cap)
        return "tree built untimed by Make (`Makefile.prep`), so without Snakemake's metadata"
    # Snakemake refuses more slices than the rule has inputs (one per sample).
    batches = min(sc.n, -(-sc.jobs // args.snakemake_batch_jobs))
    started = time.perf_counter()
    deadline = started + args.prep_cap
    for i in range(1, batches + 1):
        left = deadline - time.perf_counter()
        if left <= 0:
            raise TimedOut()
        timed(command("snakemake", exe, "full", 2) + ["--batch", f"{rule}={i}/{batches}"], d, left)
    took = time.perf_counter() - started
    meta = os.path.join(d, ".snakemake", "metadata")
    records = len(os.listdir(meta)) if os.path.isdir(meta) else 0
    return (f"tree built untimed by Snakemake itself in {batches} batches (`--batch {rule}=i/{batches}`, "
            f"{took:.0f} s), with metadata records for {records} of {sc.jobs} outputs")


def prep_with_make(sc, d, cap):
    """Builds a tree with Make running the scenario's commands (outputs identical to the tool's)."""
    write(os.path.join(d, "Makefile.prep"), sc.makefile())
    for sub in sc.out_dirs():
        os.makedirs(os.path.join(d, sub), exist_ok=True)
    timed(["make", "-s", "-f", "Makefile.prep", "-j", "2"], d, cap)


def change_input(d, counter):
    path = os.path.join(d, "src", "0.txt" if os.path.exists(os.path.join(d, "src", "0.txt")) else "s0.txt")
    with open(path, "w") as f:
        f.write(f"changed {counter} {time.time_ns()}\n")


def reps_for(args, tool, phase, sc):
    r = args.reps
    if phase == "full" and sc.jobs >= 50_000:
        r = min(r, args.big_full_reps)
    if tool == "snakemake":
        r = min(r, args.snakemake_reps if phase != "full" else 1)
    return max(1, r)


def run_tool(sc, tool, exe, args, results):
    d = setup(sc, tool, args.workdir)
    cap = args.snakemake_cap if tool == "snakemake" else args.cap
    phases = [p for p in PHASES if p in args.phases]

    prep_note = ""  # how the tree was built, told once: on the first phase measured on it

    def record(phase, samples, note=""):
        nonlocal prep_note
        if prep_note and phase in ("noop", "touch"):
            note, prep_note = "; ".join(x for x in (prep_note, note) if x), ""
        results[(sc.name, phase, tool)] = (samples, note)

    if tool == "snakemake" and sc.jobs > args.snakemake_max_jobs:
        for ph in phases:
            record(ph, [], f"skipped (> {args.snakemake_max_jobs} jobs)")
        return
    # Snakemake's own full run is too slow above --snakemake-max-full-jobs (the issue saw 10k
    # not finish in 10 min): skip that phase; prep_build still makes the tree for the later ones.
    if tool == "snakemake" and sc.jobs > args.snakemake_max_full_jobs and "full" in phases:
        record("full", [], f"skipped (> {args.snakemake_max_full_jobs} jobs)")
        phases.remove("full")
    built = False
    for phase in phases:
        samples = []
        n = reps_for(args, tool, phase, sc)
        try:
            if phase == "dry":
                clean(sc, tool, d)
                for _ in range(n):
                    samples.append(timed(command(tool, exe, "dry", 2), d, cap))
            elif phase == "full":
                for _ in range(n):
                    clean(sc, tool, d)
                    samples.append(timed(command(tool, exe, "full", 2), d, cap))
                built = True
            else:
                if not built:
                    try:
                        prep_note = prep_build(sc, tool, exe, d, args)
                    except TimedOut:
                        for rest in phases[phases.index(phase):]:
                            record(rest, [], f"skipped (preparation build > {args.prep_cap:.0f} s)")
                        return
                    built = True
                for i in range(n):
                    if phase == "touch":
                        change_input(d, i)
                        time.sleep(0.01)  # a distinct mtime for Make's sake
                    samples.append(timed(command(tool, exe, phase, 2), d, cap))
            record(phase, samples)
        except TimedOut:
            record(phase, samples, f"> {cap:.0f} s (cap)")
            if phase in ("full",) or not built:
                for rest in phases[phases.index(phase) + 1:]:
                    record(rest, [], "skipped (no full run within the cap)")
                return
        except Failed as e:
            if args.strict:
                raise
            print(f"warning: {e}", file=sys.stderr)
            record(phase, samples, "failed")
        if args.verbose:
            s, note = results[(sc.name, phase, tool)]
            print(f"  {sc.name:18} {phase:5} {tool:9} {fmt_time(med(s)) if s else note}", file=sys.stderr)


def med(samples):
    return statistics.median(t for t, _ in samples) if samples else None


def med_rss(samples):
    return statistics.median(r for _, r in samples) if samples else None


def fmt_time(t):
    if t is None:
        return "–"
    if t < 1:
        return f"{t * 1000:.1f} ms" if t < 0.1 else f"{t * 1000:.0f} ms"
    return f"{t:.2f} s"


def fmt_ratio(a, b):
    if a is None or b is None or b == 0:
        return "–"
    r = a / b
    return f"{r:.2f}×" if r >= 0.1 else f"1/{b / a:.0f}"


def table(scenarios, tools, args, results):
    others = [t for t in tools if t != "flowrun"]
    head = ["scenario", "phase"] + [t for t in tools] + \
        ([f"flowrun/{o}" for o in others] if "flowrun" in tools else []) + \
        [f"RSS {t} (MiB)" for t in tools]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    notes = []
    for sc in scenarios:
        for phase in PHASES:
            if phase not in args.phases:
                continue
            row = [f"{sc.name} ({sc.jobs} jobs)", PHASE_TITLES[phase]]
            times = {}
            for t in tools:
                samples, note = results.get((sc.name, phase, t), ([], "not run"))
                times[t] = med(samples)
                cell = fmt_time(times[t])
                if len(samples) and len(samples) != args.reps:
                    cell += f" (n={len(samples)})"
                if note:
                    notes.append(f"{sc.name}, {PHASE_TITLES[phase]}, {t}: {note}")
                    cell = (cell + " " if times[t] is not None else "") + ("†" if times[t] is None else "")
                row.append(cell)
            if "flowrun" in tools:
                row += [fmt_ratio(times["flowrun"], times[o]) for o in others]
            for t in tools:
                rss = med_rss(results.get((sc.name, phase, t), ([], ""))[0])
                row.append("–" if rss is None else f"{rss:.0f}")
            out.append("| " + " | ".join(row) + " |")
    text = "\n".join(out) + "\n"
    if notes:
        text += "\n" + "\n".join(f"- † {n}" for n in notes) + "\n"
    return text


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny workflows, 2 repetitions (smoke test)")
    p.add_argument("--only", default=",".join(TOOLS), help="tools, comma-separated (default: all)")
    p.add_argument("--scenarios", default="", help="substrings of scenario names to keep, comma-separated")
    p.add_argument("--phases", default=",".join(PHASES), help="dry,full,noop,touch")
    p.add_argument("--reps", type=int, default=None, help="repetitions per phase (default 5; 2 with --quick)")
    p.add_argument("--snakemake-reps", type=int, default=3, help="repetitions for Snakemake (full run: 1)")
    p.add_argument("--big-full-reps", type=int, default=1, help="repetitions of full runs of ≥ 50k jobs")
    p.add_argument("--snakemake-cap", type=float, default=120, help="seconds before a Snakemake run is stopped")
    p.add_argument("--snakemake-max-jobs", type=int, default=20000, help="skip Snakemake above this many jobs")
    p.add_argument("--snakemake-max-full-jobs", type=int, default=2000,
                   help="above this many jobs, skip Snakemake's full run and prepare its tree "
                        "for the later phases as --snakemake-prep says")
    p.add_argument("--snakemake-prep", choices=["batch", "make"], default="batch",
                   help="batch: Snakemake builds its tree itself in --batch slices (the tree a "
                        "user's no-op meets); make: Make builds it, without Snakemake's metadata "
                        "(the lower bound). Scenarios without a rule to slice always use make")
    p.add_argument("--snakemake-batch-jobs", type=int, default=1000,
                   help="about this many jobs per --batch slice (default 1000)")
    p.add_argument("--cap", type=float, default=600, help="seconds before any other timed run is stopped")
    p.add_argument("--prep-cap", type=float, default=900,
                   help="seconds allowed for the untimed full build that no-op/rerun need (default 900)")
    target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target")
    p.add_argument("--flowrun", default=os.path.join(target, "release", "flowrun"),
                   help="the binary (default: $CARGO_TARGET_DIR or target/, release/flowrun)")
    p.add_argument("--venv", default=os.path.join(target, "pyenv"),
                   help="the venv with Snakemake (default: $CARGO_TARGET_DIR or target/, pyenv, "
                        f"made by scripts/setup-tests.sh; Snakemake {SNAKEMAKE_VERSION} is installed "
                        "into it when missing)")
    p.add_argument("--workdir", default=os.path.join(ROOT, "target", "bench"))
    p.add_argument("--out", help="also write the markdown table to this file")
    p.add_argument("--strict", action="store_true", help="stop at the first failing run")
    p.add_argument("-v", "--verbose", action="store_true", help="print each median as it is measured")
    args = p.parse_args()
    args.reps = args.reps or (2 if args.quick else 5)
    args.phases = [x for x in args.phases.split(",") if x]
    tools = [t for t in args.only.split(",") if t]
    for t in tools:
        if t not in TOOLS:
            sys.exit(f"unknown tool `{t}` (tools: {', '.join(TOOLS)})")
    scenarios = QUICK if args.quick else FULL
    if args.scenarios:
        keys = args.scenarios.split(",")
        scenarios = [s for s in scenarios if any(k in s.name for k in keys)]
    exes = ensure_tools(tools, args)
    os.makedirs(args.workdir, exist_ok=True)
    results = {}
    started = time.time()
    for sc in scenarios:
        for t in tools:
            run_tool(sc, t, exes[t], args, results)
    text = table(scenarios, tools, args, results)
    text += f"\n{args.reps} repetitions (medians; n= where fewer), -j2, {os.cpu_count()} CPUs; "
    if "snakemake" in exes:
        text += f"Snakemake {version(exes['snakemake'])} ({exes['snakemake'][0]}). "
    text += f"bench took {time.time() - started:.0f} s.\n"
    print(text)
    if args.out:
        write(args.out, text)
    failed = [k for k, (_, note) in results.items() if note == "failed"]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
