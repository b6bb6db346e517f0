//! `shell("...")` inside a `run` closure (issue 17): the job's placeholders, strict bash, the
//! job's log, failures pointing at the call, and the command stopped with its job (timeout,
//! Ctrl-C). At definition time it stays refused.

mod common;
use common::{assert_group_gone, within, workflow as project, Project};
use nix::sys::signal::Signal;
use std::time::Duration;

#[test]
fn shell_in_run_fills_in_the_job_and_mixes_with_rhai() {
    let p = project(
        r#"
rule("count", #{
    input:  #{ words: "in/{s}.txt" },
    output: ["out/{s}.n", "out/{s}.tag"],
    params: #{ prefix: "n_{s}" },
    threads: 2,
    run: |job| {
        shell("wc -l < {input.words} | tr -d ' ' > {output[0]}");
        let n = read_text(job.output[0]);
        n.trim();
        shell("echo {rule} {wildcards} {params.prefix} {threads} " + n + " > {output[1]}");
    },
});
"#,
    );
    p.file("in/a.txt", "x\ny\nz\n");
    p.run(&["wf.rhai", "out/a.n", "-j", "2"]).code(0);
    assert_eq!(p.read("out/a.n"), "3\n");
    assert_eq!(p.read("out/a.tag"), "count s=a n_a 2 3\n");
}

#[test]
fn shell_in_run_uses_strict_bash_and_reports_where_it_failed() {
    let p = project(
        r#"
rule("fails", #{
    output: "x.txt",
    log: "logs/x.log",
    run: |job| {
        shell("echo before; echo to-stderr >&2");
        shell("false | cat");
        shell("echo never > {output}");
    },
});
"#,
    );
    p.run(&["wf.rhai"])
        .code(1)
        .stderr_has("shell: the command exited with status 1")
        .stderr_has("wf.rhai:7");
    assert!(!p.exists("x.txt"));
    assert_eq!(p.read("logs/x.log"), "before\nto-stderr\n");
}

#[test]
fn shell_in_run_checks_its_placeholders() {
    let p = project(
        r#"rule("bad", #{ output: "x.txt", run: |job| shell("cat {inptu} > {output}") });"#,
    );
    p.run(&["wf.rhai"])
        .code(1)
        .stderr_has("shell: unknown placeholder `{inptu}`; did you mean `input`?");
}

#[test]
fn shell_at_definition_time_is_refused() {
    let p = project(
        r#"shell("touch made.txt");
rule("a", #{ output: "a.txt", shell: "touch {output}" });"#,
    );
    p.run(&["wf.rhai", "-n"])
        .workflow_error()
        .stderr_has("`shell` is not allowed while the workflow is being defined");
    assert!(!p.exists("made.txt"));
}

#[test]
fn shell_outside_a_run_closure_is_refused() {
    let p = project(
        r#"rule("mr", #{
    output: "x.txt",
    items: [1],
    map: |job, item| { shell("true"); item },
    finish: |job, r| write_text(job.output[0], "x"),
});"#,
    );
    p.run(&["wf.rhai"])
        .code(1)
        .stderr_has("shell: runs commands only inside a rule's `run` closure");
}

const SLOW: &str = r#"rule("slow", #{
    output: "x.txt",
    TIMEOUT
    run: |job| {
        shell("echo $$ > pgid; echo partial > {output}; sleep 30");
        write_text("after.txt", "the closure went on");
    },
});"#;

/// The process group the command wrote to `pgid`, once it has.
fn command_group(p: &Project) -> i32 {
    p.wait_for("pgid", Duration::from_secs(20));
    p.read("pgid").trim().parse().expect("pgid")
}

#[test]
fn a_timeout_stops_the_command_of_a_run_closure() {
    let p = project(&SLOW.replace("TIMEOUT", "timeout: 1,"));
    let bg = p.spawn(&["wf.rhai"]);
    let pgid = command_group(&p);
    within(Duration::from_secs(10), || {
        bg.finish(Duration::from_secs(20))
            .code(1)
            .stderr_has("timed out after 1 s");
    });
    assert_group_gone(pgid);
    assert!(!p.exists("x.txt"));
    assert!(!p.exists("after.txt"));
}

#[test]
fn ctrl_c_stops_the_command_of_a_run_closure() {
    let p = project(&SLOW.replace("TIMEOUT", ""));
    let bg = p.spawn(&["wf.rhai"]);
    let pgid = command_group(&p);
    bg.signal(Signal::SIGINT);
    within(Duration::from_secs(10), || {
        bg.finish(Duration::from_secs(20)).code(130);
    });
    assert_group_gone(pgid);
    assert!(!p.exists("x.txt"));
    assert!(!p.exists("after.txt"));
}
