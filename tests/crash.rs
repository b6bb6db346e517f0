//! Kill -9 at any moment (issue 6, DESIGN.md §5): a workflow of a few hundred jobs mixing shell,
//! `run` and map/reduce jobs under the `thread`, `process`, `hybrid`, `chunked` and `async`
//! models is killed with SIGKILL at seeded random moments, many times, then run to the end.
//!
//! Checked after every kill and at the end:
//! - no finished job is redone: a job whose outputs all existed with a record and no incomplete
//!   mark when flowrun was killed never shows up in a later `Running` line;
//! - no incomplete output is taken as done: every output the store vouches for (record, no
//!   incomplete mark) has exactly the bytes of a clean run;
//! - the final outputs equal a clean run's byte for byte, and a further run does nothing.
//!
//! `FLOWRUN_CRASH_SEED` picks another seed; `FLOWRUN_CRASH_KILLS` another number of kills.

mod common;
use common::Project;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

const N: usize = 50;
const M: usize = 10;

const WORKFLOW: &str = r#"
let cfg = config(#{ n: 50, m: 10 });
let n = range(0, cfg.n).collect();
let m = range(0, cfg.m).collect();
rule("all", #{ input: "final.txt" });
rule("final", #{
    input: expand("pair/{i}.txt", #{ i: n })
        + expand("mr/{model}/{i}.txt", #{ model: ["process", "hybrid"], i: m })
        + expand("chunk/{i}.csv", #{ i: m }),
    output: "final.txt",
    run: |job| {
        let s = "";
        for f in job.input { s += `${f}: ` + read_text(f); }
        write_text(job.output[0], s);
    },
});
// A shell job writes its output in two steps, so a kill can leave half of it.
rule("gen", #{
    output: "gen/{i}.txt",
    shell: "printf 'part-{wildcards.i}' > {output}; sleep 0.02; printf ' whole\n' >> {output}",
});
rule("sq", #{
    input: "gen/{i}.txt",
    output: "sq/{i}.txt",
    run: |job| write_text(job.output[0], "sq " + read_text(job.input[0])),
});
rule("mt", #{
    input: "gen/{i}.txt",
    output: "mr/thread/{i}.txt",
    threads: 2,
    items: |job| range(0, 200).collect(),
    map: |job, x| x * x + job.wildcards.i.parse_int(),
    reduce: |a, b| a + b,
    init: 0,
    finish: |job, r| write_text(job.output[0], `thread ${r}` + "\n"),
});
rule("ma", #{
    input: "gen/{i}.txt",
    output: "mr/async/{i}.txt",
    model: "async",
    concurrency: 4,
    items: range(0, 8).collect(),
    map: |job, x| sleep_ms(1),
    finish: |job, r| write_text(job.output[0], `async ${r.len()} ${job.wildcards.i}` + "\n"),
});
rule("pair", #{
    input: ["gen/{i}.txt", "sq/{i}.txt", "mr/thread/{i}.txt", "mr/async/{i}.txt"],
    output: "pair/{i}.txt",
    shell: "cat {input} > {output}",
});
rule("mp", #{
    output: "mr/process/{i}.txt",
    model: "process",
    procs: 2,
    items: |job| range(0, 40).collect(),
    map: |job, x| x * 3 + job.wildcards.i.parse_int(),
    reduce: |a, b| a + b,
    finish: |job, r| write_text(job.output[0], `process ${r}` + "\n"),
});
rule("mh", #{
    output: "mr/hybrid/{i}.txt",
    model: "hybrid",
    procs: 2,
    threads: 1,
    items: |job| range(0, 40).collect(),
    map: |job, x| x * 5 + job.wildcards.i.parse_int(),
    reduce: |a, b| a + b,
    finish: |job, r| write_text(job.output[0], `hybrid ${r}` + "\n"),
});
rule("npy", #{
    output: "npy/{i}.npy",
    run: |job| write_random_npy(job.output[0], 3000, 3, job.wildcards.i.parse_int()),
});
rule("chunk", #{
    input: "npy/{i}.npy",
    output: "chunk/{i}.csv",
    model: "chunked",
    chunk: 500,
    map: |job, rows| rows.col_sums(),
    reduce: |a, b| a + b,
    finish: |job, sums| write_csv(job.output[0], sums),
});
"#;

/// Every job with outputs, as its `Running` label and its outputs.
fn jobs() -> Vec<(String, Vec<String>)> {
    let mut jobs = Vec::new();
    for i in 0..N {
        jobs.push((format!("gen[i={i}]"), vec![format!("gen/{i}.txt")]));
        jobs.push((format!("sq[i={i}]"), vec![format!("sq/{i}.txt")]));
        jobs.push((format!("mt[i={i}]"), vec![format!("mr/thread/{i}.txt")]));
        jobs.push((format!("ma[i={i}]"), vec![format!("mr/async/{i}.txt")]));
        jobs.push((format!("pair[i={i}]"), vec![format!("pair/{i}.txt")]));
    }
    for i in 0..M {
        jobs.push((format!("mp[i={i}]"), vec![format!("mr/process/{i}.txt")]));
        jobs.push((format!("mh[i={i}]"), vec![format!("mr/hybrid/{i}.txt")]));
        jobs.push((format!("npy[i={i}]"), vec![format!("npy/{i}.npy")]));
        jobs.push((format!("chunk[i={i}]"), vec![format!("chunk/{i}.csv")]));
    }
    jobs.push(("final".into(), vec!["final.txt".into()]));
    jobs
}

/// splitmix64: a seeded generator with no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Every file under `dir` except flowrun's own state, by relative path. Hidden temporary
/// files of atomic writers (`.name.flowrun-tmp-<pid>-<n>`) are counted apart.
fn tree(dir: &Path) -> (BTreeMap<String, Vec<u8>>, usize) {
    let mut files = BTreeMap::new();
    let mut tmp = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let path = e.path();
            let rel = path
                .strip_prefix(dir)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if rel == ".flowrun" || rel == "wf.rhai" {
                continue;
            }
            if path.is_dir() {
                stack.push(path);
            } else if e.file_name().to_string_lossy().contains(".flowrun-tmp-") {
                tmp += 1;
            } else {
                files.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    (files, tmp)
}

/// What the store vouches for: outputs with a record and no incomplete mark.
fn vouched(dir: &Path) -> BTreeSet<String> {
    let db = dir.join(".flowrun/store.db");
    if !db.exists() {
        return BTreeSet::new();
    }
    let conn = rusqlite::Connection::open(&db).expect("open the store");
    let read = |sql: &str| -> BTreeSet<String> {
        // A run killed before it made the tables leaves a store without them.
        let Ok(mut stmt) = conn.prepare(sql) else {
            return BTreeSet::new();
        };
        stmt.query_map([], |r| r.get::<_, String>(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    let records = read("SELECT path FROM records");
    let incomplete = read("SELECT path FROM incomplete");
    records.difference(&incomplete).cloned().collect()
}

/// The `Running` labels in a stderr text.
fn running(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("Running "))
        .map(|l| l.split_once("] ").map_or(l, |(_, j)| j).to_string())
        .collect()
}

/// A flowrun run whose output goes to files (not pipes: a job's `sleep` may outlive a killed
/// flowrun for a moment, and must not hold the test up).
struct Attempt {
    child: std::process::Child,
    stderr: std::path::PathBuf,
}

fn start(p: &Project, logs: &Path, n: usize, args: &[&str]) -> Attempt {
    let stderr = logs.join(format!("attempt-{n}.err"));
    let child = p
        .cmd(args)
        .stdout(std::fs::File::create(logs.join(format!("attempt-{n}.out"))).unwrap())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .stdin(Stdio::null())
        .spawn()
        .expect("start flowrun");
    Attempt { child, stderr }
}

impl Attempt {
    /// Waits at most `limit`; `None` if still running.
    fn wait(&mut self, limit: Duration) -> Option<i32> {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status.code().unwrap_or(-1));
            }
            if start.elapsed() >= limit {
                return None;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

impl Drop for Attempt {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The whole scenario for one seed; returns (kills, jobs seen finished before a kill).
fn crash_and_recover(seed: u64, kills: usize, cores: &[&str]) -> (usize, usize) {
    let logs = tempfile::tempdir().unwrap();
    // The clean run.
    let clean = Project::new();
    clean.file("wf.rhai", WORKFLOW);
    let t0 = Instant::now();
    let mut a = start(&clean, logs.path(), 0, &["wf.rhai", "-j2"]);
    let code = a.wait(Duration::from_secs(120));
    assert_eq!(code, Some(0), "clean run failed:\n{}", a.stderr());
    let clean_time = t0.elapsed();
    let (expected, _) = tree(clean.path());
    let jobs = jobs();
    assert_eq!(
        expected.len(),
        jobs.iter().map(|j| j.1.len()).sum::<usize>(),
        "the job list does not match the workflow"
    );
    let owner: HashMap<&str, &str> = jobs
        .iter()
        .flat_map(|(label, outs)| outs.iter().map(move |o| (o.as_str(), label.as_str())))
        .collect();

    let p = Project::new();
    p.file("wf.rhai", WORKFLOW);
    let mut rng = Rng(seed);
    let mut finished: BTreeSet<String> = BTreeSet::new();
    let max_delay = (clean_time.as_millis() as u64 / 3).max(100);
    let mut n = 1;
    let mut killed = 0;
    let check_after = |finished: &mut BTreeSet<String>, attempt: &Attempt, n: usize| {
        // No finished job ran again.
        let ran = running(&attempt.stderr());
        for job in &ran {
            assert!(
                !finished.contains(job),
                "attempt {n} (seed {seed}) redid `{job}`, which had finished before a kill\n{}",
                attempt.stderr()
            );
        }
        // What the store vouches for is whole.
        let (files, _) = tree(p.path());
        let vouched = vouched(p.path());
        for path in &vouched {
            let Some(want) = expected.get(path) else {
                continue;
            };
            // A missing file is not taken as done: flowrun sees it is gone.
            let Some(got) = files.get(path) else {
                continue;
            };
            assert_eq!(
                got, want,
                "attempt {n} (seed {seed}): `{path}` has a record and no incomplete mark, but is not whole"
            );
        }
        // In dependency order: a job counts as finished only if what it needs is finished
        // too (a job downstream of one whose output the test removed may rightly rerun).
        for (label, outs) in &jobs {
            if !upstream(label).iter().all(|u| finished.contains(u)) {
                continue;
            }
            if outs
                .iter()
                .all(|o| vouched.contains(o) && files.contains_key(o))
            {
                finished.insert(label.clone());
            }
        }
        let _ = &owner;
    };
    while killed < kills {
        let args: Vec<&str> = vec!["wf.rhai", cores[rng.below(cores.len() as u64) as usize]];
        let mut a = start(&p, logs.path(), n, &args);
        // Kill points spread over the whole run, with extra weight on the first moments
        // (loading, planning, opening the store).
        let delay = if rng.below(4) == 0 {
            rng.below(80)
        } else {
            rng.below(max_delay)
        };
        match a.wait(Duration::from_millis(delay)) {
            Some(code) => {
                // It finished before the kill: fine, but go on killing from a clean slate
                // of work.
                assert_eq!(code, 0, "attempt {n} failed:\n{}", a.stderr());
                check_after(&mut finished, &a, n);
                // Make work again by removing a few outputs (their jobs are not "finished"
                // any more).
                for _ in 0..5 {
                    let (label, outs) = &jobs[rng.below(jobs.len() as u64) as usize];
                    for o in outs {
                        let _ = std::fs::remove_file(p.path().join(o));
                    }
                    finished.remove(label);
                    // Everything downstream reruns too.
                    for down in downstream(label) {
                        finished.remove(&down);
                    }
                }
            }
            None => {
                a.kill();
                killed += 1;
                check_after(&mut finished, &a, n);
            }
        }
        n += 1;
    }
    // Run to the end.
    let mut a = start(&p, logs.path(), n, &["wf.rhai", "-j2"]);
    let code = a.wait(Duration::from_secs(120));
    assert_eq!(code, Some(0), "the final run failed:\n{}", a.stderr());
    check_after(&mut finished, &a, n);
    let seen = finished.len();
    let (got, tmp) = tree(p.path());
    let missing: Vec<&String> = expected.keys().filter(|k| !got.contains_key(*k)).collect();
    assert!(missing.is_empty(), "missing after recovery: {missing:?}");
    for (path, want) in &expected {
        assert_eq!(
            &got[path], want,
            "seed {seed}: `{path}` differs from the clean run"
        );
    }
    let extra: Vec<&String> = got.keys().filter(|k| !expected.contains_key(*k)).collect();
    assert!(extra.is_empty(), "unexpected files: {extra:?}");
    assert_eq!(
        tmp, 0,
        "seed {seed}: temporary files of interrupted atomic writes were left behind"
    );
    // Nothing left to do.
    let again = p.run(&["wf.rhai", "-j2"]).code(0);
    assert!(
        again.ran().is_empty(),
        "a run after recovery redid {:?}",
        again.ran()
    );
    eprintln!(
        "seed {seed}: {killed} kills over {} attempts, {seen} jobs finished before some kill were never redone",
        n
    );
    (killed, seen)
}

/// Labels of the jobs `label` needs.
fn upstream(label: &str) -> Vec<String> {
    let rule = label.split('[').next().unwrap_or(label);
    let i = label
        .split_once("[i=")
        .map(|(_, r)| r.trim_end_matches(']').to_string())
        .unwrap_or_default();
    match rule {
        "sq" | "mt" | "ma" => vec![format!("gen[i={i}]")],
        "pair" => ["gen", "sq", "mt", "ma"]
            .iter()
            .map(|r| format!("{r}[i={i}]"))
            .collect(),
        "chunk" => vec![format!("npy[i={i}]")],
        "final" => {
            let mut all: Vec<String> = (0..N).map(|i| format!("pair[i={i}]")).collect();
            for i in 0..M {
                for r in ["mp", "mh", "chunk"] {
                    all.push(format!("{r}[i={i}]"));
                }
            }
            all
        }
        _ => Vec::new(),
    }
}

/// Labels of the jobs downstream of `label` (they rerun when its output is removed).
fn downstream(label: &str) -> Vec<String> {
    let rule = label.split('[').next().unwrap_or(label);
    let i = label
        .split_once("[i=")
        .map(|(_, r)| r.trim_end_matches(']').to_string());
    let mut out = vec!["final".to_string()];
    if let Some(i) = i {
        match rule {
            "gen" => {
                for r in ["sq", "mt", "ma", "pair"] {
                    out.push(format!("{r}[i={i}]"));
                }
            }
            "sq" | "mt" | "ma" => out.push(format!("pair[i={i}]")),
            "npy" => out.push(format!("chunk[i={i}]")),
            _ => {}
        }
    }
    out
}

#[test]
fn kill_9_at_random_moments_loses_nothing_and_redoes_nothing_finished() {
    let seed = env_or("FLOWRUN_CRASH_SEED", 0x5EED_0006);
    let kills = env_or("FLOWRUN_CRASH_KILLS", 50) as usize;
    let (killed, seen) = crash_and_recover(seed, kills, &["-j1", "-j2", "-j3"]);
    assert_eq!(killed, kills);
    assert!(
        seen > 0,
        "no job ever finished before a kill: the kills came too early"
    );
}
