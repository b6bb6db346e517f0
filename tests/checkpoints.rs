//! Checkpoints behave as static workflows do under edits, crashes and Ctrl-C (issue 13): a
//! checkpoint that makes a chunk more or fewer, kill -9 while a checkpoint runs, between passes
//! and while a job after it runs, Ctrl-C during a checkpoint, and `--until`, `-R`, `-k` and
//! `temp()` with jobs that are only known once a checkpoint has run. After each, the files equal
//! a clean run's and a further run does nothing.
//!
//! Every process a test starts is bounded in time and killed when the test ends.

mod common;
use common::{wait_until, Project};

use nix::sys::signal::Signal;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(60);

/// Each sample's lines split two per chunk by a checkpoint, each chunk counted, the counts
/// gathered. A job waits while its `hold_*` file exists, so a test can stop flowrun at a known
/// moment: `hold_split_S` (the checkpoint of sample S has made its directory),
/// `hold_count_S_I` (the count of chunk I has written its output), `hold_plan` (the gathering
/// function of the second pass, which runs once the checkpoints are done).
const WF: &str = r#"
let samples = ["A", "B"];
rule("all", #{ input: expand("summary/{s}.txt", #{ s: samples }) });
rule("split", #{
    input: "data/{s}.txt",
    output: directory("chunks/{s}"),
    checkpoint: true,
    shell: "mkdir -p {output} && split -l 2 {input} {output}/part_ && while [ -e hold_split_{wildcards.s} ]; do sleep 0.05; done",
});
rule("count", #{
    input: "chunks/{s}/part_{i}",
    output: "counts/{s}/{i}.txt",
    shell: "wc -l < {input} > {output} && while [ -e hold_count_{wildcards.s}_{wildcards.i} ]; do sleep 0.05; done",
});
rule("gather", #{
    input: |w| {
        let dir = checkpoint_output("split", w);
        if file_exists(dir) { while file_exists("hold_plan") {} }
        expand("counts/{s}/{i}.txt", #{ s: w.s, i: glob_wildcards(dir + "/part_{i}").i })
    },
    output: "summary/{s}.txt",
    shell: "cat {input} > {output}",
});
"#;

fn lines(n: usize) -> String {
    (1..=n).map(|i| format!("{i}\n")).collect()
}

/// Sample A has `a` lines, B has `b`.
fn project(a: usize, b: usize) -> Project {
    let p = Project::new();
    p.file("wf.rhai", WF)
        .file("data/A.txt", &lines(a))
        .file("data/B.txt", &lines(b));
    p
}

/// Every file the workflow made, with its content.
fn made(p: &Project) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for top in ["chunks", "counts", "summary"] {
        for e in walkdir::WalkDir::new(p.path().join(top)).into_iter().flatten() {
            if e.file_type().is_file() {
                let rel = e.path().strip_prefix(p.path()).unwrap();
                out.insert(
                    rel.to_string_lossy().into_owned(),
                    std::fs::read_to_string(e.path()).unwrap(),
                );
            }
        }
    }
    out
}

/// Checks that `p`'s files equal those of a clean run on the same data and that a further run
/// has nothing to do.
fn equals_a_clean_run(p: &Project) {
    let clean = Project::new();
    clean.file("wf.rhai", WF);
    for s in ["A", "B"] {
        clean.file(&format!("data/{s}.txt"), &p.read(&format!("data/{s}.txt")));
    }
    clean.run(&["wf.rhai", "-j", "2"]).code(0);
    assert_eq!(made(p), made(&clean));
    p.run(&["wf.rhai", "-n"])
        .code(0)
        .stdout_has("nothing to be done");
}

// ---------------------------------------------------------------------------------------------
// A checkpoint that makes more or less

#[test]
fn a_chunk_more_runs_exactly_the_new_chunk_s_job_and_the_gathering() {
    let p = project(4, 2);
    p.run(&["wf.rhai", "-j", "1"]).code(0).stderr_has("done: 8 ran");
    // Two lines more: chunks aa and ab come out the same, ac is new.
    p.file("data/A.txt", &lines(6));
    let run = p.run(&["wf.rhai", "-j", "1"]).code(0);
    assert_eq!(
        run.ran(),
        ["split[s=A]", "count[i=ac,s=A]", "gather[s=A]", "all"]
    );
    run.stderr_lacks("Dropped");
    assert_eq!(p.read("summary/A.txt"), "2\n2\n2\n");
    equals_a_clean_run(&p);
}

#[test]
fn a_chunk_fewer_reruns_the_gathering_names_the_dropped_job_and_removes_its_output() {
    let p = project(6, 2);
    p.run(&["wf.rhai", "-j", "1"]).code(0);
    assert_eq!(p.read("counts/A/ac.txt"), "2\n");
    p.file("data/A.txt", &lines(4));
    let run = p.run(&["wf.rhai", "-j", "1"]).code(0);
    assert_eq!(run.ran(), ["split[s=A]", "gather[s=A]", "all"]);
    run.stderr_has("  Dropped count[i=ac,s=A]: checkpoint split[s=A] no longer leads to it; removed `counts/A/ac.txt`\n");
    assert!(!p.exists("counts/A/ac.txt"));
    assert_eq!(p.read("summary/A.txt"), "2\n2\n");
    equals_a_clean_run(&p);
    // The record went with the file: `--clean` does not take a file made there by hand since
    // for flowrun's.
    p.file("counts/A/ac.txt", "mine\n");
    p.run(&["wf.rhai", "--clean", "-n"])
        .code(0)
        .stdout_has("counts/A/ab.txt\n")
        .stdout_lacks("counts/A/ac.txt");
}

#[test]
fn a_protected_output_of_a_dropped_job_is_kept_and_said() {
    let p = project(6, 2);
    let wf = WF.replace(
        "output: \"counts/{s}/{i}.txt\"",
        "output: protected(\"counts/{s}/{i}.txt\")",
    );
    p.file("wf.rhai", &wf);
    p.run(&["wf.rhai", "-j", "1"]).code(0);
    p.file("data/A.txt", &lines(4));
    p.run(&["wf.rhai", "-j", "1"])
        .code(0)
        .stderr_has("  Dropped count[i=ac,s=A]: checkpoint split[s=A] no longer leads to it; kept `counts/A/ac.txt` (protected)\n");
    assert_eq!(p.read("counts/A/ac.txt"), "2\n");
}

#[test]
fn a_checkpoint_that_fails_drops_nothing() {
    let p = project(6, 4);
    p.run(&["wf.rhai", "-j", "1"]).code(0);
    // B's checkpoint now fails; A's shrinks. With -k, A finishes, B's counts stay as they were.
    let wf = WF.replace("mkdir -p {output} &&", "test {wildcards.s} = A && mkdir -p {output} &&");
    p.file("wf.rhai", &wf).file("data/A.txt", &lines(4));
    p.file("data/B.txt", &lines(3));
    let run = p.run(&["wf.rhai", "-k", "-j", "1"]).code(1);
    run.stderr_has("Dropped count[i=ac,s=A]")
        .stderr_lacks("Dropped count[i=aa,s=B]")
        .stderr_has("pending (their checkpoints did not run)");
    assert_eq!(p.read("counts/B/ab.txt"), "2\n");
}

#[test]
fn a_chain_of_checkpoints_drops_a_whole_branch() {
    // Lines are split in parts of 3 by one checkpoint, each part in lines by another.
    let p = Project::new();
    p.file("in.txt", &lines(6)).file(
        "wf.rhai",
        r#"
rule("all", #{ input: "total.txt" });
rule("split", #{ input: "in.txt", output: directory("parts"), checkpoint: true,
    shell: "mkdir -p {output} && split -l 3 {input} {output}/p_" });
rule("explode", #{ input: "parts/p_{i}", output: directory("lines/{i}"), checkpoint: true,
    shell: "mkdir -p {output} && split -l 1 {input} {output}/l_" });
rule("copy", #{ input: "lines/{i}/l_{j}", output: "copied/{i}/{j}.txt", shell: "cp {input} {output}" });
rule("per_part", #{
    input: |w| {
        let d = checkpoint_output("explode", w);
        expand("copied/{i}/{j}.txt", #{ i: w.i, j: glob_wildcards(d + "/l_{j}").j })
    },
    output: "part/{i}.txt",
    shell: "cat /dev/null {input} > {output}",
});
rule("total", #{
    input: |w| {
        let d = checkpoint_output("split", w);
        expand("part/{i}.txt", #{ i: glob_wildcards(d + "/p_{i}").i })
    },
    output: "total.txt",
    shell: "cat /dev/null {input} > {output}",
});
"#,
    );
    p.run(&["wf.rhai", "-j", "1"]).code(0);
    p.file("in.txt", &lines(3));
    let run = p.run(&["wf.rhai", "-j", "1"]).code(0);
    assert_eq!(run.ran(), ["split", "total", "all"]);
    let dropped: Vec<&str> = run
        .stderr
        .lines()
        .filter_map(|l| l.strip_prefix("  Dropped "))
        .map(|l| l.split(':').next().unwrap())
        .collect();
    assert_eq!(
        dropped,
        [
            "explode[i=ab]",
            "copy[i=ab,j=aa]",
            "copy[i=ab,j=ab]",
            "copy[i=ab,j=ac]",
            "per_part[i=ab]"
        ],
        "{}",
        run.stderr
    );
    run.stderr_has("Dropped explode[i=ab]: checkpoint split no longer leads to it; removed `lines/ab`");
    for gone in ["lines/ab", "copied/ab", "part/ab.txt"] {
        assert!(!p.exists(gone), "{gone} is left");
    }
    assert_eq!(p.read("total.txt"), "1\n2\n3\n");
    assert!(p.run(&["wf.rhai", "-n"]).code(0).planned().is_empty());
}
