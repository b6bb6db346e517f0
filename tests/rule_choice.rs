//! Choosing the rule that makes a file, as Snakemake does (issue 17): candidates whose inputs
//! can be made or exist, then `rule_order`, then `priority`, then the rule without wildcards;
//! an existing file that a rule could also make is used, not a cycle; `rules("b").output`
//! promises that rule `b` makes an input. Each case runs the same workflow as a Snakefile
//! with the real Snakemake too (when installed) and checks both made the same file.

mod common;
use common::{run_snakemake, Project, Run};

/// A project holding `wf.rhai` and its `Snakefile` twin, plus `files`.
fn twins(flowfile: &str, snakefile: &str, files: &[(&str, &str)]) -> (Project, Project) {
    let make = |name: &str, text: &str| {
        let p = Project::new();
        p.file(name, text);
        for (f, t) in files {
            p.file(f, t);
        }
        p
    };
    (make("wf.rhai", flowfile), make("Snakefile", snakefile))
}

/// Runs flowrun (`-j 1`) and Snakemake on `targets`; both must succeed and write `check`
/// with the content `expected`. Returns flowrun's run.
fn both_make((fr, sm): &(Project, Project), targets: &[&str], check: &str, expected: &str) -> Run {
    let mut args = vec!["wf.rhai", "-j", "1"];
    args.extend(targets);
    let run = fr.run(&args).code(0);
    assert_eq!(fr.read(check), expected, "flowrun's {check}");
    if let Some(s) = run_snakemake(sm.path(), targets) {
        s.code(0);
        assert_eq!(sm.read(check), expected, "Snakemake's {check}");
    }
    run
}

/// Runs both on `targets`; both must fail, flowrun with a workflow error holding `text`.
fn both_refuse(p: &(Project, Project), targets: &[&str], text: &str) -> Run {
    let mut args = vec!["wf.rhai"];
    args.extend(targets);
    let run = p.0.run(&args).workflow_error().stderr_has(text);
    if let Some(s) = run_snakemake(p.1.path(), targets) {
        assert_ne!(s.code, 0, "Snakemake accepted it\n{}", s.stderr);
    }
    run
}

const GZ_FLOW: &str = r#"
rule("all", #{ input: "out.gz" });
rule("from_txt", #{ input: "in.txt", output: "{x}.gz", shell: "echo txt > {output}" });
rule("from_csv", #{ input: "in.csv", output: "{x}.gz", shell: "echo csv > {output}" });
"#;

const GZ_SNAKE: &str = r#"
rule all:
    input: "out.gz"
rule from_txt:
    input: "in.txt"
    output: "{x}.gz"
    shell: "echo txt > {output}"
rule from_csv:
    input: "in.csv"
    output: "{x}.gz"
    shell: "echo csv > {output}"
"#;

#[test]
fn only_the_rule_whose_inputs_exist_is_a_candidate() {
    let p = twins(GZ_FLOW, GZ_SNAKE, &[("in.csv", "c\n")]);
    let run = both_make(&p, &[], "out.gz", "csv\n");
    assert_eq!(run.ran(), ["from_csv[x=out]", "all"]);
}

#[test]
fn a_rule_whose_inputs_another_rule_makes_is_a_candidate() {
    let flow = format!(
        "{GZ_FLOW}rule(\"csv\", #{{ output: \"in.csv\", shell: \"echo c > {{output}}\" }});\n"
    );
    let snake = format!(
        "{GZ_SNAKE}rule csv:\n    output: \"in.csv\"\n    shell: \"echo c > {{output}}\"\n"
    );
    let p = twins(&flow, &snake, &[]);
    let run = both_make(&p, &[], "out.gz", "csv\n");
    assert_eq!(run.ran(), ["csv", "from_csv[x=out]", "all"]);
}

#[test]
fn two_rules_that_can_both_run_are_ambiguous() {
    let p = twins(GZ_FLOW, GZ_SNAKE, &[("in.csv", "c\n"), ("in.txt", "t\n")]);
    both_refuse(
        &p,
        &[],
        "error: `out.gz` can be made by more than one rule: `from_txt`, `from_csv`",
    )
    .stderr_has("hint: say which wins with `rule_order([\"from_txt\", \"from_csv\"])`");
}

#[test]
fn neither_rule_can_run_is_said_so() {
    let p = twins(GZ_FLOW, GZ_SNAKE, &[]);
    both_refuse(
        &p,
        &[],
        "error: `out.gz` could be made by `from_txt`, `from_csv`, but none of them can run: each needs an input that neither exists nor can be made",
    );
    // With an order, the preferred rule is taken and its missing input reported.
    let p = twins(
        &format!("{GZ_FLOW}rule_order([\"from_csv\", \"from_txt\"]);\n"),
        &format!("{GZ_SNAKE}ruleorder: from_csv > from_txt\n"),
        &[],
    );
    both_refuse(
        &p,
        &[],
        "error: missing input `in.csv`, needed by from_csv[x=out], and no rule makes it",
    );
}

#[test]
fn rule_order_decides_and_a_later_clause_wins() {
    let files = [("in.csv", "c\n"), ("in.txt", "t\n")];
    let p = twins(
        &format!("{GZ_FLOW}rule_order([\"from_csv\", \"from_txt\"]);\n"),
        &format!("{GZ_SNAKE}ruleorder: from_csv > from_txt\n"),
        &files,
    );
    both_make(&p, &[], "out.gz", "csv\n");
    let p = twins(
        &format!(
            "{GZ_FLOW}rule_order([\"from_csv\", \"from_txt\"]);\nrule_order([\"from_txt\", \"from_csv\"]);\n"
        ),
        &format!("{GZ_SNAKE}ruleorder: from_csv > from_txt\nruleorder: from_txt > from_csv\n"),
        &files,
    );
    both_make(&p, &[], "out.gz", "txt\n");
}

#[test]
fn rule_order_comes_before_priority() {
    let flow = GZ_FLOW.replace(
        "output: \"{x}.gz\", shell: \"echo txt",
        "output: \"{x}.gz\", priority: 5, shell: \"echo txt",
    );
    let p = Project::new();
    p.file(
        "wf.rhai",
        &format!("{flow}rule_order([\"from_csv\", \"from_txt\"]);\n"),
    )
    .file("in.csv", "c\n")
    .file("in.txt", "t\n");
    p.run(&["wf.rhai", "-j", "1"]).code(0);
    assert_eq!(p.read("out.gz"), "csv\n");
    p.file("wf.rhai", &flow).remove("out.gz");
    p.run(&["wf.rhai", "-j", "1"]).code(0);
    assert_eq!(p.read("out.gz"), "txt\n");
}

#[test]
fn rule_order_names_must_be_rules() {
    let p = Project::new();
    p.file(
        "wf.rhai",
        &format!("{GZ_FLOW}rule_order([\"form_csv\", \"from_txt\"]);\n"),
    );
    p.run(&["wf.rhai", "-n"])
        .workflow_error()
        .stderr_has("error: rule_order: there is no rule `form_csv`")
        .stderr_has("did you mean `from_csv`?");
    p.file(
        "wf.rhai",
        &format!("{GZ_FLOW}rule_order([\"from_csv\"]);\n"),
    );
    p.run(&["wf.rhai", "-n"])
        .workflow_error()
        .stderr_has("rule_order: name at least two rules, most preferred first");
}

const CYCLE_FLOW: &str = r#"
rule("a", #{ input: "x.txt", output: "a.txt", shell: "cp {input} {output}" });
rule("b", #{ input: "a.txt", output: "{n}.txt", wildcard_constraints: #{ n: "x" }, shell: "cp {input} {output}" });
"#;

const CYCLE_SNAKE: &str = r#"
rule a:
    input: "x.txt"
    output: "a.txt"
    shell: "cp {input} {output}"
rule b:
    input: "a.txt"
    output: "{n}.txt"
    wildcard_constraints: n="x"
    shell: "cp {input} {output}"
"#;

#[test]
fn an_existing_file_a_rule_could_make_is_not_a_cycle() {
    let p = twins(CYCLE_FLOW, CYCLE_SNAKE, &[("x.txt", "source\n")]);
    let run = both_make(&p, &["a.txt"], "a.txt", "source\n");
    assert_eq!(run.ran(), ["a"]);
}

#[test]
fn a_missing_file_in_a_loop_is_still_a_cycle() {
    let p = twins(CYCLE_FLOW, CYCLE_SNAKE, &[]);
    both_refuse(
        &p,
        &["a.txt"],
        "error: the rules form a cycle: a -> b[n=x] -> a",
    );
}

#[test]
fn an_existing_output_stands_in_for_a_job_missing_its_input() {
    let flow = r#"
rule("all", #{ input: "b.txt" });
rule("a", #{ input: "raw.txt", output: "a.txt", shell: "cp {input} {output}" });
rule("b", #{ input: "a.txt", output: "b.txt", shell: "cp {input} {output}" });
"#;
    let snake = r#"
rule all:
    input: "b.txt"
rule a:
    input: "raw.txt"
    output: "a.txt"
    shell: "cp {input} {output}"
rule b:
    input: "a.txt"
    output: "b.txt"
    shell: "cp {input} {output}"
"#;
    let p = twins(flow, snake, &[("a.txt", "kept\n")]);
    let run = both_make(&p, &[], "b.txt", "kept\n");
    assert_eq!(run.ran(), ["b", "all"]);
    // Without the file, the missing input is reported as before.
    let p = twins(flow, snake, &[]);
    both_refuse(
        &p,
        &[],
        "error: missing input `raw.txt`, needed by a, and no rule makes it",
    );
}

const FROM_FLOW: &str = r#"
rule("all", #{ input: "final.txt" });
rule("one", #{ output: "{s}.mid", shell: "echo one > {output}" });
rule("two", #{ output: "{s}.mid", shell: "echo two > {output}" });
rule("last", #{ input: rules("two").output, output: "final.txt", shell: "cp {input} {output}" });
"#;

#[test]
fn an_input_from_rules_b_output_comes_from_rule_b() {
    let snake = r#"
rule all:
    input: "final.txt"
rule one:
    output: "a.mid"
    shell: "echo one > {output}"
rule two:
    output: "a.mid"
    shell: "echo two > {output}"
rule last:
    input: rules.two.output
    output: "final.txt"
    shell: "cp {input} {output}"
"#;
    let flow = FROM_FLOW.replace("{s}.mid", "a.mid");
    let p = twins(&flow, snake, &[]);
    let run = both_make(&p, &[], "final.txt", "two\n");
    assert_eq!(run.ran(), ["two", "last", "all"]);
}

#[test]
fn rules_b_output_is_the_pattern_and_its_wildcards_bind_per_job() {
    let flow = FROM_FLOW
        .replace(
            "output: \"final.txt\"",
            "output: \"{s}.final\", wildcard_constraints: #{ s: \"[a-z]+\" }",
        )
        .replace("input: \"final.txt\"", "input: [\"a.final\", \"b.final\"]");
    let p = Project::new();
    p.file(
        "wf.rhai",
        &(flow + "print(`${rules(\"two\").name}: ${rules(\"two\").output[0]}`);"),
    );
    let run = p
        .run(&["wf.rhai", "-j", "1"])
        .code(0)
        .stderr_has("two: {s}.mid");
    assert_eq!(
        run.ran_sorted(),
        ["all", "last[s=a]", "last[s=b]", "two[s=a]", "two[s=b]"]
    );
    assert_eq!(p.read("b.final"), "two\n");
}

#[test]
fn rules_of_an_unknown_or_later_rule_is_an_error() {
    let p = Project::new();
    p.file(
        "wf.rhai",
        r#"
rule("all", #{ input: rules("make").output });
rule("make", #{ output: "x.txt", shell: "touch {output}" });
"#,
    );
    p.run(&["wf.rhai", "-n"])
        .workflow_error()
        .stderr_has("rules: there is no rule `make` above this line (`rules(name)` sees the rules declared before it)")
        .stderr_has("wf.rhai:2");
    p.file(
        "wf.rhai",
        r#"
rule("make", #{ output: "x.txt", shell: "touch {output}" });
rule("all", #{ input: rules("mkae").output });
"#,
    );
    p.run(&["wf.rhai", "-n"])
        .workflow_error()
        .stderr_has("did you mean `make`?");
}

#[test]
fn a_look_ahead_through_growing_wildcards_ends() {
    let p = Project::new();
    // One chain that grows its path at every step: bounded by depth, then remembered.
    p.file(
        "wf.rhai",
        r#"
rule("a", #{ input: "{x}.y", output: "{x}", shell: "cp {input} {output}" });
rule("b", #{ input: "nothere", output: "{x}", shell: "cp {input} {output}" });
"#,
    );
    p.run(&["wf.rhai", "-n", "q"]).workflow_error().stderr_has(
        "`q` could be made by `a`, `b`, but none of them can run: each needs an input that neither exists nor can be made",
    );
    // Branching chains that never end: bounded by how many jobs one choice may look at.
    p.file(
        "wf.rhai",
        r#"
rule("a", #{ input: ["{x}.p", "{x}.q"], output: "{x}", shell: "true" });
rule("b", #{ input: ["{x}.q", "{x}.p"], output: "{x}", shell: "true" });
rule("c", #{ input: "{x}.r", output: "{x}", shell: "true" });
"#,
    );
    p.run(&["wf.rhai", "-n", "q"])
        .workflow_error()
        .stderr_has("`q` could be made by `a`, `b`, `c`, but deciding which can run means looking at more than 100000 jobs")
        .stderr_has("hint: rules whose inputs match their own outputs with longer wildcard values never end");
}
