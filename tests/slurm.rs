//! `--executor slurm` against a real SLURM: each test starts its own single-node cluster
//! (`munged`, `slurmctld`, `slurmd`, no slurmdbd) in a temporary directory with
//! `scripts/slurm.sh`, runs the real flowrun binary against it, and stops it by pid when done
//! (docs/cluster-testing.md). Nothing is skipped: without SLURM installed
//! (`bash scripts/setup-tests.sh`) these tests fail and say so.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{run_bounded, wait_until, Background, Project, Run};
use nix::sys::signal::Signal;

/// A running test cluster, stopped when dropped.
struct Cluster {
    dir: tempfile::TempDir,
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/slurm.sh")
}

impl Cluster {
    fn start() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("flowrun-slurm-")
            .tempdir_in("/tmp")
            .expect("temp dir");
        // munged needs every directory above its socket searchable.
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        let mut cmd = Command::new("bash");
        cmd.arg(script()).arg("start").arg(dir.path().join("c"));
        let run = Background::start(cmd).finish(Duration::from_secs(90));
        assert_eq!(
            run.code, 0,
            "cannot start the test cluster (install SLURM with `bash scripts/setup-tests.sh`)\n{}",
            run.stderr
        );
        Cluster { dir }
    }

    fn conf(&self) -> PathBuf {
        self.dir.path().join("c/slurm.conf")
    }

    /// flowrun in `p` against this cluster.
    fn cmd(&self, p: &Project, args: &[&str]) -> Command {
        let mut c = p.cmd(&["--executor", "slurm", "--poll-interval", "1"]);
        c.args(args).env("SLURM_CONF", self.conf());
        c
    }

    fn run(&self, p: &Project, args: &[&str]) -> Run {
        Background::start(self.cmd(p, args)).finish(Duration::from_secs(150))
    }

    fn spawn(&self, p: &Project, args: &[&str]) -> Background {
        Background::start(self.cmd(p, args))
    }

    /// Every job the cluster knows (finished ones too): id, state, name, comment.
    fn queue(&self) -> Vec<(String, String, String, String)> {
        let out = Command::new("squeue")
            .args(["-h", "-t", "all", "-o", "%i|%T|%j|%k"])
            .env("SLURM_CONF", self.conf())
            .output()
            .expect("squeue");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| {
                let f: Vec<&str> = l.splitn(4, '|').collect();
                (f[0].into(), f[1].into(), f[2].into(), f[3].into())
            })
            .collect()
    }

    /// The comments (job labels) of the jobs in `state`, sorted.
    fn labels_in(&self, state: &str) -> Vec<String> {
        let mut v: Vec<String> = self
            .queue()
            .into_iter()
            .filter(|j| j.1 == state)
            .map(|j| j.3)
            .collect();
        v.sort();
        v
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let mut cmd = Command::new("bash");
        cmd.arg(script()).arg("stop").arg(self.dir.path().join("c"));
        let _ = Background::start(cmd).finish(Duration::from_secs(90));
    }
}

/// Files below `dir`, relative, outside `.flowrun`, with their bytes.
fn tree(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            let rel = e
                .path()
                .strip_prefix(dir)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            (rel, std::fs::read(e.path()).unwrap())
        })
        .filter(|(rel, _)| !rel.starts_with(".flowrun"))
        .collect();
    out.sort();
    out
}

const MIXED: &str = r#"
let samples = ["a", "b", "c"];
rule("all", #{ input: ["total.txt", "squares.txt", "cubes.txt", "ranks.txt", "host.txt"] });
rule("gen", #{
    output: "data/{s}.txt",
    shell: "seq 1 40 | sed 's/$/ {wildcards.s}/' > {output}",
});
rule("count", #{
    input: "data/{s}.txt",
    output: "counts/{s}.txt",
    run: |job| {
        let n = 0;
        for line in read_lines(job.input[0]) { n += 1; }
        write_text(job.output[0], `${job.wildcards.s} ${n}` + "\n");
    },
});
rule("total", #{
    input: expand("counts/{s}.txt", #{ s: samples }),
    output: "total.txt",
    shell: "cat {input} > {output}",
});
rule("squares", #{
    output: "squares.txt", model: "thread", threads: 2,
    items: |job| { let a = []; for i in 0..500 { a.push(i); } a },
    map: |job, i| (i * i).to_float() / 7.0,
    reduce: |acc, v| acc + v, init: 0.0,
    finish: |job, t| write_text(job.output[0], `${t}` + "\n"),
});
rule("cubes", #{
    output: "cubes.txt", model: "process", procs: 2,
    items: |job| { let a = []; for i in 0..300 { a.push(i); } a },
    map: |job, i| (i * i * i).to_float() / 3.0,
    reduce: |acc, v| acc + v, init: 0.0,
    finish: |job, t| write_text(job.output[0], `${t}` + "\n"),
});
rule("ranks", #{
    output: "ranks.txt", model: MPI_MODEL, ranks: 2,
    items: |job| { let a = []; for i in 0..300 { a.push(i); } a },
    map: |job, i| i.to_float().sqrt(),
    reduce: |acc, v| acc + v, init: 0.0,
    finish: |job, t| write_text(job.output[0], `${t}` + "\n"),
});
rule("host", #{ output: "host.txt", local: true, shell: "echo here > {output}" });
"#;

#[test]
fn a_mixed_workflow_gives_byte_identical_results_on_the_cluster() {
    let cluster = Cluster::start();
    // The `mpi` model's map/reduce form needs flowrun built with MPI; without it the same
    // rule runs under `thread`, on both sides.
    let model = if cfg!(feature = "mpi") {
        "mpi"
    } else {
        "thread"
    };
    let text = MIXED.replace("MPI_MODEL", &format!("\"{model}\""));
    let local = Project::new();
    local.file("wf.rhai", &text);
    local.run(&["wf.rhai"]).code(0);
    let remote = Project::new();
    remote.file("wf.rhai", &text);
    let run = cluster.run(&remote, &["wf.rhai"]).code(0);
    assert_eq!(tree(remote.path()), tree(local.path()), "{}", run.stderr);
    // Every job but the local one and the target went through SLURM, once, named by its
    // label, all under one run name.
    let queue = cluster.queue();
    let mut labels: Vec<&str> = queue.iter().map(|j| j.3.as_str()).collect();
    labels.sort();
    assert_eq!(
        labels,
        [
            "count[s=a]",
            "count[s=b]",
            "count[s=c]",
            "cubes",
            "gen[s=a]",
            "gen[s=b]",
            "gen[s=c]",
            "ranks",
            "squares",
            "total"
        ]
    );
    assert!(queue.iter().all(|j| j.1 == "COMPLETED"), "{queue:?}");
    assert!(queue
        .iter()
        .all(|j| j.2 == queue[0].2 && j.2.starts_with("flowrun-")));
    // Logs and exit-status files where docs/cluster.md says.
    let id = &queue.iter().find(|j| j.3 == "count[s=b]").unwrap().0;
    assert!(remote.exists(&format!(".flowrun/slurm/count/s=b/{id}.log")));
    assert!(remote.exists(&format!(".flowrun/slurm/count/s=b/{id}.exit")));
    // Nothing to do the second time, and the store holds no submission any more.
    cluster
        .run(&remote, &["wf.rhai"])
        .code(0)
        .stderr_has("nothing to be done")
        .stderr_lacks("following");
}

#[test]
fn a_job_gets_its_threads_and_srun_steps_inherit_them() {
    let cluster = Cluster::start();
    let p = Project::new();
    p.file(
        "wf.rhai",
        r#"
rule("all", #{ input: ["one.txt", "two.txt", "step.txt"] });
rule("one", #{ output: "one.txt", shell: "nproc > {output}" });
rule("two", #{ output: "two.txt", threads: 2, shell: "nproc > {output}" });
rule("step", #{ output: "step.txt", threads: 2,
    shell: "srun bash -c 'echo $SLURM_CPUS_PER_TASK' > {output}" });
"#,
    );
    cluster.run(&p, &["wf.rhai"]).code(0);
    assert_eq!(p.read("one.txt"), "1\n");
    assert_eq!(p.read("two.txt"), "2\n");
    assert_eq!(p.read("step.txt"), "2\n");
    // The CPUs SLURM allotted, as it reports them.
    let out = Command::new("scontrol")
        .args(["show", "job", "-o"])
        .env("SLURM_CONF", cluster.conf())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let two = text
        .lines()
        .find(|l| l.contains("Comment=two"))
        .expect("job two");
    assert!(two.contains("NumCPUs=2"), "{two}");
}

#[test]
fn a_failing_job_is_reported_with_its_exit_code_and_log_tail() {
    let cluster = Cluster::start();
    let p = Project::new();
    p.file(
        "wf.rhai",
        r#"
rule("all", #{ input: ["bad.txt", "good.txt"] });
rule("bad", #{ output: "bad.txt", shell: "echo partial > {output}; echo something broke >&2; exit 3" });
rule("good", #{ output: "good.txt", shell: "echo fine > {output}" });
"#,
    );
    let run = cluster.run(&p, &["-k", "wf.rhai"]).code(1);
    let id = &cluster
        .queue()
        .iter()
        .find(|j| j.3 == "bad")
        .unwrap()
        .0
        .clone();
    run.stderr_has(&format!("SLURM job {id} failed with exit code 1: "))
        .stderr_has("exited with status 3")
        .stderr_has(&format!("log: .flowrun/slurm/bad/{id}.log"))
        .stderr_has("| something broke")
        .stderr_has("its outputs were removed");
    assert!(!p.exists("bad.txt"));
    assert_eq!(p.read("good.txt"), "fine\n");
}

#[test]
fn what_a_job_cost_on_its_node_comes_back_to_the_trace_and_benchmark() {
    let cluster = Cluster::start();
    let p = Project::new();
    // The job writes the kernel's own peak of its resident memory (VmHWM, KiB): the truth.
    p.file(
        "wf.rhai",
        r#"
rule("big", #{
    output: "big.txt",
    benchmark: "bench/big.tsv",
    shell: "python3 -c 'import re; b = bytearray(200 * 1024 * 1024); b[::4096] = b\"x\" * len(b[::4096]); open(\"{output}\", \"w\").write(re.search(r\"VmHWM:\\s+(\\d+)\", open(\"/proc/self/status\").read()).group(1))'",
});
"#,
    );
    cluster
        .run(&p, &["wf.rhai", "-v", "--trace", "t.jsonl"])
        .code(0)
        .stderr_has("peak RSS 2");
    let truth = p.read("big.txt").trim().parse::<f64>().unwrap() * 1024.0;
    let end = p
        .events("t.jsonl")
        .into_iter()
        .find(|e| e["event"] == "job_end" && e["label"] == "big")
        .expect("job_end of big");
    let usage = &end["usage"];
    let reported = usage["max_rss"].as_f64().unwrap();
    assert!(
        (reported - truth).abs() / truth <= 0.05,
        "reported {reported}, truth {truth}"
    );
    assert!(usage["cpu_user"].as_f64().unwrap() + usage["cpu_system"].as_f64().unwrap() > 0.0);
    let bench = p.read("bench/big.tsv");
    let max_rss_mib: f64 = bench
        .lines()
        .nth(1)
        .unwrap()
        .split('\t')
        .nth(2)
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (max_rss_mib * 1024.0 * 1024.0 - truth).abs() / truth <= 0.05,
        "{bench}"
    );
}

#[test]
fn a_job_over_its_memory_is_reported_in_words() {
    let cluster = Cluster::start();
    let p = Project::new();
    p.file(
        "wf.rhai",
        r#"
rule("hog", #{ output: "hog.txt", resources: #{ mem_mb: 50 },
    shell: "python3 -c 'import time; a = bytearray(400 * 1024 * 1024); time.sleep(20)'; touch {output}" });
"#,
    );
    let run = cluster.run(&p, &["wf.rhai"]).code(1);
    let id = cluster.queue()[0].0.clone();
    run.stderr_has(&format!(
        "SLURM job {id} was killed for using more memory than its --mem=50M (raise `resources.mem_mb`)"
    ))
    .stderr_has("exceeded memory limit");
    assert_eq!(cluster.labels_in("FAILED"), ["hog"]);
}

#[test]
fn a_job_over_its_time_is_reported_in_words() {
    let cluster = Cluster::start();
    let p = Project::new();
    p.file(
        "wf.rhai",
        r#"
rule("slow", #{ output: "slow.txt", resources: #{ runtime: 1 },
    shell: "echo started; sleep 300; touch {output}" });
"#,
    );
    let run = cluster.run(&p, &["wf.rhai"]).code(1);
    let id = cluster.queue()[0].0.clone();
    run.stderr_has(&format!(
        "SLURM job {id} ran past its time limit and was stopped (TIMEOUT) (--time=1 minutes; raise `resources.runtime`)"
    ))
    .stderr_has("| started");
    assert_eq!(cluster.labels_in("TIMEOUT"), ["slow"]);
}

#[test]
fn ctrl_c_cancels_queued_and_running_jobs_with_one_scancel_and_cleans_up() {
    let cluster = Cluster::start();
    let p = Project::new();
    p.file(
        "wf.rhai",
        r#"
rule("all", #{ input: expand("out/{i}.txt", #{ i: [1, 2, 3, 4, 5] }) });
rule("slow", #{ output: "out/{i}.txt", shell: "echo partial > {output}; sleep 120; echo done >> {output}" });
"#,
    );
    let bg = cluster.spawn(&p, &["wf.rhai"]);
    // Two run on the two CPUs, three wait in the queue.
    wait_until(Duration::from_secs(60), Duration::from_millis(200), || {
        let running = cluster.labels_in("RUNNING").len();
        let pending = cluster.labels_in("PENDING").len();
        let partial = (1..=5).any(|i| p.exists(&format!("out/{i}.txt")));
        if running == 2 && pending == 3 && partial {
            Ok(())
        } else {
            Err(format!("{running} running, {pending} pending"))
        }
    });
    bg.signal(Signal::SIGINT);
    let run = bg.finish(Duration::from_secs(60)).code(130);
    run.stderr_has("interrupted");
    // Nothing is left in the queue, and no partial output is left behind.
    assert_eq!(
        cluster.labels_in("CANCELLED").len(),
        5,
        "{:?}",
        cluster.queue()
    );
    assert!(cluster.queue().iter().all(|j| j.1 == "CANCELLED"));
    for i in 1..=5 {
        assert!(!p.exists(&format!("out/{i}.txt")), "out/{i}.txt was left");
    }
    // The next run starts them afresh: nothing to follow.
    let again = cluster.run(&p, &["-n", "wf.rhai"]).code(0);
    assert_eq!(again.planned().len(), 6, "{}", again.stdout);
}

#[test]
fn a_killed_flowrun_is_followed_by_a_run_that_reattaches_instead_of_resubmitting() {
    let cluster = Cluster::start();
    let p = Project::new();
    p.file(
        "wf.rhai",
        r#"
rule("all", #{ input: "sum.txt" });
rule("work", #{ output: "w/{i}.txt", shell: "sleep 4; echo {wildcards.i} > {output}" });
rule("sum", #{ input: expand("w/{i}.txt", #{ i: [1, 2, 3, 4] }), output: "sum.txt",
    shell: "cat {input} > {output}" });
"#,
    );
    let bg = cluster.spawn(&p, &["wf.rhai"]);
    wait_until(Duration::from_secs(60), Duration::from_millis(100), || {
        let n = cluster.queue().len();
        if n == 4 {
            Ok(())
        } else {
            Err(format!("{n} jobs submitted"))
        }
    });
    bg.signal(Signal::SIGKILL);
    let _ = bg.finish(Duration::from_secs(10));
    let run = cluster.run(&p, &["wf.rhai"]).code(0);
    run.stderr_has("note: following 4 SLURM job(s) an earlier flowrun submitted");
    assert_eq!(p.read("sum.txt"), "1\n2\n3\n4\n");
    // Each job was submitted exactly once.
    let labels: Vec<String> = cluster.queue().into_iter().map(|j| j.3).collect();
    let mut sorted = labels.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        ["sum", "work[i=1]", "work[i=2]", "work[i=3]", "work[i=4]"],
        "{labels:?}"
    );
}

#[test]
fn a_refused_submission_is_a_clear_error_and_the_rest_still_runs() {
    let cluster = Cluster::start();
    let p = Project::new();
    p.file(
        "wf.rhai",
        r#"
rule("all", #{ input: ["bad.txt", "good.txt"] });
rule("bad", #{ output: "bad.txt", resources: #{ slurm_partition: "nowhere" }, shell: "touch {output}" });
rule("good", #{ output: "good.txt", shell: "echo fine > {output}" });
"#,
    );
    cluster
        .run(&p, &["-k", "wf.rhai"])
        .code(1)
        .stderr_has("sbatch refused the job: sbatch: error: invalid partition specified: nowhere")
        .stderr_has("hint: `sinfo -s` lists the partitions");
    assert_eq!(p.read("good.txt"), "fine\n");
    assert_eq!(cluster.labels_in("COMPLETED"), ["good"]);
}

#[test]
fn an_output_that_never_appears_is_named_after_the_latency_wait() {
    let cluster = Cluster::start();
    let p = Project::new();
    p.file(
        "wf.rhai",
        r#"rule("lazy", #{ output: "never.txt", shell: "true" });"#,
    );
    let run = cluster.run(&p, &["--latency-wait", "1", "wf.rhai"]).code(1);
    let id = cluster.queue()[0].0.clone();
    run.stderr_has(&format!(
        "SLURM job {id} finished, but its output `never.txt` did not appear here within 1 s (--latency-wait"
    ));
}

#[test]
fn bad_settings_are_refused_before_anything_is_submitted() {
    let p = Project::new();
    p.file(
        "wf.rhai",
        r#"rule("a", #{ output: "a.txt", resources: #{ slurm_extra: "--qos=low -c 4" }, shell: "touch {output}" });"#,
    );
    common::run_bounded({
        let mut c = p.cmd(&["--executor", "slurm", "wf.rhai"]);
        c.env("SLURM_CONF", "/nonexistent");
        c
    })
    .workflow_error()
    .stderr_has("rule `a`: `slurm_extra` sets `-c`, which flowrun sets itself (set `threads` (or `procs`) on the rule)");
    assert!(!p.exists("a.txt"));
    p.run(&["--executor", "slurm", "--submit-rate", "0", "wf.rhai"])
        .workflow_error()
        .stderr_has("`--submit-rate 0` must be more than 0");
    p.run(&["--executor", "pbs", "wf.rhai"])
        .workflow_error()
        .stderr_has("--executor `pbs` is not an executor")
        .stderr_has("the executors are `local` (the default) and `slurm`");
    run_bounded({
        let mut c = p.cmd(&["wf.rhai"]);
        c.env("FLOWRUN_EXECUTOR", "cloud");
        c
    })
    .workflow_error()
    .stderr_has("FLOWRUN_EXECUTOR `cloud` is not an executor");
    p.file(
        "wf.rhai",
        r#"rule("a", #{ output: "a.txt", resources: #{ slurm_partition: 3 }, shell: "touch {output}" });"#,
    );
    p.run(&["-n", "wf.rhai"])
        .workflow_error()
        .stderr_has("rule `a`: `resources` `slurm_partition` must be a string, not an integer");
}

#[test]
fn a_retry_is_submitted_with_the_threads_and_memory_of_its_attempt() {
    let cluster = Cluster::start();
    let p = Project::new();
    p.file(
        "wf.rhai",
        r#"
rule("grow", #{ output: "grow.txt", retries: 2,
    threads: |w, attempt| if attempt == 1 { 1 } else { 2 },
    resources: #{ mem_mb: |w, attempt| attempt * 100 },
    shell: "echo $SLURM_CPUS_PER_TASK $SLURM_MEM_PER_NODE {threads} {resources.mem_mb} >> tries.txt; [ {resources.mem_mb} -ge 300 ]; touch {output}" });
"#,
    );
    cluster
        .run(&p, &["wf.rhai"])
        .code(0)
        .stderr_has("attempt 3 takes threads=2, mem_mb=300");
    assert_eq!(
        p.read("tries.txt"),
        "1 100 1 100\n2 200 2 200\n2 300 2 300\n"
    );
    assert_eq!(cluster.labels_in("COMPLETED"), ["grow"]);
    assert_eq!(cluster.labels_in("FAILED"), ["grow", "grow"]);
}
