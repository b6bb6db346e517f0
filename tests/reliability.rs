//! Issue 6, beyond `tests/failures.rs`: the `timeout` rule key under every kind of work, failure
//! reports (rule, wildcards, log, cause) with `--keep-going`, and more kinds of store damage.

mod common;
use common::{live_in_group, Project};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------
// `timeout`

fn timed(p: &Project, rule: &str, args: &[&str]) -> (common::Run, Duration) {
    p.file(
        "wf.rhai",
        &format!(
            r#"
rule("all", #{{ input: ["slow/x.txt", "other.txt"] }});
rule("other", #{{ output: "other.txt", shell: "echo ok > {{output}}" }});
{rule}
"#
        ),
    );
    let mut all = vec!["wf.rhai", "-k", "-j2"];
    all.extend_from_slice(args);
    let start = Instant::now();
    let run = p.run(&all);
    (run, start.elapsed())
}

fn assert_timed_out(run: common::Run, took: Duration, secs: &str) -> common::Run {
    let run = run
        .code(1)
        .stderr_has("Failed")
        .stderr_has("slow[s=x]")
        .stderr_has(&format!("timed out after {secs} s"));
    assert!(
        took < Duration::from_secs(8),
        "took {took:?}\n{}",
        run.stderr
    );
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    run
}

#[test]
fn a_shell_job_past_its_timeout_is_stopped_reported_and_cleaned() {
    let p = Project::new();
    let (run, took) = timed(
        &p,
        r#"rule("slow", #{ output: "slow/{s}.txt", log: "logs/{s}.log", timeout: 0.5,
            shell: "echo $$ > pgid; echo partial > {output}; sleep 30 & sleep 30" });"#,
        &[],
    );
    let run = assert_timed_out(run, took, "0.5").stderr_has("log: logs/x.log");
    // --keep-going ran the independent job.
    assert!(run.ran().contains(&"other".to_string()), "{}", run.stderr);
    assert_eq!(p.read("other.txt"), "ok\n");
    assert!(!p.exists("slow/x.txt"), "the partial output was kept");
    assert!(p.exists("logs/x.log"), "the log was not kept");
    let pgid: i32 = p.read("pgid").trim().parse().unwrap();
    let start = Instant::now();
    while !live_in_group(pgid).is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "the job's processes survived its timeout"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_command_ignoring_sigterm_is_killed_after_the_grace_period() {
    let p = Project::new();
    let (run, took) = timed(
        &p,
        r#"rule("slow", #{ output: "slow/{s}.txt", timeout: 0.3,
            shell: "trap '' TERM; echo partial > {output}; sleep 30" });"#,
        &["--grace", "0.3"],
    );
    assert_timed_out(run, took, "0.3");
}

#[test]
fn retries_apply_to_timeouts_and_a_later_attempt_can_succeed() {
    let p = Project::new();
    // The first attempt hangs, the second finishes at once.
    let (run, _) = timed(
        &p,
        r#"rule("slow", #{ output: "slow/{s}.txt", log: "logs/{s}.log", timeout: 0.5, retries: 2,
            shell: "echo try >> {log}; if [ ! -e tried ]; then touch tried; sleep 30; fi; echo done > {output}" });"#,
        &[],
    );
    run.code(0)
        .stderr_has("Retrying slow[s=x] (1/2) after: timed out after 0.5 s");
    assert_eq!(p.read("slow/x.txt"), "done\n");
    assert_eq!(p.read("logs/x.log"), "try\ntry\n");
    // Every attempt timing out fails the job after the last retry.
    let p = Project::new();
    let (run, took) = timed(
        &p,
        r#"rule("slow", #{ output: "slow/{s}.txt", timeout: 0.3, retries: 1, shell: "sleep 30" });"#,
        &[],
    );
    assert_timed_out(run, took, "0.3").stderr_has("Retrying slow[s=x] (1/1)");
}

#[test]
fn a_looping_run_closure_is_stopped_at_its_timeout() {
    let p = Project::new();
    let (run, took) = timed(
        &p,
        r#"rule("slow", #{ output: "slow/{s}.txt", timeout: 0.5,
            run: |job| { write_text(job.output[0], "partial"); let i = 0; loop { i += 1; } } });"#,
        &[],
    );
    assert_timed_out(run, took, "0.5");
    assert!(!p.exists("slow/x.txt"));
}

#[test]
fn a_map_under_each_model_is_stopped_at_its_timeout() {
    for (model, extra) in [
        ("thread", "threads: 2,"),
        ("process", "procs: 2,"),
        ("hybrid", "procs: 2, threads: 1,"),
        ("async", ""),
    ] {
        let p = Project::new();
        let map = if model == "async" {
            "|job, x| sleep_ms(30000)"
        } else {
            "|job, x| { let i = 0; loop { i += 1; } }"
        };
        let (run, took) = timed(
            &p,
            &format!(
                r#"rule("slow", #{{ output: "slow/{{s}}.txt", timeout: 1, model: "{model}", {extra}
                    items: [1, 2, 3], map: {map}, finish: |job, r| write_text(job.output[0], "x") }});"#
            ),
            &[],
        );
        assert_timed_out(run, took, "1");
    }
}

#[test]
fn a_chunked_map_is_stopped_at_its_timeout() {
    let p = Project::new();
    p.file(
        "wf.rhai",
        r#"
rule("data", #{ output: "m.npy", run: |job| write_random_npy(job.output[0], 100, 2, 1) });
rule("slow", #{ input: "m.npy", output: "slow.txt", model: "chunked", chunk: 10, timeout: 0.5,
    map: |job, rows| { let i = 0; loop { i += 1; } },
    finish: |job, r| write_text(job.output[0], "x") });
"#,
    );
    let start = Instant::now();
    p.run(&["wf.rhai", "slow.txt"])
        .code(1)
        .stderr_has("timed out after 0.5 s");
    assert!(start.elapsed() < Duration::from_secs(8));
}

#[test]
fn a_job_within_its_timeout_is_not_affected() {
    let p = Project::new();
    p.file(
        "wf.rhai",
        r#"
rule("all", #{ input: ["a.txt", "b.txt"] });
rule("a", #{ output: "a.txt", timeout: 30, shell: "sleep 0.1; echo a > {output}" });
rule("b", #{ output: "b.txt", timeout: 30, run: |job| write_text(job.output[0], "b") });
"#,
    );
    let start = Instant::now();
    p.run(&["wf.rhai"]).code(0);
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "a job with a long timeout held the run up"
    );
    assert_eq!(p.read("a.txt"), "a\n");
    // Changing the timeout reruns nothing.
    p.file(
        "wf.rhai",
        &p.read("wf.rhai").replace("timeout: 30", "timeout: 60"),
    );
    assert!(p.run(&["wf.rhai"]).code(0).ran().is_empty());
}

// ---------------------------------------------------------------------------------------------
// Failure reports

#[test]
fn failures_name_rule_wildcards_log_and_cause_and_keep_going_runs_the_rest() {
    let p = Project::new();
    p.file(
        "wf.rhai",
        r#"
rule("all", #{ input: expand("out/{k}/{s}.txt", #{ k: ["exit", "signal", "rhai", "ok"], s: ["a"] }) });
rule("exit", #{ output: "out/exit/{s}.txt", log: "logs/exit-{s}.log", shell: "echo oops >&2; exit 3" });
rule("signal", #{ output: "out/signal/{s}.txt", log: "logs/signal-{s}.log", shell: "kill -KILL $$" });
rule("rhai", #{ output: "out/rhai/{s}.txt", log: "logs/rhai-{s}.log",
    items: [1, 2], map: |job, x| x / 0, finish: |job, r| write_text(job.output[0], "x") });
rule("ok", #{ output: "out/ok/{s}.txt", shell: "echo fine > {output}" });
"#,
    );
    let run = p
        .run(&["wf.rhai", "-k", "-j1"])
        .code(1)
        .stderr_has("exit[s=a]")
        .stderr_has("the command exited with status 3")
        .stderr_has("log: logs/exit-a.log")
        .stderr_has("signal[s=a]")
        .stderr_has("killed by signal 9 (SIGKILL), exit status 137")
        .stderr_has("log: logs/signal-a.log")
        .stderr_has("rhai[s=a]")
        .stderr_has("Division by zero")
        .stderr_has("log: logs/rhai-a.log")
        .stderr_has("3 failed");
    assert!(run.ran().contains(&"ok[s=a]".to_string()));
    assert_eq!(p.read("out/ok/a.txt"), "fine\n");
    assert_eq!(p.read("logs/exit-a.log"), "oops\n");
}

// ---------------------------------------------------------------------------------------------
// Store damage

const STORE_WF: &str = r#"
rule("all", #{ input: ["b.txt", "c.txt"] });
rule("a", #{ input: "in.txt", output: "a.txt", shell: "cp {input} {output}" });
rule("b", #{ input: "a.txt", output: "b.txt", shell: "cp {input} {output}" });
rule("c", #{ output: "c.txt", params: #{ pad: PAD }, shell: "echo c > {output}" });
"#;

fn built() -> Project {
    let p = Project::new();
    let pad = format!("\"{}\"", "x".repeat(20000));
    p.file("in.txt", "1\n")
        .file("wf.rhai", &STORE_WF.replace("PAD", &pad));
    p.run(&["wf.rhai"]).code(0);
    p
}

/// After damage: the run succeeds, outputs are untouched or remade identically, whatever
/// reruns says why, and the store works again afterwards.
fn check_recovers(p: &Project, what: &str) -> common::Run {
    let run = p.run(&["wf.rhai"]);
    let run = run.code(0);
    assert!(!run.stderr.contains("panicked"), "{what}: {}", run.stderr);
    for (f, want) in [("a.txt", "1\n"), ("b.txt", "1\n"), ("c.txt", "c\n")] {
        assert_eq!(p.read(f), want, "{what}: {f}");
    }
    if !run.ran().is_empty() {
        assert!(
            run.stderr.contains("warning: the state store") || run.stderr.contains("reason"),
            "{what}: jobs reran without saying why\n{}",
            run.stderr
        );
    }
    // Working again: quiet, and changes are seen.
    assert!(
        p.run(&["wf.rhai"]).code(0).ran().is_empty(),
        "{what}: the run after the repair redid jobs"
    );
    p.file("in.txt", "2\n");
    assert_eq!(
        p.run(&["wf.rhai"]).code(0).ran(),
        ["a", "b", "all"],
        "{what}"
    );
    run
}

#[test]
fn random_bytes_in_the_middle_of_the_store_are_survived() {
    let mut state = 0x1234_5678_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for case in 0..8 {
        let p = built();
        let db = p.path().join(".flowrun/store.db");
        for ext in ["-wal", "-shm"] {
            let _ = std::fs::remove_file(p.path().join(format!(".flowrun/store.db{ext}")));
        }
        let mut bytes = std::fs::read(&db).unwrap();
        let len = bytes.len();
        let at = len / 4 + (next() as usize % (len / 2));
        let n = 64 + next() as usize % 2048;
        for b in &mut bytes[at..(at + n).min(len)] {
            *b = next() as u8;
        }
        std::fs::write(&db, bytes).unwrap();
        check_recovers(
            &p,
            &format!("case {case}: {n} random bytes at {at} of {len}"),
        );
    }
}

#[test]
fn a_garbage_wal_file_is_survived() {
    let p = built();
    p.file(".flowrun/store.db-wal", &"garbage wal ".repeat(500));
    let _ = std::fs::remove_file(p.path().join(".flowrun/store.db-shm"));
    let run = check_recovers(&p, "garbage -wal");
    assert!(run.ran().is_empty(), "{}", run.stderr);
}

#[test]
fn a_store_truncated_at_many_points_is_rebuilt_without_touching_outputs() {
    for fraction in [1, 3, 5, 7] {
        let p = built();
        let db = p.path().join(".flowrun/store.db");
        for ext in ["-wal", "-shm"] {
            let _ = std::fs::remove_file(p.path().join(format!(".flowrun/store.db{ext}")));
        }
        let bytes = std::fs::read(&db).unwrap();
        std::fs::write(&db, &bytes[..bytes.len() * fraction / 8]).unwrap();
        check_recovers(&p, &format!("truncated to {fraction}/8"));
    }
}

#[test]
fn an_empty_or_directory_store_is_survived() {
    let p = built();
    for ext in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(p.path().join(format!(".flowrun/store.db{ext}")));
    }
    p.file(".flowrun/store.db", "");
    check_recovers(&p, "empty store file");
}
