//! Checkpoints behave as static workflows do under edits, crashes and Ctrl-C (issue 13): a
//! checkpoint that makes a chunk more or fewer, kill -9 while a checkpoint runs, between passes
//! and while a job after it runs, Ctrl-C during a checkpoint, and `--until`, `-R`, `-k` and
//! `temp()` with jobs that are only known once a checkpoint has run. After each, the files equal
//! a clean run's and a further run does nothing.
//!
//! Every process a test starts is bounded in time and killed when the test ends.

mod common;
use common::{lines, wait_until, Project};

use nix::sys::signal::Signal;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(60);

/// Each sample's lines split two per chunk by a checkpoint, each chunk counted, the counts
/// gathered. A job waits while its `hold_*` file exists, so a test can stop flowrun at a known
/// moment: `hold_split_S` (the checkpoint of sample S has made its directory),
/// `hold_count_S_I` (the count of chunk I has written its output), `hold_plan` (the gathering
/// function of sample S, once the checkpoint of S has run in this project: it left
/// `ran_split_S`).
const WF: &str = r#"
let samples = ["A", "B"];
rule("all", #{ input: expand("summary/{s}.txt", #{ s: samples }) });
rule("split", #{
    input: "data/{s}.txt",
    output: directory("chunks/{s}"),
    checkpoint: true,
    shell: "mkdir -p {output} && split -l 2 {input} {output}/part_ && echo x > ran_split_{wildcards.s} && while [ -e hold_split_{wildcards.s} ]; do sleep 0.05; done",
});
rule("count", #{
    input: "chunks/{s}/part_{i}",
    output: "counts/{s}/{i}.txt",
    shell: "wc -l < {input} > {output} && while [ -e hold_count_{wildcards.s}_{wildcards.i} ]; do sleep 0.05; done",
});
rule("gather", #{
    input: |w| {
        let dir = checkpoint_output("split", w);
        if file_exists("ran_split_" + w.s) { while file_exists("hold_plan") {} }
        expand("counts/{s}/{i}.txt", #{ s: w.s, i: glob_wildcards(dir + "/part_{i}").i })
    },
    output: "summary/{s}.txt",
    shell: "cat {input} > {output}",
});
"#;

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
        for e in walkdir::WalkDir::new(p.path().join(top))
            .into_iter()
            .flatten()
        {
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
    p.run(&["wf.rhai", "-j", "1"])
        .code(0)
        .stderr_has("done: 8 ran");
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
    let run = p.run(&["wf.rhai", "-j", "1", "--trace", "t.jsonl"]).code(0);
    assert_eq!(run.ran(), ["split[s=A]", "gather[s=A]", "all"]);
    run.stderr_has("  Dropped count[i=ac,s=A]: checkpoint split[s=A] no longer leads to it; removed `counts/A/ac.txt`\n");
    // The trace tells it too.
    let notes: Vec<_> = p
        .events("t.jsonl")
        .into_iter()
        .filter(|e| e["event"] == "note" && e["kind"] == "dropped")
        .map(|e| e["text"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        notes,
        ["count[i=ac,s=A]: checkpoint split[s=A] no longer leads to it; removed `counts/A/ac.txt`"]
    );
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
fn a_dropped_job_s_other_outputs_go_with_the_one_its_reader_took() {
    let p = project(6, 2);
    let wf = WF.replace(
        "output: \"counts/{s}/{i}.txt\",\n    shell: \"wc -l < {input} > {output}",
        "output: [\"counts/{s}/{i}.txt\", \"logs/{s}/{i}.log\"],\n    shell: \"echo log > {output[1]} && wc -l < {input} > {output[0]}",
    );
    assert_ne!(wf, WF);
    p.file("wf.rhai", &wf);
    p.run(&["wf.rhai", "-j", "1"]).code(0);
    assert!(p.exists("logs/A/ac.log"));
    p.file("data/A.txt", &lines(4));
    p.run(&["wf.rhai", "-j", "1"])
        .code(0)
        .stderr_has("  Dropped count[i=ac,s=A]: checkpoint split[s=A] no longer leads to it; removed `counts/A/ac.txt`\n")
        .stderr_has("  Dropped count[i=ac,s=A]: checkpoint split[s=A] no longer leads to it; removed `logs/A/ac.log`\n");
    assert!(!p.exists("logs/A/ac.log"));
    assert_eq!(p.read("logs/A/ab.log"), "log\n");
}

#[test]
fn a_gathering_edited_to_take_less_drops_nothing_as_a_static_workflow_would() {
    let p = project(6, 2);
    p.run(&["wf.rhai", "-j", "1"]).code(0);
    // The gathering now takes the first chunk only: its code changed, not the data.
    let wf = WF.replace(
        "glob_wildcards(dir + \"/part_{i}\").i",
        "glob_wildcards(dir + \"/part_{i}\").i.extract(0, 1)",
    );
    p.file("wf.rhai", &wf);
    let run = p
        .run(&["wf.rhai", "-j", "1"])
        .code(0)
        .stderr_lacks("Dropped");
    assert_eq!(run.ran(), ["gather[s=A]", "gather[s=B]", "all"]);
    assert_eq!(p.read("summary/A.txt"), "2\n");
    assert_eq!(p.read("counts/A/ac.txt"), "2\n");
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
    let wf = WF.replace(
        "mkdir -p {output} &&",
        "test {wildcards.s} = A && mkdir -p {output} &&",
    );
    p.file("wf.rhai", &wf).file("data/A.txt", &lines(4));
    p.file("data/B.txt", &lines(3));
    let run = p.run(&["wf.rhai", "-k", "-j", "1"]).code(1);
    run.stderr_has("Dropped count[i=ac,s=A]")
        .stderr_lacks("Dropped count[i=aa,s=B]")
        .stderr_has("pending (their checkpoints did not run)");
    assert_eq!(p.read("counts/B/ab.txt"), "2\n");
}

// ---------------------------------------------------------------------------------------------
// kill -9 and Ctrl-C

/// The outputs the store vouches for: recorded, with no incomplete mark.
fn recorded(p: &Project) -> BTreeSet<String> {
    let Ok(db) = rusqlite::Connection::open_with_flags(
        p.path().join(".flowrun/store.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    ) else {
        return BTreeSet::new();
    };
    let paths = |sql: &str| -> BTreeSet<String> {
        db.prepare(sql)
            .and_then(|mut q| {
                q.query_map([], |r| r.get::<_, String>(0))?
                    .collect::<Result<_, _>>()
            })
            .unwrap_or_default()
    };
    let incomplete = paths("SELECT path FROM incomplete");
    paths("SELECT path FROM records")
        .difference(&incomplete)
        .cloned()
        .collect()
}

/// The output of a job of [`WF`], from its label (`all` has none).
fn output_of(label: &str) -> Option<String> {
    let (rule, rest) = label.split_once('[')?;
    let w: BTreeMap<&str, &str> = rest
        .trim_end_matches(']')
        .split(',')
        .filter_map(|kv| kv.split_once('='))
        .collect();
    Some(match rule {
        "split" => format!("chunks/{}", w["s"]),
        "count" => format!("counts/{}/{}.txt", w["s"], w["i"]),
        _ => format!("summary/{}.txt", w["s"]),
    })
}

/// Every job of a clean run of `p`'s data.
fn all_jobs(p: &Project) -> BTreeSet<String> {
    let clean = Project::new();
    clean.file("wf.rhai", WF);
    for s in ["A", "B"] {
        clean.file(&format!("data/{s}.txt"), &p.read(&format!("data/{s}.txt")));
    }
    clean.run(&["wf.rhai"]).code(0).ran().into_iter().collect()
}

/// Runs `p` with `hold` in place until `ready` holds, kills flowrun with SIGKILL (and, since
/// nobody is left to, its jobs), then runs again without the hold: the rerun does exactly the
/// jobs whose outputs were not vouched for, and the files equal a clean run's.
fn killed_when(p: &Project, hold: &str, ready: impl Fn(&Project) -> bool) {
    p.file(hold, "");
    let mut bg = p.spawn(&["wf.rhai", "-j", "1"]);
    wait_until(LIMIT, Duration::from_millis(20), || {
        if ready(p) {
            Ok(())
        } else {
            Err(format!(
                "flowrun never got to the moment to kill it at ({hold})"
            ))
        }
    });
    bg.groups.extend(common::running_groups(p));
    bg.signal(Signal::SIGKILL);
    common::kill_groups(&bg.groups);
    let _ = bg.finish(LIMIT);
    let done = recorded(p);
    p.remove(hold);
    let rerun = p.run(&["wf.rhai", "-j", "1"]).code(0);
    let ran: BTreeSet<String> = rerun.ran().into_iter().collect();
    let missing: BTreeSet<String> = all_jobs(p)
        .into_iter()
        .filter(|j| output_of(j).is_none_or(|o| !done.contains(&o)))
        .collect();
    assert_eq!(ran, missing, "vouched for at the kill: {done:?}");
    equals_a_clean_run(p);
}

#[test]
fn kill_9_while_a_checkpoint_runs_then_a_rerun_finishes_the_rest() {
    let p = project(6, 4);
    killed_when(&p, "hold_split_B", |p| {
        p.exists("chunks/B/part_ab") && recorded(p).contains("chunks/A")
    });
}

#[test]
fn kill_9_between_passes_then_a_rerun_runs_only_what_follows_the_checkpoints() {
    let p = project(6, 4);
    // The gathering function of the second pass spins while `hold_plan` exists: both
    // checkpoints are recorded, and no job of the second pass has started.
    killed_when(&p, "hold_plan", |p| {
        let done = recorded(p);
        done.contains("chunks/A") && done.contains("chunks/B")
    });
    assert!(!p.exists("hold_plan"));
}

#[test]
fn kill_9_while_a_job_after_the_checkpoint_runs_then_a_rerun_finishes_the_rest() {
    let p = project(6, 4);
    killed_when(&p, "hold_count_A_ab", |p| p.exists("counts/A/ab.txt"));
}

#[test]
fn kill_9_after_a_checkpoint_made_a_chunk_fewer_then_the_rerun_still_drops_its_job() {
    let p = project(6, 4);
    p.run(&["wf.rhai", "-j", "1"]).code(0);
    p.remove("ran_split_A").remove("ran_split_B");
    p.file("data/A.txt", &lines(4)).file("hold_plan", "");
    let mut bg = p.spawn(&["wf.rhai", "-j", "1"]);
    // split[s=A] has run again, without its third chunk; the second pass is held.
    p.wait_for("ran_split_A", LIMIT);
    std::thread::sleep(Duration::from_millis(300));
    assert!(!p.exists("chunks/A/part_ac"));
    bg.groups.extend(common::running_groups(&p));
    bg.signal(Signal::SIGKILL);
    common::kill_groups(&bg.groups);
    let _ = bg.finish(LIMIT);
    assert!(p.exists("counts/A/ac.txt"));
    p.remove("hold_plan");
    // The records tell a dry run what the next run drops; it removes nothing.
    p.run(&["wf.rhai", "-n"])
        .code(0)
        .stderr_has("  Would drop count[i=ac,s=A]: checkpoint split[s=A] no longer leads to it; would remove `counts/A/ac.txt`\n");
    assert!(p.exists("counts/A/ac.txt"));
    let run = p.run(&["wf.rhai", "-j", "1"]).code(0).stderr_has("  Dropped count[i=ac,s=A]: checkpoint split[s=A] no longer leads to it; removed `counts/A/ac.txt`\n");
    assert_eq!(run.ran(), ["gather[s=A]", "all"]);
    equals_a_clean_run(&p);
}

#[test]
fn ctrl_c_during_a_checkpoint_removes_its_partial_directory_and_exits_130() {
    let p = project(6, 4);
    p.file("hold_split_A", "");
    let mut bg = p.spawn(&["wf.rhai", "-j", "1"]);
    p.wait_for("chunks/A/part_ab", LIMIT);
    bg.groups.extend(common::running_groups(&p));
    bg.signal(Signal::SIGINT);
    bg.finish(LIMIT)
        .code(130)
        .stderr_has("Stopping 1 running job(s)")
        .stderr_has("interrupted: ")
        .stderr_has("partial outputs were removed");
    assert!(
        !p.exists("chunks/A"),
        "the checkpoint's partial directory is left"
    );
    p.remove("hold_split_A");
    let run = p.run(&["wf.rhai", "-j", "1"]).code(0);
    assert_eq!(run.ran_sorted().len(), all_jobs(&p).len());
    equals_a_clean_run(&p);
}

// ---------------------------------------------------------------------------------------------
// Options with jobs that are known only once a checkpoint has run

#[test]
fn until_a_rule_after_the_checkpoint_runs_it_in_a_later_pass_and_stops_there() {
    let p = project(6, 4);
    let run = p.run(&["wf.rhai", "--until", "count", "-j", "1"]).code(0);
    assert_eq!(
        run.ran_sorted(),
        [
            "count[i=aa,s=A]",
            "count[i=aa,s=B]",
            "count[i=ab,s=A]",
            "count[i=ab,s=B]",
            "count[i=ac,s=A]",
            "split[s=A]",
            "split[s=B]"
        ]
    );
    assert!(!p.exists("summary"));
    let dry = p.run(&["wf.rhai", "-n"]).code(0);
    assert_eq!(dry.planned(), ["gather[s=A]", "gather[s=B]", "all"]);
}

#[test]
fn until_a_file_a_job_after_the_checkpoint_makes_runs_that_job() {
    let p = project(6, 4);
    let run = p
        .run(&["wf.rhai", "--until", "counts/A/ab.txt", "-j", "1"])
        .code(0);
    // Which chunks a checkpoint makes is unknown before it runs: both run.
    assert_eq!(run.ran(), ["split[s=A]", "split[s=B]", "count[i=ab,s=A]"]);
    assert_eq!(p.read("counts/A/ab.txt"), "2\n");
    // A file no rule can make is still an error, and so is one no chunk gives once the
    // checkpoints have run.
    p.run(&["wf.rhai", "--until", "nope.txt", "-n"])
        .workflow_error()
        .stderr_has(
            "`--until nope.txt`: no rule of that name, and no job in this run makes that file",
        );
    p.run(&["wf.rhai", "-R", "counts/A/zz.txt", "-n"])
        .workflow_error()
        .stderr_has("`--force counts/A/zz.txt`: no rule of that name");
}

#[test]
fn forcing_a_rule_after_the_checkpoint_reruns_its_jobs_once_and_not_the_checkpoint() {
    let p = project(6, 4);
    p.run(&["wf.rhai"]).code(0);
    let run = p.run(&["wf.rhai", "-R", "count", "-j", "1"]).code(0);
    let ran = run.ran_sorted();
    assert_eq!(
        ran.iter().filter(|j| j.starts_with("count")).count(),
        5,
        "{ran:?}"
    );
    assert!(!ran.iter().any(|j| j.starts_with("split")), "{ran:?}");
    // What is downstream of a forced job is forced, as for a static workflow, once.
    assert_eq!(
        ran.iter().filter(|j| j.starts_with("gather")).count(),
        2,
        "{ran:?}"
    );
    equals_a_clean_run(&p);
}

#[test]
fn keep_going_past_a_failed_checkpoint_then_the_fixed_rerun_does_only_its_sample() {
    let p = project(6, 4);
    let failing = WF.replace(
        "mkdir -p {output} &&",
        "test ! -e fail_{wildcards.s} && mkdir -p {output} &&",
    );
    p.file("wf.rhai", &failing).file("fail_B", "");
    let run = p.run(&["wf.rhai", "-k", "-j", "1"]).code(1);
    run.stderr_has("Failed")
        .stderr_has("2 pending (their checkpoints did not run)");
    assert_eq!(p.read("summary/A.txt"), "2\n2\n2\n");
    assert!(!p.exists("chunks/B"));
    p.remove("fail_B");
    let run = p.run(&["wf.rhai", "-j", "1"]).code(0);
    assert_eq!(
        run.ran_sorted(),
        [
            "all",
            "count[i=aa,s=B]",
            "count[i=ab,s=B]",
            "gather[s=B]",
            "split[s=B]"
        ]
    );
    p.file("wf.rhai", WF);
    p.run(&["wf.rhai", "--accept"]).code(0);
    equals_a_clean_run(&p);
}

#[test]
fn a_temp_file_a_pending_job_needs_is_kept_until_it_has_run() {
    // `header` is read by the checkpoint and, later, by every chunk's job.
    let p = project(6, 4);
    let wf = WF
        .replace(
            "rule(\"count\", #{\n    input: \"chunks/{s}/part_{i}\",",
            "rule(\"header\", #{ output: temp(\"header/{s}.txt\"), shell: \"echo n > {output}\" });\nrule(\"count\", #{\n    input: [\"chunks/{s}/part_{i}\", \"header/{s}.txt\"],",
        )
        .replace("input: \"data/{s}.txt\",", "input: [\"data/{s}.txt\", \"header/{s}.txt\"],")
        .replace("split -l 2 {input}", "split -l 2 {input[0]}")
        .replace("wc -l < {input} > {output}", "cat {input[1]} > {output} && wc -l < {input[0]} >> {output}");
    p.file("wf.rhai", &wf);
    let run = p.run(&["wf.rhai", "-j", "1"]).code(0);
    // Made once, kept for the counts of the second pass, then removed as spent.
    assert_eq!(
        run.ran().iter().filter(|j| j.starts_with("header")).count(),
        2,
        "{}",
        run.stderr
    );
    assert_eq!(p.read("counts/A/ac.txt"), "n\n2\n");
    assert!(!p.exists("header/A.txt") && !p.exists("header/B.txt"));
    assert!(p.run(&["wf.rhai", "-n"]).code(0).planned().is_empty());
}

// ---------------------------------------------------------------------------------------------
// Randomized: edits, deletions and kills against a model of what must rerun

#[derive(Debug, Clone)]
enum Step {
    /// Sample `s` gets these lines (each a letter).
    Data(usize, Vec<u8>),
    /// Deletes the `k`-th count output of sample `s`, if there is one.
    DeleteCount(usize, usize),
    DeleteSummary(usize),
    /// A run killed with SIGKILL after this many milliseconds, then a run to the end.
    Kill(u64),
}

const SAMPLES: [&str; 2] = ["A", "B"];

/// What a sample's jobs last saw.
#[derive(Debug, Default, Clone)]
struct Sample {
    data: String,
    /// The data the checkpoint last split.
    split: Option<String>,
    /// Chunk name → the chunk its count output was made from, for the count outputs on disk.
    counted: BTreeMap<String, String>,
    /// The counts the summary on disk was gathered from.
    gathered: Option<Vec<(String, String)>>,
}

/// The chunks `split -l 2` makes of `data`: `part_aa`, `part_ab`, ...
fn chunks(data: &str) -> Vec<(String, String)> {
    let lines: Vec<&str> = data.split_inclusive('\n').collect();
    lines
        .chunks(2)
        .enumerate()
        .map(|(i, c)| (format!("a{}", (b'a' + i as u8) as char), c.concat()))
        .collect()
}

fn count_of(chunk: &str) -> String {
    format!("{}\n", chunk.lines().count())
}

impl Sample {
    fn gathers(&self) -> Vec<(String, String)> {
        chunks(&self.data)
            .into_iter()
            .map(|(name, chunk)| (name, count_of(&chunk)))
            .collect()
    }

    /// The jobs a run must run for this sample (`s` is its name), and the count jobs it drops.
    fn expected(&self, s: &str) -> (BTreeSet<String>, BTreeSet<String>) {
        let mut ran = BTreeSet::new();
        if self.split.as_ref() != Some(&self.data) {
            ran.insert(format!("split[s={s}]"));
        }
        let now = chunks(&self.data);
        for (name, chunk) in &now {
            if self.counted.get(name) != Some(chunk) {
                ran.insert(format!("count[i={name},s={s}]"));
            }
        }
        if self.gathered.as_ref() != Some(&self.gathers()) {
            ran.insert(format!("gather[s={s}]"));
        }
        let dropped = self
            .counted
            .keys()
            .filter(|k| !now.iter().any(|(n, _)| n == *k))
            .map(|name| format!("count[i={name},s={s}]"))
            .collect();
        (ran, dropped)
    }

    /// After a run to the end.
    fn done(&mut self) {
        self.split = Some(self.data.clone());
        self.counted = chunks(&self.data).into_iter().collect();
        self.gathered = Some(self.gathers());
    }

    /// The files a clean run makes for this sample.
    fn files(&self, s: &str, out: &mut BTreeMap<String, String>) {
        for (name, chunk) in chunks(&self.data) {
            out.insert(format!("counts/{s}/{name}.txt"), count_of(&chunk));
            out.insert(format!("chunks/{s}/part_{name}"), chunk);
        }
        let summary = self.gathers().into_iter().map(|(_, c)| c).collect();
        out.insert(format!("summary/{s}.txt"), summary);
    }
}

fn step_strategy() -> impl proptest::strategy::Strategy<Value = Step> {
    use proptest::prelude::*;
    prop_oneof![
        3 => (0..2usize, proptest::collection::vec(0..3u8, 1..=7)).prop_map(|(s, l)| Step::Data(s, l)),
        1 => (0..2usize, 0..4usize).prop_map(|(s, k)| Step::DeleteCount(s, k)),
        1 => (0..2usize).prop_map(Step::DeleteSummary),
        2 => (0..150u64).prop_map(Step::Kill),
    ]
}

fn text_of(lines: &[u8]) -> String {
    lines
        .iter()
        .map(|l| format!("{}\n", (b'a' + l) as char))
        .collect()
}

fn run_steps(steps: Vec<Step>) {
    let p = Project::new();
    p.file("wf.rhai", WF);
    let mut model = [Sample::default(), Sample::default()];
    for (i, s) in SAMPLES.iter().enumerate() {
        model[i].data = text_of(&[i as u8, 1, 2]);
        p.file(&format!("data/{s}.txt"), &model[i].data);
    }
    for step in std::iter::once(None).chain(steps.into_iter().map(Some)) {
        match &step {
            Some(Step::Data(s, lines)) => {
                model[*s].data = text_of(lines);
                p.file(&format!("data/{}.txt", SAMPLES[*s]), &model[*s].data);
            }
            Some(Step::DeleteCount(s, k)) => {
                if let Some(name) = model[*s].counted.keys().nth(*k).cloned() {
                    p.remove(&format!("counts/{}/{name}.txt", SAMPLES[*s]));
                    model[*s].counted.remove(&name);
                }
            }
            Some(Step::DeleteSummary(s)) => {
                let made = model[*s].gathered.take();
                if made.is_some() {
                    p.remove(&format!("summary/{}.txt", SAMPLES[*s]));
                }
            }
            Some(Step::Kill(ms)) => {
                let mut bg = p.spawn(&["wf.rhai", "-j", "1"]);
                std::thread::sleep(Duration::from_millis(*ms));
                bg.groups.extend(common::running_groups(&p));
                let _ =
                    nix::sys::signal::kill(nix::unistd::Pid::from_raw(bg.pid()), Signal::SIGKILL);
                common::kill_groups(&bg.groups);
                let _ = bg.finish(LIMIT);
            }
            None => {}
        }
        let run = p.run(&["wf.rhai", "-j", "1"]).code(0);
        let mut ran: Vec<String> = run.ran().into_iter().filter(|j| j != "all").collect();
        let mut once = ran.clone();
        once.sort();
        once.dedup();
        assert_eq!(
            once.len(),
            ran.len(),
            "a job ran twice in {step:?}: {ran:?}"
        );
        if !matches!(step, Some(Step::Kill(_))) {
            let mut expected = BTreeSet::new();
            for (i, s) in SAMPLES.iter().enumerate() {
                let (jobs, dropped) = model[i].expected(s);
                expected.extend(jobs);
                for job in dropped {
                    assert!(
                        run.stderr.contains(&format!("  Dropped {job}: ")),
                        "{job} was not said to be dropped after {step:?}:\n{}",
                        run.stderr
                    );
                }
            }
            ran.sort();
            assert_eq!(
                ran.into_iter().collect::<BTreeSet<_>>(),
                expected,
                "after {step:?}:\n{}",
                run.stderr
            );
        }
        model.iter_mut().for_each(Sample::done);
        let mut files = BTreeMap::new();
        for (i, s) in SAMPLES.iter().enumerate() {
            model[i].files(s, &mut files);
        }
        assert_eq!(made(&p), files, "after {step:?}");
        p.run(&["wf.rhai", "-n"])
            .code(0)
            .stdout_has("nothing to be done");
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig {
        cases: 12,
        max_shrink_iters: 32,
        failure_persistence: None,
        ..proptest::prelude::ProptestConfig::default()
    })]

    #[test]
    fn random_edits_deletions_and_kills_rerun_what_a_static_workflow_would(
        steps in proptest::collection::vec(step_strategy(), 1..6)
    ) {
        run_steps(steps);
    }
}

/// Forty samples: enough checkpoint outputs read at once for the graph to walk their
/// directories for the planner while it resolves, and for the gathering functions' results to
/// be remembered from the run before.
fn many_checkpoints() -> Project {
    let p = Project::new();
    let names: Vec<String> = (0..40).map(|i| format!("\"s{i:02}\"")).collect();
    let wf = WF.replace(
        r#"let samples = ["A", "B"];"#,
        &format!("let samples = [{}];", names.join(", ")),
    );
    p.file("wf.rhai", &wf);
    for i in 0..40 {
        p.file(&format!("data/s{i:02}.txt"), &lines(3));
    }
    p
}

#[test]
fn with_many_checkpoints_a_change_inside_one_directory_reruns_only_what_reads_it() {
    let p = many_checkpoints();
    p.run(&["wf.rhai", "-j", "2"]).code(0);
    let again = p.run(&["wf.rhai", "-v"]).code(0);
    assert!(again.ran().is_empty(), "{}", again.stderr);
    assert!(
        again.stderr.contains(
            "functions of the wildcards: 40 results remembered from the last run, 0 calls"
        ),
        "{}",
        again.stderr
    );
    // A chunk rewritten by hand: its count and what follows run, as for a static workflow.
    p.file("chunks/s07/part_ab", "x\ny\n");
    let rewritten = p.run(&["wf.rhai", "-n"]).code(0);
    assert_eq!(
        rewritten.planned(),
        ["count[i=ab,s=s07]", "gather[s=s07]", "all"],
        "{}",
        rewritten.stdout
    );
    // A chunk added by hand: the gathering's function is called again and takes it.
    p.file("chunks/s03/part_ac", "w\n");
    let added = p.run(&["wf.rhai", "-v"]).code(0);
    assert!(
        added.stderr.contains(
            "functions of the wildcards: 39 results remembered from the last run, 1 calls"
        ),
        "{}",
        added.stderr
    );
    let mut ran = added.ran();
    ran.sort();
    assert_eq!(
        ran,
        [
            "all",
            "count[i=ab,s=s07]",
            "count[i=ac,s=s03]",
            "gather[s=s03]",
            "gather[s=s07]"
        ]
    );
    assert_eq!(p.read("summary/s03.txt"), "2\n1\n1\n");
    assert_eq!(p.read("summary/s07.txt"), "2\n2\n");
    assert!(p.run(&["wf.rhai"]).code(0).ran().is_empty());
}

// ---------------------------------------------------------------------------------------------
// Planned while the pass runs

/// Two samples split by a checkpoint and gathered, a report per sample after the gathering,
/// and a job of their own (`slow`) that waits while `hold_slow` exists.
const WHILE: &str = r#"
let samples = ["A", "B"];
rule("all", #{ input: ["slow.txt"] + expand("report/{s}.txt", #{ s: samples }) });
rule("slow", #{
    output: "slow.txt",
    shell: "while [ -e hold_slow ]; do sleep 0.05; done; echo done > {output}",
});
rule("split", #{
    input: "data/{s}.txt",
    output: directory("chunks/{s}"),
    checkpoint: true,
    shell: "mkdir -p {output} && split -l 2 {input} {output}/part_",
});
rule("count", #{ input: "chunks/{s}/part_{i}", output: "counts/{s}/{i}.txt", shell: "wc -l < {input} > {output}" });
rule("gather", #{
    input: |w| {
        let dir = checkpoint_output("split", w);
        let counts = expand("counts/{s}/{i}.txt", #{ s: w.s, i: glob_wildcards(dir + "/part_{i}").i });
        if file_exists("gather_needs_slow") { counts + ["slow.txt"] } else { counts }
    },
    output: "summary/{s}.txt",
    shell: "cat {input} > {output}",
});
rule("report", #{ input: "summary/{s}.txt", output: "report/{s}.txt", shell: "cp {input} {output}" });
"#;

fn while_project() -> Project {
    let p = Project::new();
    p.file("wf.rhai", WHILE)
        .file("data/A.txt", &lines(5))
        .file("data/B.txt", &lines(3))
        .file("hold_slow", "");
    p
}

/// The jobs of the `grown` events of a trace, with the pass each was planned in.
fn grown(p: &Project, trace: &str) -> Vec<(u64, String)> {
    p.events(trace)
        .into_iter()
        .filter(|e| e["event"] == "grown")
        .flat_map(|e| {
            let pass = e["pass"].as_u64().unwrap();
            e["jobs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|j| (pass, j["label"].as_str().unwrap().to_string()))
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn a_checkpoint_s_readers_and_what_follows_them_run_while_other_jobs_still_run() {
    let p = while_project();
    let bg = p.spawn(&["wf.rhai", "-j", "2", "--trace", "t.jsonl"]);
    // Under passes, the reports would wait for `slow`, which waits for the test.
    p.wait_for("report/A.txt", LIMIT);
    p.wait_for("report/B.txt", LIMIT);
    assert!(
        !p.exists("slow.txt"),
        "slow finished before the test let it"
    );
    p.remove("hold_slow");
    let run = bg.finish(LIMIT).code(0).stderr_has("  Planned ");
    assert_eq!(p.read("summary/A.txt"), "2\n2\n1\n");
    assert_eq!(p.read("report/B.txt"), "2\n1\n");
    let mut later: Vec<String> = grown(&p, "t.jsonl")
        .into_iter()
        .map(|(pass, label)| {
            assert_eq!(pass, 1, "{label} was planned in pass {pass}");
            label
        })
        .collect();
    later.sort();
    assert_eq!(
        later,
        [
            "all",
            "count[i=aa,s=A]",
            "count[i=aa,s=B]",
            "count[i=ab,s=A]",
            "count[i=ab,s=B]",
            "count[i=ac,s=A]",
            "gather[s=A]",
            "gather[s=B]",
            "report[s=A]",
            "report[s=B]"
        ]
    );
    // Each grown event says how long planning took; the aggregate ran in the same pass, once
    // everything it needs had: one pass in all.
    let events = p.events("t.jsonl");
    assert_eq!(
        events.iter().filter(|e| e["event"] == "run_start").count(),
        1
    );
    assert!(events
        .iter()
        .filter(|e| e["event"] == "grown")
        .all(|e| e["took"].as_f64().is_some_and(|t| t >= 0.0)));
    assert!(run.ran().contains(&"all".to_string()));
    p.run(&["wf.rhai", "-n"])
        .code(0)
        .stdout_has("nothing to be done");
}

#[test]
fn a_reader_that_also_needs_a_job_still_running_waits_for_the_next_pass() {
    let p = while_project();
    p.file("gather_needs_slow", "");
    let bg = p.spawn(&["wf.rhai", "-j", "2", "--trace", "t.jsonl"]);
    p.wait_for("chunks/A/part_ac", LIMIT);
    p.wait_for("chunks/B/part_ab", LIMIT);
    std::thread::sleep(Duration::from_millis(600));
    assert!(!p.exists("summary/A.txt"));
    p.remove("hold_slow");
    bg.finish(LIMIT).code(0);
    assert_eq!(p.read("summary/A.txt"), "2\n2\n1\ndone\n");
    // Its graph met `slow`, which had not ended: nothing was planned before the next pass.
    assert_eq!(grown(&p, "t.jsonl"), []);
    let second: Vec<_> = p
        .events("t.jsonl")
        .into_iter()
        .filter(|e| e["event"] == "job_end" && e["pass"] == 2)
        .map(|e| e["label"].as_str().unwrap().to_string())
        .collect();
    assert!(second.contains(&"gather[s=A]".to_string()), "{second:?}");
    p.run(&["wf.rhai", "-n"])
        .code(0)
        .stdout_has("nothing to be done");
}

#[test]
fn a_chain_of_checkpoints_is_planned_link_by_link_in_one_pass() {
    let p = Project::new();
    p.file(
        "wf.rhai",
        r#"
let samples = ["A", "B"];
rule("all", #{ input: expand("final/{s}.txt", #{ s: samples }) });
rule("split", #{
    input: "data/{s}.txt",
    output: directory("chunks/{s}"),
    checkpoint: true,
    shell: "mkdir -p {output} && split -l 2 {input} {output}/part_",
});
rule("pick", #{
    input: |w| glob_wildcards(checkpoint_output("split", w) + "/part_{i}").i
        .map(|i| `chunks/${w.s}/part_${i}`),
    output: directory("picked/{s}"),
    checkpoint: true,
    shell: "mkdir -p {output} && for f in {input}; do cp $f {output}/$(basename $f).txt; done",
});
rule("final", #{
    input: |w| {
        let dir = checkpoint_output("pick", w);
        glob_wildcards(dir + "/{name}.txt").name.map(|n| `${dir}/${n}.txt`)
    },
    output: "final/{s}.txt",
    shell: "cat {input} > {output}",
});
"#,
    )
    .file("data/A.txt", &lines(3))
    .file("data/B.txt", &lines(4));
    let run = p.run(&["wf.rhai", "-j", "2", "--trace", "t.jsonl"]).code(0);
    assert!(run.ran().contains(&"all".to_string()));
    assert_eq!(p.read("final/A.txt"), p.read("data/A.txt"));
    assert_eq!(p.read("final/B.txt"), p.read("data/B.txt"));
    let planned = grown(&p, "t.jsonl");
    assert!(planned.contains(&(1, "all".to_string())), "{planned:?}");
    for s in ["A", "B"] {
        for job in [format!("pick[s={s}]"), format!("final[s={s}]")] {
            assert!(
                planned.contains(&(1, job.clone())),
                "{job} was not planned in pass 1: {planned:?}"
            );
        }
    }
    p.run(&["wf.rhai", "-n"])
        .code(0)
        .stdout_has("nothing to be done");
}

#[test]
fn a_reader_whose_function_fails_once_its_checkpoint_has_run_is_reported_with_its_place() {
    let p = Project::new();
    let wf = |fail: &str| {
        format!(
            r#"
let samples = ["A", "B"];
rule("all", #{{ input: expand("summary/{{s}}.txt", #{{ s: samples }}) }});
rule("split", #{{
    input: "data/{{s}}.txt",
    output: directory("chunks/{{s}}"),
    checkpoint: true,
    shell: "mkdir -p {{output}} && split -l 2 {{input}} {{output}}/part_",
}});
rule("gather", #{{
    input: |w| {{
        let dir = checkpoint_output("split", w);
        if w.s == "{fail}" {{ throw "no chunks for " + w.s; }}
        glob_wildcards(dir + "/part_{{i}}").i.map(|i| `${{dir}}/part_${{i}}`)
    }},
    output: "summary/{{s}}.txt",
    shell: "cat {{input}} > {{output}}",
}});
"#
        )
    };
    p.file("wf.rhai", &wf("B"))
        .file("data/A.txt", &lines(3))
        .file("data/B.txt", &lines(2));
    // Its graph cannot be resolved while the run goes on: the pass after reports it.
    p.run(&["wf.rhai", "-j", "2"])
        .workflow_error()
        .stderr_has(
            "error: rule `gather`, job gather[s=B]: the `input` function failed: no chunks for B\n",
        )
        .stderr_has("wf.rhai:13:");
    assert!(!p.exists("summary/B.txt"));
    p.file("wf.rhai", &wf("none"));
    let fixed = p.run(&["wf.rhai", "-j", "2"]).code(0);
    assert!(fixed.ran().contains(&"gather[s=B]".to_string()));
    assert_eq!(p.read("summary/B.txt"), p.read("data/B.txt"));
    p.run(&["wf.rhai", "-n"])
        .code(0)
        .stdout_has("nothing to be done");
}
