//! The DESIGN.md example end to end: run, no-op, and the reruns each kind of edit causes.

mod common;
use common::Project;

const WORKFLOW: &str = r#"
let cfg = config(#{ samples: ["a", "b"], factor: 2 });

rule("all", #{ input: expand("results/{s}.sum", #{ s: cfg.samples }) });

rule("scale", #{
    input:  "data/{s}.txt",
    output: "results/{s}.scaled",
    params: #{ factor: cfg.factor },
    shell:  "awk '{{print $1 * {params.factor}}}' {input} > {output}",
});

rule("sum", #{
    input:  "results/{s}.scaled",
    output: "results/{s}.sum",
    run: |job| {
        let total = 0.0;
        for line in read_lines(job.input[0]) { total += parse_float(line); }
        write_text(job.output[0], total.to_string() + "\n");
    },
});
"#;

fn project() -> Project {
    let p = Project::new();
    p.file("wf.rhai", WORKFLOW)
        .file("data/a.txt", "1\n2\n3\n")
        .file("data/b.txt", "4\n5\n");
    p
}

#[test]
fn runs_then_has_nothing_to_do() {
    let p = project();
    let run = p.run(&["wf.rhai"]).code(0);
    assert_eq!(run.ran().len(), 5, "{}", run.stderr);
    assert_eq!(p.read("results/a.sum"), "12.0\n");
    assert_eq!(p.read("results/b.sum"), "18.0\n");
    let again = p.run(&["wf.rhai"]).code(0);
    assert!(again.ran().is_empty(), "{}", again.stderr);
    p.run(&["wf.rhai", "-n"])
        .code(0)
        .stdout_has("nothing to be done");
}

#[test]
fn touch_without_change_does_not_rerun_but_edit_does() {
    let p = project();
    p.run(&["wf.rhai"]).code(0);
    p.file("data/a.txt", "1\n2\n3\n");
    assert!(p.run(&["wf.rhai"]).code(0).ran().is_empty());
    p.file("data/a.txt", "1\n2\n4\n");
    let run = p.run(&["wf.rhai"]).code(0);
    assert_eq!(run.ran(), ["scale[s=a]", "sum[s=a]", "all"]);
    assert_eq!(p.read("results/a.sum"), "14.0\n");
}

#[test]
fn param_change_reruns_and_says_why() {
    let p = project();
    p.run(&["wf.rhai"]).code(0);
    p.run(&["wf.rhai", "-n", "--config", "factor=3"])
        .code(0)
        .stdout_has("job scale[s=a]\n    input:  data/a.txt\n    output: results/a.scaled\n    reason: the rule's params changed\n");
    p.run(&["wf.rhai", "--config", "factor=3"]).code(0);
    assert_eq!(p.read("results/a.sum"), "18.0\n");
}

#[test]
fn dry_run_is_byte_identical_every_time() {
    let p = project();
    let first = p.run(&["wf.rhai", "-n"]).code(0).stdout;
    for _ in 0..3 {
        assert_eq!(p.run(&["wf.rhai", "-n"]).stdout, first);
    }
    assert!(
        first.ends_with("count  rule\n    1  all\n    2  scale\n    2  sum\n    5  total\n"),
        "{first}"
    );
    assert!(!p.exists(".flowrun"), "a dry run must not create state");
}

#[test]
fn closures_keep_their_fingerprint_when_moved_braces_or_not() {
    let p = Project::new();
    p.file(
        "r.rhai",
        "rule(\"r\", #{ output: \"r.txt\", run: |job| write_text(job.output[0], \"x\") });\n\
         rule(\"s\", #{ output: \"s.txt\", run: |job| { write_text(job.output[0], \"y\") } });\n",
    );
    p.run(&["r.rhai", "r", "s"]).code(0);
    let moved = format!(
        "// a comment\n\n   {}",
        p.read("r.rhai").replace("|job| ", "|job|   ")
    );
    p.file("r.rhai", &moved);
    p.run(&["r.rhai", "r", "s", "-n"])
        .code(0)
        .stdout_has("nothing to be done");
    p.file("r.rhai", &moved.replace("\"x\"", "\"z\""));
    let plan = p.run(&["r.rhai", "r", "s", "-n"]).code(0).stdout;
    assert!(
        plan.contains("job r\n    output: r.txt\n    reason: the rule's code changed\n"),
        "{plan}"
    );
    assert!(!plan.contains("job s"), "{plan}");
}

#[test]
fn a_deleted_temp_file_asked_for_by_name_is_remade() {
    let p = Project::new();
    p.file(
        "wf.rhai",
        r#"rule("all", #{ input: "b.txt" });
rule("a", #{ output: temp("a.txt"), shell: "echo a > {output}" });
rule("b", #{ input: "a.txt", output: "b.txt", shell: "cat {input} > {output}" });
"#,
    );
    p.run(&["wf.rhai"]).code(0);
    assert!(!p.exists("a.txt"), "the temp file is gone after use");
    assert!(p.run(&["wf.rhai"]).code(0).ran().is_empty());
    let run = p.run(&["wf.rhai", "a.txt"]).code(0);
    assert_eq!(run.ran(), ["a"]);
    assert_eq!(p.read("a.txt"), "a\n");
}

#[test]
fn a_dry_run_reports_a_damaged_store_but_leaves_it_alone() {
    let p = project();
    p.run(&["wf.rhai"]).code(0);
    p.file(".flowrun/store.db", "garbage, not a database");
    // Without records, outputs newer than their inputs are taken as made (Make's rule).
    p.run(&["wf.rhai", "-n"])
        .code(0)
        .stderr_has("this plan assumes nothing was recorded")
        .stdout_has("nothing to be done");
    assert_eq!(p.read(".flowrun/store.db"), "garbage, not a database");
    p.run(&["wf.rhai"]).code(0).stderr_has("moved to");
}

#[test]
fn an_input_edited_while_its_job_runs_is_seen_as_changed_next_time() {
    let p = Project::new();
    p.file(
        "wf.rhai",
        r#"rule("copy", #{ input: "in.txt", output: "out.txt", shell: "cat {input} > {output}; touch started; sleep 1" });"#,
    )
    .file("in.txt", "one\n");
    let child = p
        .cmd(&["wf.rhai"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while !p.exists("started") {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(20),
            "the job did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    p.file("in.txt", "two\n");
    let out = common::wait_bounded(child, std::time::Duration::from_secs(60));
    assert!(out.status.success());
    assert_eq!(
        p.read("out.txt"),
        "one\n",
        "the job read the input before the edit"
    );
    p.run(&["wf.rhai", "-n"])
        .code(0)
        .stdout_has("reason: input `in.txt` changed");
}
