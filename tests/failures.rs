//! Failure, interruption and the run lock (DESIGN.md §5). Tests that start processes bound their
//! time and kill what they started (the `Background` guard kills flowrun and the job process
//! groups it learned about).

mod common;
use common::{assert_group_gone, live_in_group, running_groups, wait_until, within, Project};
use nix::sys::signal::Signal;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------------
// Failing jobs

#[test]
fn failing_shell_job_exits_1_removes_outputs_and_names_job_and_status() {
    let p = Project::new();
    p.file(
        "wf.rhai",
        r#"
rule("all", #{ input: "out/x.txt" });
rule("make", #{ output: "out/{s}.txt", shell: "echo partial > {output}; exit 7" });
"#,
    );
    let run = p
        .run(&["wf.rhai"])
        .code(1)
        .stderr_has("Failed [1/2] make[s=x]")
        .stderr_has("the command exited with status 7")
        .stderr_has("its outputs were removed (use --keep-incomplete to keep them)")
        .stderr_has("error: 0 ran, 1 failed, 1 not run because a job they need failed");
    assert_eq!(run.ran(), ["make[s=x]"]);
    assert!(!p.exists("out/x.txt"), "failed output kept");
}

#[test]
fn keep_incomplete_keeps_a_failed_jobs_outputs() {
    let p = Project::new();
    p.file(
        "wf.rhai",
        r#"rule("make", #{ output: "x.txt", shell: "echo partial > {output}; exit 1" });"#,
    );
    p.run(&["wf.rhai", "--keep-incomplete"])
        .code(1)
        .stderr_lacks("outputs were removed");
    assert_eq!(p.read("x.txt"), "partial\n");
}

#[test]
fn a_job_that_does_not_make_its_output_fails() {
    let p = Project::new();
    p.file(
        "wf.rhai",
        r#"rule("lazy", #{ output: ["x.txt", "y.txt"], shell: "touch x.txt" });"#,
    );
    p.run(&["wf.rhai"])
        .code(1)
        .stderr_has("Failed [1/1] lazy")
        .stderr_has("the job finished but did not create output `y.txt`");
    assert!(!p.exists("x.txt"), "outputs of the failed job kept");
}

const INDEPENDENT: &str = r#"
rule("all", #{ input: ["bad_down.txt", "good1.txt", "good2.txt"] });
rule("bad", #{ output: "bad.txt", shell: "exit 1" });
rule("bad_down", #{ input: "bad.txt", output: "bad_down.txt", shell: "cp {input} {output}" });
rule("good1", #{ output: "good1.txt", shell: "sleep 0.2; echo 1 > {output}" });
rule("good2", #{ input: "good1.txt", output: "good2.txt", shell: "cp {input} {output}" });
"#;

#[test]
fn keep_going_runs_independent_jobs_and_blocks_dependents() {
    let p = Project::new();
    p.file("wf.rhai", INDEPENDENT);
    let run = p
        .run(&["wf.rhai", "-k", "-j", "2"])
        .code(1)
        .stderr_has("Failed")
        .stderr_has("error: 2 ran, 1 failed, 2 not run because a job they need failed");
    assert_eq!(run.ran_sorted(), ["bad", "good1", "good2"]);
    assert!(p.exists("good2.txt"));
    assert!(!p.exists("bad_down.txt"));
}

#[test]
fn without_keep_going_no_new_job_starts_after_a_failure() {
    let p = Project::new();
    p.file("wf.rhai", INDEPENDENT);
    p.file(
        "wf.rhai",
        &INDEPENDENT.replace("shell: \"exit 1\"", "priority: 1, shell: \"exit 1\""),
    );
    let run = p.run(&["wf.rhai", "-j", "1"]).code(1);
    // `bad` runs first (priority); nothing starts after it fails.
    assert_eq!(run.ran(), ["bad"]);
    assert!(!p.exists("good1.txt"));
}

#[test]
fn without_keep_going_running_jobs_finish() {
    let p = Project::new();
    p.file("wf.rhai", INDEPENDENT);
    let run = p.run(&["wf.rhai", "-j", "2"]).code(1);
    assert_eq!(run.ran_sorted(), ["bad", "good1"]);
    assert_eq!(p.read("good1.txt"), "1\n", "a running job was cut short");
    assert!(!p.exists("good2.txt"));
    // Next time only what is left runs.
    p.file("wf.rhai", &INDEPENDENT.replace("exit 1", "touch {output}"));
    let run = p.run(&["wf.rhai", "-j", "1"]).code(0);
    assert_eq!(run.ran(), ["bad", "bad_down", "good2", "all"]);
}

#[test]
fn rhai_runtime_error_in_run_shows_location_and_source_line() {
    let p = Project::new();
    p.file(
        "wf.rhai",
        r#"rule("calc", #{
    output: "x.txt",
    run: |job| {
        let n = 1;
        let bad = n + "s" * 2;
        write_text(job.output[0], "never");
    },
});
"#,
    );
    let run = p
        .run(&["wf.rhai"])
        .code(1)
        .stderr_has("Failed [1/1] calc")
        .stderr_has("Function not found: *")
        .stderr_has("wf.rhai:5:27")
        .stderr_has("5 |         let bad = n + \"s\" * 2;")
        .stderr_has("^");
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    assert!(!p.exists("x.txt"));
}

#[test]
fn thrown_error_in_run_is_reported_with_its_text() {
    let p = Project::new();
    p.file(
        "wf.rhai",
        "rule(\"t\", #{ output: \"x.txt\", run: |job| {\n    throw \"no data for \" + job.rule;\n} });\n",
    );
    p.run(&["wf.rhai"])
        .code(1)
        .stderr_has("no data for t")
        .stderr_has("wf.rhai:2:5");
}

#[test]
fn a_job_killed_by_a_signal_reports_128_plus_n() {
    let p = Project::new();
    p.file(
        "wf.rhai",
        r#"
rule("all", #{ input: ["term.txt", "kill.txt"] });
rule("term", #{ output: "term.txt", shell: "kill -TERM $$" });
rule("kill", #{ output: "kill.txt", shell: "kill -KILL $$" });
"#,
    );
    p.run(&["wf.rhai", "-k"])
        .code(1)
        .stderr_has("the command was killed by signal 15 (SIGTERM), exit status 143")
        .stderr_has("the command was killed by signal 9 (SIGKILL), exit status 137");
}

// ---------------------------------------------------------------------------------------------
// Interruption

const INTERRUPTIBLE: &str = r#"
rule("all", #{ input: ["quick.txt", "slow.txt"] });
rule("quick", #{ output: "quick.txt", shell: "echo quick > {output}" });
rule("slow", #{
    output: "slow.txt",
    shell: "echo $$ > pgid; echo partial > {output}; if [ -e hang ]; then sleep 30 & sleep 30; fi; echo done >> {output}",
});
"#;

/// Starts the interruptible workflow and waits until the slow job runs (and quick is done).
fn start_interruptible(p: &Project, args: &[&str]) -> (common::Background, i32) {
    p.file("wf.rhai", INTERRUPTIBLE).file("hang", "");
    let mut all = vec!["wf.rhai", "-j", "2"];
    all.extend_from_slice(args);
    let (bg, pgid) = start_with_group(p, &all);
    wait_recorded(p, "quick.txt");
    (bg, pgid)
}

/// Starts flowrun with `args` and waits until its job writes its process group to `pgid`;
/// the guard kills that group too.
fn start_with_group(p: &Project, args: &[&str]) -> (common::Background, i32) {
    let mut bg = p.spawn(args);
    p.wait_for("pgid", LIMIT);
    let pgid: i32 = p.read("pgid").trim().parse().unwrap();
    bg.groups.push(pgid);
    (bg, pgid)
}

/// Waits until flowrun has recorded `output` as finished in its store.
fn wait_recorded(p: &Project, output: &str) {
    wait_until(LIMIT, Duration::from_millis(20), || {
        let found = rusqlite::Connection::open_with_flags(
            p.path().join(".flowrun/store.db"),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .and_then(|c| {
            c.query_row(
                "SELECT count(*) FROM records WHERE path = ?1",
                [output],
                |r| r.get::<_, i64>(0),
            )
        })
        .is_ok_and(|n| n > 0);
        if found {
            Ok(())
        } else {
            Err(format!("{output} was never recorded"))
        }
    })
}

fn check_interrupted(p: &Project, bg: common::Background, pgid: i32) {
    let run = within(Duration::from_secs(10), || {
        bg.finish(LIMIT)
            .code(130)
            .stderr_has("Stopping 1 running job(s)")
            .stderr_has("interrupted: 1 ran")
    });
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    assert_group_gone(pgid);
    assert!(!p.exists("slow.txt"), "partial output kept");
    assert_eq!(p.read("quick.txt"), "quick\n", "finished output lost");
    // The next run redoes only the interrupted job.
    p.remove("hang");
    let plan = p.run(&["wf.rhai", "-n"]).code(0);
    assert_eq!(plan.planned(), ["slow", "all"]);
    let run = p.run(&["wf.rhai"]).code(0);
    assert_eq!(run.ran(), ["slow", "all"]);
    assert_eq!(p.read("slow.txt"), "partial\ndone\n");
}

/// Interrupts the interruptible workflow with `sig` once its slow job runs, and checks the
/// result.
fn interrupted_by(sig: Signal) {
    let p = Project::new();
    let (bg, pgid) = start_interruptible(&p, &[]);
    bg.signal(sig);
    check_interrupted(&p, bg, pgid);
}

#[test]
fn ctrl_c_stops_jobs_cleans_partial_outputs_and_exits_130() {
    interrupted_by(Signal::SIGINT);
}

#[test]
fn sigterm_is_handled_like_ctrl_c() {
    interrupted_by(Signal::SIGTERM);
}

#[test]
fn a_job_ignoring_sigterm_is_killed_after_the_grace_period() {
    let p = Project::new();
    p.file(
        "wf.rhai",
        r#"rule("stubborn", #{ output: "x.txt", shell: "trap '' TERM; echo $$ > pgid; echo partial > {output}; sleep 30 & wait; sleep 30" });"#,
    );
    let (bg, pgid) = start_with_group(&p, &["wf.rhai", "--grace", "0.5"]);
    std::thread::sleep(Duration::from_millis(200));
    within(Duration::from_secs(5), || {
        bg.signal(Signal::SIGINT);
        bg.finish(LIMIT).code(130);
    });
    assert_group_gone(pgid);
    assert!(!p.exists("x.txt"));
}

#[test]
fn a_second_ctrl_c_kills_at_once() {
    let p = Project::new();
    p.file(
        "wf.rhai",
        r#"rule("stubborn", #{ output: "x.txt", shell: "trap '' TERM; echo $$ > pgid; sleep 30" });"#,
    );
    let (bg, pgid) = start_with_group(&p, &["wf.rhai", "--grace", "20"]);
    std::thread::sleep(Duration::from_millis(200));
    within(Duration::from_secs(5), || {
        bg.signal(Signal::SIGINT);
        std::thread::sleep(Duration::from_millis(300));
        bg.signal(Signal::SIGINT);
        bg.finish(LIMIT).code(130);
    });
    assert_group_gone(pgid);
}

#[test]
fn ctrl_c_stops_a_looping_run_closure() {
    let p = Project::new();
    p.file(
        "wf.rhai",
        r#"rule("spin", #{ output: "x.txt", run: |job| { write_text("started", "1"); let i = 0; loop { i += 1; } } });"#,
    );
    let bg = p.spawn(&["wf.rhai"]);
    p.wait_for("started", LIMIT);
    within(Duration::from_secs(5), || {
        bg.signal(Signal::SIGINT);
        bg.finish(LIMIT).code(130);
    });
    assert!(!p.exists("x.txt"));
}

#[test]
fn after_kill_9_the_next_run_redoes_the_unfinished_job() {
    let p = Project::new();
    let (bg, pgid) = start_interruptible(&p, &[]);
    bg.signal(Signal::SIGKILL);
    // Nobody is left to stop the job: the test does it.
    let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pgid), Signal::SIGKILL);
    let _ = bg.finish(LIMIT);
    assert_group_gone(pgid);
    assert_eq!(
        p.read("slow.txt"),
        "partial\n",
        "the test expects the half-made output"
    );
    p.remove("hang");
    let plan = p.run(&["wf.rhai", "-n"]).code(0);
    assert_eq!(plan.planned(), ["slow", "all"]);
    assert_eq!(
        plan.reasons("slow"),
        ["output `slow.txt` was left incomplete by an earlier run"]
    );
    let run = p
        .run(&["wf.rhai"])
        .code(0)
        .stderr_has("took over the lock left by a run that is no longer alive");
    assert_eq!(run.ran(), ["slow", "all"]);
    assert_eq!(p.read("slow.txt"), "partial\ndone\n");
}

#[test]
fn commands_die_with_flowrun_killed_by_sigkill() {
    // One command started directly (plain words), one through bash (which execs it): both must
    // go when flowrun is killed outright, with nobody left to stop them. (Processes a command
    // forks are stopped by the next run, from the groups in the lock file.)
    let p = Project::new();
    p.file(
        "wf.rhai",
        r#"
rule("all", #{ input: ["a.txt", "b.txt"] });
rule("direct", #{ output: "a.txt", shell: "sleep 30" });
rule("shell", #{ output: "b.txt", shell: "test -n $$ && exec sleep 30" });
"#,
    );
    let mut bg = p.spawn(&["wf.rhai", "-j2"]);
    let groups = wait_until(LIMIT, Duration::from_millis(20), || {
        let groups = running_groups(&p);
        if groups.len() == 2 {
            Ok(groups)
        } else {
            Err(format!("running groups: {groups:?}"))
        }
    });
    bg.groups.extend(&groups);
    for g in &groups {
        assert!(!live_in_group(*g).is_empty(), "group {g} is not running");
    }
    bg.signal(Signal::SIGKILL);
    let _ = bg.finish(LIMIT);
    for g in groups {
        assert_group_gone(g);
    }
}

// ---------------------------------------------------------------------------------------------
// The lock

#[test]
fn a_second_concurrent_run_is_refused_with_exit_3() {
    let p = Project::new();
    let (bg, _pgid) = start_interruptible(&p, &[]);
    let host = nix::unistd::gethostname().unwrap().into_string().unwrap();
    p.run(&["wf.rhai"])
        .code(3)
        .stderr_has(&format!(
            "another flowrun (pid {} on {host}) is running in this directory",
            bg.pid()
        ))
        .stderr_has("hint: wait for it to finish");
    // Reading commands do not need the lock.
    p.run(&["wf.rhai", "-n"]).code(0);
    p.run(&["wf.rhai", "--summary"]).code(0);
    drop(bg);
}

#[test]
fn a_lock_left_by_a_dead_run_is_taken_over_with_a_message() {
    let p = Project::new();
    p.file(
        "wf.rhai",
        r#"rule("x", #{ output: "x.txt", shell: "touch {output}" });"#,
    )
    .file(".flowrun/lock", "pid 999999 on elsewhere");
    p.run(&["wf.rhai"])
        .code(0)
        .stderr_has(
            "warning: took over the lock left by a run that is no longer alive (pid 999999 on elsewhere)",
        );
    assert!(p.exists("x.txt"));
    // A finished run leaves no stale lock behind.
    p.run(&["wf.rhai", "-F"]).code(0).stderr_lacks("took over");
}

// ---------------------------------------------------------------------------------------------
// The store

const STORE_WF: &str = r#"
rule("all", #{ input: ["b.txt", "c.txt"] });
rule("a", #{ input: "in.txt", output: "a.txt", shell: "cp {input} {output}" });
rule("b", #{ input: "a.txt", output: "b.txt", shell: "cp {input} {output}" });
rule("c", #{ output: "c.txt", params: #{ pad: PAD }, shell: "touch {output}" });
"#;

fn built(p: &Project) {
    // The padding makes the store span several pages.
    let pad = format!("\"{}\"", "x".repeat(20000));
    p.file("in.txt", "1\n")
        .file("wf.rhai", &STORE_WF.replace("PAD", &pad));
    p.run(&["wf.rhai"]).code(0);
}

fn check_rebuilt(p: &Project) {
    let run = p
        .run(&["wf.rhai"])
        .code(0)
        .stderr_has("warning: the state store")
        .stderr_has("could not be read")
        .stderr_has("and rebuilt. Outputs are untouched");
    assert!(run.ran().is_empty(), "{}", run.stderr);
    assert_eq!(p.read("a.txt"), "1\n");
    assert_eq!(p.read("b.txt"), "1\n");
    let aside = std::fs::read_dir(p.path().join(".flowrun"))
        .unwrap()
        .filter_map(Result::ok)
        .any(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("store.db.broken-")
        });
    assert!(aside, "the broken store was not kept aside");
    // Rebuilt and working: no warning, changes are seen again.
    p.run(&["wf.rhai"]).code(0).stderr_lacks("warning");
    p.file("in.txt", "2\n");
    let run = p.run(&["wf.rhai"]).code(0);
    assert_eq!(run.ran(), ["a", "b", "all"]);
}

#[test]
fn a_garbage_store_is_reported_and_rebuilt_without_touching_outputs() {
    let p = Project::new();
    built(&p);
    for ext in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(p.path().join(format!(".flowrun/store.db{ext}")));
    }
    p.file(".flowrun/store.db", &"garbage ".repeat(1000));
    check_rebuilt(&p);
}

#[test]
fn a_truncated_store_is_reported_and_rebuilt() {
    let p = Project::new();
    built(&p);
    // Cut the store in the middle.
    let db = p.path().join(".flowrun/store.db");
    for ext in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(p.path().join(format!(".flowrun/store.db{ext}")));
    }
    let bytes = std::fs::read(&db).unwrap();
    let mut cut = bytes[..bytes.len() / 2].to_vec();
    // Scribble over the page after the header so the damage cannot go unnoticed.
    let from = 100.min(cut.len());
    let to = (from + 2000).min(cut.len());
    cut[from..to].fill(0xAB);
    std::fs::write(&db, cut).unwrap();
    check_rebuilt(&p);
}

#[test]
fn a_store_of_a_newer_format_version_is_refused() {
    let p = Project::new();
    built(&p);
    let conn = rusqlite::Connection::open(p.path().join(".flowrun/store.db")).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    p.run(&["wf.rhai"])
        .code(2)
        .stderr_has("written by a newer flowrun (store format 99");
}
