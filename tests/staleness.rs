//! Deciding what is outdated (DESIGN.md §3): every reason of `src/reason.rs` in the situation
//! that causes it, as `-n` prints it, and the overrides (`--rerun-triggers`, `-F`, `-R`,
//! `--until`), `--summary` and early cutoff.

mod common;
use common::Project;

/// in.txt -> a -> a.txt -> b -> b.txt -> c -> c.txt, with `all` wanting c.txt.
const CHAIN: &str = r#"
rule("all", #{ input: "c.txt" });
rule("a", #{ input: "in.txt", output: "a.txt", shell: "cut -c1 {input} > {output}" });
rule("b", #{ input: "a.txt", output: "b.txt", params: #{ tag: "B" }, shell: "cat {input} > {output}; echo {params.tag} >> {output}" });
rule("c", #{ input: "b.txt", output: "c.txt", run: |job| { write_text(job.output[0], read_text(job.input[0]) + "C\n"); } });
"#;

fn chain() -> Project {
    let p = Project::new();
    p.file("wf.rhai", CHAIN).file("in.txt", "1\n");
    p
}

fn built_chain() -> Project {
    let p = chain();
    let run = p.run(&["wf.rhai"]).code(0);
    assert_eq!(run.ran(), ["a", "b", "c", "all"]);
    assert_eq!(p.read("c.txt"), "1\nB\nC\n");
    p
}

fn nothing_to_do(p: &Project) {
    let plan = p.run(&["wf.rhai", "-n"]).code(0);
    assert!(plan.planned().is_empty(), "{}", plan.stdout);
    plan.stdout_has("nothing to be done: every output is up to date");
    let run = p.run(&["wf.rhai"]).code(0);
    assert!(run.ran().is_empty(), "{}", run.stderr);
}

/// Checks there is nothing to do, then writes `text` to `in.txt` and checks that `a` reruns
/// for it.
fn then_a_content_change_reruns(p: &Project, text: &str) {
    nothing_to_do(p);
    p.file("in.txt", text);
    assert_eq!(
        p.run(&["wf.rhai", "-n"]).code(0).reasons("a"),
        ["input `in.txt` changed"]
    );
}

/// Gives rule `a` a second input, `extra.txt`.
fn add_extra_input(p: &Project) {
    p.file("extra.txt", "E\n");
    edit(p, r#"input: "in.txt""#, r#"input: ["in.txt", "extra.txt"]"#);
}

fn edit(p: &Project, from: &str, to: &str) {
    let text = p.read("wf.rhai");
    assert!(text.contains(from), "{from:?} not in the workflow");
    p.file("wf.rhai", &text.replacen(from, to, 1));
}

// ---------------------------------------------------------------------------------------------
// Outputs

#[test]
fn missing_outputs_are_the_reason_on_a_first_run() {
    let p = chain();
    let plan = p.run(&["wf.rhai", "-n"]).code(0);
    assert_eq!(plan.planned(), ["a", "b", "c", "all"]);
    assert_eq!(plan.reasons("a"), ["output `a.txt` is missing"]);
    assert_eq!(
        plan.reasons("b"),
        [
            "output `b.txt` is missing",
            "input made by a, which runs first"
        ]
    );
    assert_eq!(plan.reasons("all"), ["input made by c, which runs first"]);
}

#[test]
fn several_missing_outputs_are_listed() {
    let p = Project::new();
    p.file(
        "wf.rhai",
        r#"rule("many", #{ output: ["o1", "o2", "o3", "o4", "o5"], shell: "touch {output}" });"#,
    );
    let plan = p.run(&["wf.rhai", "-n"]).code(0);
    assert_eq!(
        plan.reasons("many"),
        ["outputs `o1`, `o2`, `o3` and 2 more are missing"]
    );
}

#[test]
fn a_deleted_output_reruns_its_job_and_downstream_is_cut_off() {
    let p = built_chain();
    p.remove("b.txt");
    let plan = p.run(&["wf.rhai", "-n"]).code(0);
    assert_eq!(plan.planned(), ["b", "c", "all"]);
    assert_eq!(plan.reasons("b"), ["output `b.txt` is missing"]);
    assert_eq!(plan.reasons("c"), ["input made by b, which runs first"]);
    let run = p.run(&["wf.rhai"]).code(0);
    // b came back byte-identical, so c did not need to run.
    assert_eq!(run.ran(), ["b", "all"]);
    nothing_to_do(&p);
}

#[test]
fn an_output_left_incomplete_by_a_failed_run_reruns() {
    let p = Project::new();
    p.file("in.txt", "1\n").file(
        "wf.rhai",
        r#"rule("half", #{ input: "in.txt", output: "out.txt", shell: "echo half > {output}; test ! -e fail" });"#,
    );
    p.run(&["wf.rhai"]).code(0);
    p.file("fail", "").file("in.txt", "2\n");
    p.run(&["wf.rhai", "--keep-incomplete"]).code(1);
    assert_eq!(
        p.read("out.txt"),
        "half\n",
        "--keep-incomplete keeps the output"
    );
    std::fs::remove_file(p.path().join("fail")).unwrap();
    let plan = p.run(&["wf.rhai", "-n"]).code(0);
    assert_eq!(
        plan.reasons("half"),
        ["output `out.txt` was left incomplete by an earlier run"]
    );
    p.run(&["wf.rhai", "--summary"]).code(0).stdout_has(
        "out.txt  incomplete  half  output `out.txt` was left incomplete by an earlier run",
    );
    p.run(&["wf.rhai"]).code(0);
    nothing_to_do(&p);
}

#[test]
fn a_rule_without_outputs_always_runs() {
    let p = Project::new();
    p.file(
        "wf.rhai",
        r#"rule("hello", #{ shell: "echo hello >> said" });"#,
    );
    p.run(&["wf.rhai"]).code(0);
    let plan = p.run(&["wf.rhai", "-n"]).code(0);
    assert_eq!(
        plan.reasons("hello"),
        ["the rule has no outputs, so it always runs"]
    );
    p.run(&["wf.rhai"]).code(0);
    assert_eq!(p.read("said"), "hello\nhello\n");
}

// ---------------------------------------------------------------------------------------------
// Inputs

#[test]
fn changed_input_content_reruns_with_the_input_named() {
    let p = built_chain();
    p.file("in.txt", "2\n");
    let plan = p.run(&["wf.rhai", "-n"]).code(0);
    assert_eq!(plan.reasons("a"), ["input `in.txt` changed"]);
    assert_eq!(plan.reasons("b"), ["input made by a, which runs first"]);
    let run = p.run(&["wf.rhai"]).code(0);
    assert_eq!(run.ran(), ["a", "b", "c", "all"]);
    assert_eq!(p.read("c.txt"), "2\nB\nC\n");
    nothing_to_do(&p);
}

#[test]
fn touching_an_input_without_changing_it_does_not_rerun() {
    let p = built_chain();
    p.set_mtime(
        "in.txt",
        std::time::SystemTime::now() + std::time::Duration::from_secs(5),
    );
    nothing_to_do(&p);
    // The touch was recorded: still nothing to do, now on the fast path.
    nothing_to_do(&p);
}

#[test]
fn copying_identical_content_over_an_input_does_not_rerun() {
    let p = built_chain();
    p.file("copy.txt", "1\n");
    std::fs::copy(p.path().join("copy.txt"), p.path().join("in.txt")).unwrap();
    // Same size, different content: reruns.
    then_a_content_change_reruns(&p, "9\n");
}

/// Asserts that a dry run gives `job` exactly one reason: `input` changed.
fn plan_says_changed(p: &Project, job: &str, input: &str) {
    assert_eq!(
        p.run(&["wf.rhai", "-n"]).code(0).reasons(job),
        [format!("input `{input}` changed")]
    );
}

/// Rewrites `rel` with `text` (which must be of the same size) and puts its modification time
/// back: an edit that the mtime fast path cannot see, used to show which hash a record took.
fn edit_behind_flowrun(p: &Project, rel: &str, text: &str) {
    let before = p.mtime(rel);
    assert_eq!(p.read(rel).len(), text.len());
    p.file(rel, text).set_mtime(rel, before);
}

#[test]
fn a_starting_job_takes_an_unchanged_inputs_hash_from_the_store() {
    let p = built_chain();
    // From the job's own last record: `a` reruns and reads the new bytes, but in.txt's mtime
    // and size match that record, so its hash is taken from there, as the fast path would.
    edit_behind_flowrun(&p, "in.txt", "2\n");
    p.run(&["wf.rhai", "-R", "a"]).code(0);
    assert_eq!(p.read("a.txt"), "2\n");
    // From the record of the job making the input: b gets a new first input, so its last
    // record has nothing for a.txt at that place; a's record of a.txt still matches.
    edit_behind_flowrun(&p, "a.txt", "7\n");
    p.file("extra.txt", "E\n");
    edit(&p, r#"input: "a.txt""#, r#"input: ["extra.txt", "a.txt"]"#);
    edit(&p, "cat {input}", "cat {input[1]}");
    p.run(&["wf.rhai", "b.txt"]).code(0);
    assert_eq!(p.read("b.txt"), "7\nB\n");
    // Proof that neither file was hashed: after a touch each is hashed and found changed.
    p.touch("a.txt");
    plan_says_changed(&p, "b", "a.txt");
    p.touch("in.txt");
    plan_says_changed(&p, "a", "in.txt");
}

#[test]
fn an_added_or_removed_input_reruns() {
    let p = built_chain();
    add_extra_input(&p);
    let plan = p.run(&["wf.rhai", "-n"]).code(0);
    assert_eq!(
        plan.reasons("a"),
        ["the set of inputs changed (added `extra.txt`)"]
    );
    p.run(&["wf.rhai"]).code(0);
    nothing_to_do(&p);
    edit(
        &p,
        r#"input: ["in.txt", "extra.txt"]"#,
        r#"input: "in.txt""#,
    );
    let plan = p.run(&["wf.rhai", "-n"]).code(0);
    assert_eq!(
        plan.reasons("a"),
        ["the set of inputs changed (removed `extra.txt`)"]
    );
}

#[test]
fn input_set_change_is_not_a_reason_without_the_input_trigger() {
    let p = built_chain();
    add_extra_input(&p);
    let plan = p
        .run(&["wf.rhai", "-n", "--rerun-triggers", "content,code,params"])
        .code(0);
    assert!(plan.planned().is_empty(), "{}", plan.stdout);
}

// ---------------------------------------------------------------------------------------------
// Code and params

#[test]
fn shell_code_change_reruns_but_whitespace_does_not() {
    let p = built_chain();
    edit(
        &p,
        "cut -c1 {input} > {output}",
        "cut   -c1  {input} \t     > {output}  ",
    );
    nothing_to_do(&p);
    edit(&p, "cut   -c1", "cut -c 1");
    let plan = p.run(&["wf.rhai", "-n"]).code(0);
    assert_eq!(plan.reasons("a"), ["the rule's code changed"]);
    // The command changed but its output did not: downstream is cut off.
    let run = p.run(&["wf.rhai"]).code(0);
    assert_eq!(run.ran(), ["a", "all"]);
    nothing_to_do(&p);
}

#[test]
fn closure_code_change_reruns_but_whitespace_does_not() {
    let p = built_chain();
    edit(
        &p,
        r#"run: |job| { write_text(job.output[0], read_text(job.input[0]) + "C\n"); }"#,
        "run: |job| {\n        write_text(job.output[0],\n            read_text(job.input[0]) + \"C\\n\");\n    }",
    );
    nothing_to_do(&p);
    edit(&p, r#"+ "C\n");"#, r#"+ "C!\n");"#);
    let plan = p.run(&["wf.rhai", "-n"]).code(0);
    assert_eq!(plan.planned(), ["c", "all"]);
    assert_eq!(plan.reasons("c"), ["the rule's code changed"]);
    p.run(&["wf.rhai"]).code(0);
    assert_eq!(p.read("c.txt"), "1\nB\nC!\n");
    nothing_to_do(&p);
}

#[test]
fn moving_a_rule_in_the_file_is_not_a_code_change() {
    let p = built_chain();
    let text = p.read("wf.rhai");
    p.file("wf.rhai", &format!("// a comment\n\n\n{text}"));
    nothing_to_do(&p);
}

#[test]
fn a_captured_value_in_a_closure_is_part_of_its_code() {
    let p = Project::new();
    p.file(
        "wf.rhai",
        "let suffix = \"v1\";\nrule(\"r\", #{ output: \"o.txt\", run: |job| write_text(job.output[0], suffix) });\n",
    );
    p.run(&["wf.rhai"]).code(0);
    nothing_to_do(&p);
    edit(&p, "\"v1\"", "\"v2\"");
    assert_eq!(
        p.run(&["wf.rhai", "-n"]).code(0).reasons("r"),
        ["the rule's code changed"]
    );
    p.run(&["wf.rhai"]).code(0);
    assert_eq!(p.read("o.txt"), "v2");
}

/// `uses` calls the helper `label` (which calls `mark`), `other` calls no script function,
/// `after` reads what `uses` makes.
const HELPERS: &str = r#"
fn mark(text) { text + "!" }

fn label(name) {
    mark("hello " + name)
}

rule("all", #{ input: ["after.txt", "other.txt"] });
rule("uses", #{ output: "uses.txt", run: |job| write_text(job.output[0], label("a") + "\n") });
rule("other", #{ output: "other.txt", run: |job| write_text(job.output[0], "other\n") });
rule("after", #{ input: "uses.txt", output: "after.txt", shell: "cat {input} > {output}" });
"#;

fn built_helpers() -> Project {
    let p = Project::new();
    p.file("wf.rhai", HELPERS);
    p.run(&["wf.rhai"]).code(0);
    assert_eq!(p.read("after.txt"), "hello a!\n");
    nothing_to_do(&p);
    p
}

#[test]
fn editing_a_helper_reruns_the_rules_that_call_it_and_only_those() {
    let p = built_helpers();
    edit(&p, r#"mark("hello " + name)"#, r#"mark("hi " + name)"#);
    let plan = p.run(&["wf.rhai", "-n"]).code(0);
    assert_eq!(plan.planned(), ["uses", "after", "all"]);
    assert_eq!(plan.reasons("uses"), ["the rule's code changed"]);
    let run = p.run(&["wf.rhai"]).code(0);
    assert_eq!(run.ran(), ["uses", "after", "all"]);
    assert_eq!(p.read("after.txt"), "hi a!\n");
    nothing_to_do(&p);
}

#[test]
fn editing_a_helper_of_a_helper_reruns_the_caller() {
    let p = built_helpers();
    edit(&p, r#"text + "!""#, r#"text + "?""#);
    let plan = p.run(&["wf.rhai", "-n"]).code(0);
    assert_eq!(plan.planned(), ["uses", "after", "all"]);
    assert_eq!(plan.reasons("uses"), ["the rule's code changed"]);
    p.run(&["wf.rhai"]).code(0);
    assert_eq!(p.read("after.txt"), "hello a?\n");
}

#[test]
fn reformatting_or_moving_a_helper_reruns_nothing() {
    let p = built_helpers();
    edit(
        &p,
        "fn label(name) {\n    mark(\"hello \" + name)\n}",
        "fn   label(name)\n{\n        mark(\"hello \"\n   +   name)   }",
    );
    nothing_to_do(&p);
    // Moved below the rules, after a comment.
    let text = p.read("wf.rhai");
    let (helper, rest) = text.split_at(text.find("rule(\"all\"").unwrap());
    p.file("wf.rhai", &format!("{rest}\n// the helpers\n{helper}"));
    nothing_to_do(&p);
}

#[test]
fn editing_the_left_operand_of_a_closure_without_braces_reruns_it() {
    // Rhai places `x * 2 + 1` at its `+`; the code is the whole expression all the same.
    let p = Project::new();
    p.file(
        "wf.rhai",
        r#"
rule("sum", #{ output: "sum.txt", items: [1, 2, 3], map: |job, x| x * 2 + 1, init: 0,
               reduce: |acc, y| acc + y, finish: |job, n| write_text(job.output[0], `${n}`) });
"#,
    );
    p.run(&["wf.rhai"]).code(0);
    assert_eq!(p.read("sum.txt"), "15");
    nothing_to_do(&p);
    edit(&p, "x * 2 + 1", "x * 3 + 1");
    let plan = p.run(&["wf.rhai", "-n"]).code(0);
    assert_eq!(plan.planned(), ["sum"]);
    assert_eq!(plan.reasons("sum"), ["the rule's code changed"]);
    p.run(&["wf.rhai"]).code(0);
    assert_eq!(p.read("sum.txt"), "21");
}

#[test]
fn editing_a_typed_method_a_closure_calls_reruns_it() {
    let p = Project::new();
    p.file(
        "wf.rhai",
        r#"
fn int.twice() { this * 2 }
rule("r", #{ output: "r.txt", run: |job| write_text(job.output[0], `${21.twice()}`) });
"#,
    );
    p.run(&["wf.rhai"]).code(0);
    assert_eq!(p.read("r.txt"), "42");
    nothing_to_do(&p);
    edit(&p, "this * 2", "this * 3");
    let plan = p.run(&["wf.rhai", "-n"]).code(0);
    assert_eq!(plan.planned(), ["r"]);
    assert_eq!(plan.reasons("r"), ["the rule's code changed"]);
    p.run(&["wf.rhai"]).code(0);
    assert_eq!(p.read("r.txt"), "63");
}

#[test]
fn a_recursive_helper_is_followed_without_hanging() {
    let p = Project::new();
    p.file(
        "wf.rhai",
        r#"
fn even(n) { if n == 0 { true } else { odd(n - 1) } }
fn odd(n) { if n == 0 { false } else { even(n - 1) } }
fn fact(n) { if n < 2 { 1 } else { n * fact(n - 1) } }
rule("r", #{ output: "r.txt", run: |job| write_text(job.output[0], `${fact(5)} ${even(4)}`) });
"#,
    );
    p.run(&["wf.rhai"]).code(0);
    assert_eq!(p.read("r.txt"), "120 true");
    nothing_to_do(&p);
    edit(
        &p,
        "if n == 0 { false }",
        "if n == 0 { false } else if n == 1 { true }",
    );
    assert_eq!(
        p.run(&["wf.rhai", "-n"]).code(0).reasons("r"),
        ["the rule's code changed"]
    );
}

/// A rule file with a public helper that calls a private one, imported by the workflow.
const RULE_FILE: &str = r#"
private fn pad(text) { "[" + text + "]" }

fn tag(text) { pad(text) }

fn tagged_rule(name) {
    rule(name, #{ output: `${name}.txt`, run: |job| write_text(job.output[0], tag(name)) });
}
"#;

#[test]
fn editing_a_helper_in_an_imported_rule_file_reruns_its_callers() {
    let p = Project::new();
    p.file("rules/tags.rhai", RULE_FILE).file(
        "wf.rhai",
        r#"
import "rules/tags" as tags;
rule("all", #{ input: ["main.txt", "inner.txt", "plain.txt"] });
rule("main", #{ output: "main.txt", run: |job| write_text(job.output[0], tags::tag("m")) });
rule("plain", #{ output: "plain.txt", run: |job| write_text(job.output[0], "p") });
tags::tagged_rule("inner");
"#,
    );
    p.run(&["wf.rhai"]).code(0);
    assert_eq!(p.read("main.txt"), "[m]");
    assert_eq!(p.read("inner.txt"), "[inner]");
    nothing_to_do(&p);

    let rules = p.read("rules/tags.rhai");
    p.file(
        "rules/tags.rhai",
        &format!(
            "// tags\n{}",
            rules.replace("{ pad(text) }", "{\n    pad(text)\n}")
        ),
    );
    nothing_to_do(&p);

    let rules = p.read("rules/tags.rhai");
    p.file(
        "rules/tags.rhai",
        &rules.replace(r#""[" + text + "]""#, r#""<" + text + ">""#),
    );
    let plan = p.run(&["wf.rhai", "-n"]).code(0);
    assert_eq!(plan.planned(), ["main", "inner", "all"]);
    assert_eq!(plan.reasons("main"), ["the rule's code changed"]);
    assert_eq!(plan.reasons("inner"), ["the rule's code changed"]);
    p.run(&["wf.rhai"]).code(0);
    assert_eq!(p.read("main.txt"), "<m>");
    assert_eq!(p.read("inner.txt"), "<inner>");
}

#[test]
fn a_function_named_at_run_time_is_not_followed() {
    // Documented limit (docs/staleness.md): only calls written in the code are followed.
    let p = Project::new();
    p.file(
        "wf.rhai",
        r#"
fn shout(x) { x + "!" }
let name = "shout";
rule("r", #{ output: "r.txt", run: |job| write_text(job.output[0], call(Fn(name), "a")) });
"#,
    );
    p.run(&["wf.rhai"]).code(0);
    edit(&p, r#"x + "!""#, r#"x + "?""#);
    nothing_to_do(&p);
    assert_eq!(p.read("r.txt"), "a!");
}

#[test]
fn params_change_reruns() {
    let p = built_chain();
    edit(&p, r#"tag: "B""#, r#"tag: "X""#);
    let plan = p.run(&["wf.rhai", "-n"]).code(0);
    assert_eq!(plan.planned(), ["b", "c", "all"]);
    assert_eq!(plan.reasons("b"), ["the rule's params changed"]);
    p.run(&["wf.rhai"]).code(0);
    assert_eq!(p.read("c.txt"), "1\nX\nC\n");
    nothing_to_do(&p);
}

#[test]
fn code_and_params_triggers_can_be_turned_off() {
    let p = built_chain();
    edit(&p, r#"tag: "B""#, r#"tag: "X""#);
    edit(&p, "cut -c1", "cut -c 1");
    let plan = p
        .run(&["wf.rhai", "-n", "--rerun-triggers", "content"])
        .code(0);
    assert!(plan.planned().is_empty(), "{}", plan.stdout);
    let plan = p
        .run(&["wf.rhai", "-n", "--rerun-triggers", "content,params"])
        .code(0);
    assert_eq!(plan.planned(), ["b", "c", "all"]);
}

#[test]
fn an_output_made_by_another_rule_before_reruns() {
    let p = Project::new();
    p.file(
        "wf.rhai",
        r#"rule("old", #{ output: "x.txt", shell: "echo same > {output}" });"#,
    );
    p.run(&["wf.rhai"]).code(0);
    p.file(
        "wf.rhai",
        r#"rule("new", #{ output: "x.txt", shell: "echo same > {output}" });"#,
    );
    let plan = p.run(&["wf.rhai", "-n"]).code(0);
    assert_eq!(
        plan.reasons("new"),
        ["the output was made by rule `old` before"]
    );
}

// ---------------------------------------------------------------------------------------------
// Upstream and early cutoff

#[test]
fn upstream_rerun_with_identical_output_skips_downstream() {
    let p = built_chain();
    let c_before = p.mtime("c.txt");
    // `cut -c1` keeps only the first character: the new input makes the same a.txt.
    p.file("in.txt", "1 and more\n");
    let plan = p.run(&["wf.rhai", "-n"]).code(0);
    assert_eq!(plan.planned(), ["a", "b", "c", "all"]);
    let run = p
        .run(&["wf.rhai"])
        .code(0)
        .stderr_has("Skipped [2/4] b: its inputs were remade byte-identical")
        .stderr_has("Skipped [3/4] c: its inputs were remade byte-identical")
        .stderr_has("done: 2 ran, 2 skipped (inputs unchanged)");
    assert_eq!(run.ran(), ["a", "all"]);
    assert_eq!(p.mtime("c.txt"), c_before, "c.txt was rewritten");
    nothing_to_do(&p);
}

#[test]
fn upstream_rerun_with_changed_output_reruns_downstream() {
    let p = built_chain();
    p.file("in.txt", "7\n");
    let run = p.run(&["wf.rhai"]).code(0).stderr_lacks("Skipped");
    assert_eq!(run.ran(), ["a", "b", "c", "all"]);
}

#[test]
fn early_cutoff_stops_in_the_middle_of_a_chain() {
    let p = Project::new();
    p.file("in.txt", "3\n").file(
        "wf.rhai",
        r#"
rule("all", #{ input: "d.txt" });
rule("a", #{ input: "in.txt", output: "a.txt", shell: "cat {input} > {output}" });
rule("parity", #{ input: "a.txt", output: "b.txt", shell: "echo $(( $(cat {input}) % 2 )) > {output}" });
rule("d", #{ input: "b.txt", output: "d.txt", shell: "cat {input} > {output}; echo d >> {output}" });
"#,
    );
    p.run(&["wf.rhai"]).code(0);
    p.file("in.txt", "5\n");
    let run = p.run(&["wf.rhai"]).code(0).stderr_has("Skipped [3/4] d");
    assert_eq!(run.ran(), ["a", "parity", "all"]);
    p.file("in.txt", "6\n");
    let run = p.run(&["wf.rhai"]).code(0);
    assert_eq!(run.ran(), ["a", "parity", "d", "all"]);
    assert_eq!(p.read("d.txt"), "0\nd\n");
}

// ---------------------------------------------------------------------------------------------
// Make semantics and adoption

#[test]
fn mtime_trigger_gives_make_semantics() {
    let p = built_chain();
    for f in ["a.txt", "b.txt", "c.txt"] {
        p.age(f, 100);
    }
    // Only the record moved: the content trigger sees nothing.
    nothing_to_do(&p);
    p.touch("in.txt");
    let plan = p
        .run(&["wf.rhai", "-n", "--rerun-triggers", "mtime"])
        .code(0);
    assert_eq!(
        plan.reasons("a"),
        ["input `in.txt` is newer than the output"]
    );
    // Under Make semantics, a code change alone is not a reason.
    edit(&p, "cut -c1", "cut -c 1");
    let plan = p
        .run(&["wf.rhai", "-n", "--rerun-triggers", "mtime"])
        .code(0);
    assert_eq!(plan.planned(), ["a", "b", "c", "all"]);
    assert_eq!(
        plan.reasons("a"),
        ["input `in.txt` is newer than the output"]
    );
    let run = p.run(&["wf.rhai", "--rerun-triggers", "mtime"]).code(0);
    assert_eq!(run.ran().first().map(String::as_str), Some("a"));
}

#[test]
fn outputs_made_outside_flowrun_are_adopted_when_newer_than_inputs() {
    let p = chain();
    p.file("a.txt", "1\n");
    p.age("in.txt", 100);
    let plan = p.run(&["wf.rhai", "-n"]).code(0);
    assert_eq!(plan.planned(), ["b", "c", "all"], "{}", plan.stdout);
    let run = p.run(&["wf.rhai"]).code(0);
    assert_eq!(run.ran(), ["b", "c", "all"]);
    // Adopted: from now on content decides, so a touch does not rerun.
    p.touch("in.txt");
    then_a_content_change_reruns(&p, "2\n");
}

#[test]
fn outputs_made_outside_flowrun_older_than_inputs_rerun() {
    let p = chain();
    p.file("a.txt", "1\n");
    p.age("a.txt", 100);
    let plan = p.run(&["wf.rhai", "-n"]).code(0);
    assert_eq!(
        plan.reasons("a"),
        ["input `in.txt` is newer than the output (no record of how it was made)"]
    );
}

// ---------------------------------------------------------------------------------------------
// Overrides

#[test]
fn force_all_reruns_everything() {
    let p = built_chain();
    let plan = p.run(&["wf.rhai", "-n", "-F"]).code(0);
    assert_eq!(plan.planned(), ["a", "b", "c", "all"]);
    for job in ["a", "b", "c", "all"] {
        assert_eq!(plan.reasons(job), ["forced"], "{job}");
    }
    let run = p
        .run(&["wf.rhai", "--force-all"])
        .code(0)
        .stderr_lacks("Skipped");
    assert_eq!(run.ran(), ["a", "b", "c", "all"]);
}

#[test]
fn force_rule_reruns_it_and_everything_downstream() {
    let p = built_chain();
    let plan = p.run(&["wf.rhai", "-n", "-R", "b"]).code(0);
    assert_eq!(plan.planned(), ["b", "c", "all"]);
    assert_eq!(plan.reasons("b"), ["forced"]);
    assert_eq!(plan.reasons("c"), ["forced: downstream of forced job b"]);
    assert_eq!(plan.reasons("all"), ["forced: downstream of forced job c"]);
    // Forced jobs are not cut off even though b comes out the same.
    let run = p
        .run(&["wf.rhai", "--force", "b"])
        .code(0)
        .stderr_lacks("Skipped");
    assert_eq!(run.ran(), ["b", "c", "all"]);
}

#[test]
fn force_file_reruns_the_job_making_it_and_downstream() {
    let p = built_chain();
    let plan = p.run(&["wf.rhai", "-n", "-R", "a.txt"]).code(0);
    assert_eq!(plan.planned(), ["a", "b", "c", "all"]);
    assert_eq!(plan.reasons("a"), ["forced"]);
    assert_eq!(plan.reasons("b"), ["forced: downstream of forced job a"]);
}

#[test]
fn force_with_an_unknown_name_is_an_error() {
    let p = built_chain();
    p.run(&["wf.rhai", "-n", "-R", "bb"])
        .workflow_error()
        .stderr_has("`--force bb`: no rule of that name, and no job in this run makes that file")
        .stderr_has("did you mean `b`?");
    p.run(&["wf.rhai", "--until", "zzz.txt"])
        .workflow_error()
        .stderr_has("`--until zzz.txt`: no rule of that name");
}

#[test]
fn until_runs_only_up_to_the_named_rule() {
    let p = chain();
    let plan = p.run(&["wf.rhai", "-n", "--until", "b"]).code(0);
    assert_eq!(plan.planned(), ["a", "b"]);
    let run = p.run(&["wf.rhai", "--until", "b"]).code(0);
    assert_eq!(run.ran(), ["a", "b"]);
    assert!(p.exists("b.txt") && !p.exists("c.txt"));
    p.run(&["wf.rhai", "--summary", "--until", "b"])
        .code(0)
        .stdout_has("c.txt   excluded  c     not needed for --until");
    let run = p.run(&["wf.rhai"]).code(0);
    assert_eq!(run.ran(), ["c", "all"]);
}

#[test]
fn until_a_file() {
    let p = chain();
    let run = p.run(&["wf.rhai", "--until", "a.txt"]).code(0);
    assert_eq!(run.ran(), ["a"]);
}

// ---------------------------------------------------------------------------------------------
// Explaining

#[test]
fn summary_shows_every_output_with_its_state_and_why() {
    let p = chain();
    let out = p.run(&["wf.rhai", "--summary"]).code(0).stdout;
    assert_eq!(
        out,
        "output  state    rule  reason\n\
         a.txt   missing  a     output `a.txt` is missing\n\
         b.txt   missing  b     output `b.txt` is missing; input made by a, which runs first\n\
         c.txt   missing  c     output `c.txt` is missing; input made by b, which runs first\n"
    );
    p.run(&["wf.rhai"]).code(0);
    p.file("in.txt", "2\n");
    let out = p.run(&["wf.rhai", "--summary"]).code(0).stdout;
    assert_eq!(
        out,
        "output  state     rule  reason\n\
         a.txt   outdated  a     input `in.txt` changed\n\
         b.txt   outdated  b     input made by a, which runs first\n\
         c.txt   outdated  c     input made by b, which runs first\n"
    );
    p.run(&["wf.rhai"]).code(0);
    let out = p.run(&["wf.rhai", "--summary"]).code(0).stdout;
    assert_eq!(
        out,
        "output  state    rule  reason\n\
         a.txt   present  a     up to date\n\
         b.txt   present  b     up to date\n\
         c.txt   present  c     up to date\n"
    );
}

#[test]
fn verbose_run_prints_reasons_and_commands() {
    let p = chain();
    p.run(&["wf.rhai", "-v"])
        .code(0)
        .stderr_has("reason: output `a.txt` is missing")
        .stderr_has("cut -c1 in.txt > a.txt");
}

#[test]
fn quiet_run_prints_nothing_on_success() {
    let p = chain();
    let run = p.run(&["wf.rhai", "-q"]).code(0);
    assert_eq!(run.stderr, "");
    assert_eq!(run.stdout, "");
}

#[test]
fn the_store_is_one_database_under_dot_flowrun() {
    let p = built_chain();
    let mut names: Vec<String> = std::fs::read_dir(p.path().join(".flowrun"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with("store.db-"))
        .collect();
    names.sort();
    assert_eq!(names, ["lock", "store.db"]);
}

#[test]
fn a_hand_edited_intermediate_reruns_only_what_reads_it() {
    let p = built_chain();
    p.file("a.txt", "5\n");
    let plan = p.run(&["wf.rhai", "-n"]).code(0);
    assert_eq!(plan.planned(), ["b", "c", "all"]);
    assert_eq!(plan.reasons("b"), ["input `a.txt` changed"]);
    p.run(&["wf.rhai"]).code(0);
    assert_eq!(p.read("c.txt"), "5\nB\nC\n");
    // a's own output was edited, but a's inputs and code did not change: a stays.
    nothing_to_do(&p);
}

#[test]
fn a_failed_job_reruns_next_time_and_finished_ones_do_not() {
    let p = chain();
    edit(
        &p,
        "cat {input} > {output}; echo",
        "test ! -e fail; cat {input} > {output}; echo",
    );
    p.file("fail", "");
    let run = p.run(&["wf.rhai"]).code(1);
    assert_eq!(run.ran(), ["a", "b"]);
    assert!(!p.exists("b.txt"));
    p.remove("fail");
    let plan = p.run(&["wf.rhai", "-n"]).code(0);
    assert_eq!(plan.planned(), ["b", "c", "all"]);
    assert_eq!(plan.reasons("b"), ["output `b.txt` is missing"]);
}

/// `sums` sums the columns of `m.npy` and `m.f64` with the chunked model; `make.rhai` writes the
/// two files (as sources: its store is removed, so they have no recorded signature).
fn chunked_sums_over_sources() -> Project {
    let p = Project::new();
    p.file(
        "make.rhai",
        r#"rule("make", #{ output: ["m.npy", "m.f64"], run: |job| {
            write_random_npy(job.output[0], 30011, 3, 1);
            write_raw(job.output[1], random_matrix(20011, 2, 2));
        } });"#,
    )
    .file(
        "wf.rhai",
        r#"
rule("all", #{ input: ["npy.csv", "raw.csv"] });
rule("npy", #{ input: "m.npy", output: "npy.csv", model: "chunked", chunk: 1000, threads: 2,
    map: |job, rows| rows.col_sums(), reduce: |acc, s| acc + s,
    finish: |job, s| write_csv(job.output[0], s) });
rule("raw", #{ input: "m.f64", output: "raw.csv", params: #{ cols: 2 }, model: "chunked",
    chunk: 999, threads: 2,
    map: |job, rows| rows.col_sums(), reduce: |acc, s| acc + s,
    finish: |job, s| write_csv(job.output[0], s) });
"#,
    );
    p.run(&["make.rhai"]).code(0);
    std::fs::remove_dir_all(p.path().join(".flowrun")).unwrap();
    p
}

#[test]
fn a_chunked_jobs_first_run_records_the_hash_of_the_file_it_read() {
    let p = chunked_sums_over_sources();
    // The first run hashes the inputs from the chunks it reads; the hash must be the file's.
    p.run(&["wf.rhai"]).code(0);
    p.touch("m.npy").touch("m.f64");
    nothing_to_do(&p);
    // A real change (same size) is seen.
    let bytes = std::fs::read(p.path().join("m.f64")).unwrap();
    let mut changed = bytes.clone();
    changed[bytes.len() - 1] ^= 1;
    std::fs::write(p.path().join("m.f64"), changed).unwrap();
    plan_says_changed(&p, "raw", "m.f64");
}

#[test]
fn a_chunked_input_edited_while_its_job_reads_it_reruns_the_job_next_time() {
    let p = chunked_sums_over_sources();
    // The first chunk's map (the one starting with the file's first value) says it started and
    // waits until the test has rewritten the file in place.
    edit(
        &p,
        "map: |job, rows| rows.col_sums(), reduce: |acc, s| acc + s,\n    finish: |job, s| write_csv(job.output[0], s) });\nrule(\"raw\"",
        "map: |job, rows| {\n        if rows.get(0, 0) == read_rows(job.input[0], 0, 1).get(0, 0) {\n            write_text(\"started\", \"x\");\n            while !file_exists(\"edited\") {}\n        }\n        rows.col_sums()\n    },\n    reduce: |acc, s| acc + s,\n    finish: |job, s| write_csv(job.output[0], s) });\nrule(\"raw\"",
    );
    let run = p.spawn(&["wf.rhai", "npy.csv"]);
    p.wait_for("started", std::time::Duration::from_secs(60));
    let mut bytes = std::fs::read(p.path().join("m.npy")).unwrap();
    let last = bytes.len() - 1;
    bytes[200] ^= 1;
    bytes[last] ^= 1;
    std::os::unix::fs::FileExt::write_all_at(
        &std::fs::OpenOptions::new()
            .write(true)
            .open(p.path().join("m.npy"))
            .unwrap(),
        &bytes,
        0,
    )
    .unwrap();
    p.file("edited", "x");
    run.finish(std::time::Duration::from_secs(60)).code(0);
    plan_says_changed(&p, "npy", "m.npy");
}
