//! The job graph: targets, backward resolution, ambiguity, cycles, and the commands that print
//! the graph (`--list`, `--dag`, `--rulegraph`).

mod common;
use common::Project;

fn project(wf: &str) -> Project {
    let p = Project::new();
    p.file("wf.rhai", wf);
    p
}

// ---------------------------------------------------------------------------------------------
// Targets

#[test]
fn default_target_is_rule_all_even_when_declared_last() {
    let p = project(
        r#"
rule("first", #{ output: "first.txt", shell: "touch {output}" });
rule("second", #{ output: "second.txt", shell: "touch {output}" });
rule("all", #{ input: ["second.txt"] });
"#,
    );
    let run = p.run(&["wf.rhai", "-j", "1"]).code(0);
    assert_eq!(run.ran(), ["second", "all"]);
    assert!(!p.exists("first.txt"));
}

#[test]
fn default_target_without_all_is_the_first_rule() {
    let p = project(
        r#"
rule("first", #{ input: "dep.txt", output: "first.txt", shell: "cp {input} {output}" });
rule("dep", #{ output: "dep.txt", shell: "echo dep > {output}" });
rule("other", #{ output: "other.txt", shell: "touch {output}" });
"#,
    );
    let run = p.run(&["wf.rhai", "-j", "1"]).code(0);
    assert_eq!(run.ran(), ["dep", "first"]);
    assert!(!p.exists("other.txt"));
    assert_eq!(p.read("first.txt"), "dep\n");
}

const TARGETS_WF: &str = r#"
rule("all", #{ input: ["out/a.txt", "out/b.txt", "solo.txt"] });
rule("make", #{ input: "in/{s}.txt", output: "out/{s}.txt", shell: "cp {input} {output}" });
rule("solo", #{ output: "solo.txt", shell: "echo solo > {output}" });
"#;

fn targets_project() -> Project {
    let p = project(TARGETS_WF);
    p.file("in/a.txt", "a\n")
        .file("in/b.txt", "b\n")
        .file("in/c.txt", "c\n");
    p
}

#[test]
fn file_targets_resolve_wildcards_backward() {
    let p = targets_project();
    let run = p.run(&["wf.rhai", "out/c.txt", "./out//b.txt"]).code(0);
    assert_eq!(run.ran_sorted(), ["make[s=b]", "make[s=c]"]);
    assert_eq!(p.read("out/c.txt"), "c\n");
    assert!(!p.exists("out/a.txt") && !p.exists("solo.txt"));
}

#[test]
fn rule_name_targets_run_that_rule() {
    let p = targets_project();
    let run = p.run(&["wf.rhai", "solo"]).code(0);
    assert_eq!(run.ran(), ["solo"]);
}

#[test]
fn an_existing_file_with_no_rule_is_a_valid_target() {
    let p = targets_project();
    p.run(&["wf.rhai", "in/a.txt"])
        .code(0)
        .stderr_has("nothing to be done");
}

#[test]
fn unknown_target_suggests_a_rule_name() {
    let p = targets_project();
    p.run(&["wf.rhai", "slo"])
        .workflow_error()
        .stderr_has("no rule makes `slo`, and it is not a rule name or an existing file")
        .stderr_has("hint: did you mean `solo`?");
    p.run(&["wf.rhai", "nothing/here.txt"])
        .workflow_error()
        .stderr_has("no rule makes `nothing/here.txt`");
}

#[test]
fn rule_with_wildcards_as_target_is_an_error_with_a_hint() {
    let p = targets_project();
    p.run(&["wf.rhai", "make"])
        .workflow_error()
        .stderr_has("rule `make` has wildcards in its outputs, so it cannot be a target by name")
        .stderr_has("hint: ask for a file it makes instead, e.g. `out/{s}.txt`");
}

// ---------------------------------------------------------------------------------------------
// Resolution errors

#[test]
fn missing_input_names_the_job_that_needed_it() {
    let p = project(
        r#"
rule("all", #{ input: ["out/x.txt"] });
rule("make", #{ input: "raw/{s}.csv", output: "out/{s}.txt", shell: "cp {input} {output}" });
"#,
    );
    p.run(&["wf.rhai"])
        .workflow_error()
        .stderr_has("missing input `raw/x.csv`, needed by make[s=x], and no rule makes it")
        .stderr_has("wf.rhai:3:1");
    assert!(!p.exists(".flowrun"), "nothing should run or be recorded");
}

#[test]
fn every_missing_input_is_reported_at_once() {
    let p = project(
        r#"rule("use", #{ input: ["a.csv", "b.csv"], output: "x.txt", shell: "cat {input} > {output}" });"#,
    );
    p.run(&["wf.rhai"])
        .workflow_error()
        .stderr_has("missing input `a.csv`, needed by use")
        .stderr_has("missing input `b.csv`, needed by use");
}

const TWO_MAKERS: &str = r#"
rule("all", #{ input: "a.txt" });
rule("one", #{ output: "a.txt", PRIO_ONE shell: "echo one > {output}" });
rule("two", #{ output: "{x}.txt", PRIO_TWO shell: "echo two > {output}" });
"#;

#[test]
fn two_rules_making_one_file_is_an_error() {
    let p = project(
        r#"
rule("all", #{ input: "a.txt" });
rule("one", #{ output: "{y}.txt", shell: "echo one > {output}" });
rule("two", #{ output: "{x}.txt", shell: "echo two > {output}" });
"#,
    );
    p.run(&["wf.rhai"])
        .workflow_error()
        .stderr_has("`a.txt` can be made by more than one rule: `one`, `two`")
        .stderr_has(
            "hint: say which wins with `rule_order([\"one\", \"two\"])` (most preferred first) or a higher `priority`",
        );
}

#[test]
fn a_rule_without_wildcards_wins_over_a_pattern_as_in_snakemake() {
    let p = project(&TWO_MAKERS.replace("PRIO_ONE", "").replace("PRIO_TWO", ""));
    let run = p.run(&["wf.rhai", "-j", "1"]).code(0);
    assert_eq!(run.ran(), ["one", "all"]);
    assert_eq!(p.read("a.txt"), "one\n");
}

#[test]
fn priority_decides_between_rules_making_one_file() {
    let p = project(
        &TWO_MAKERS
            .replace("PRIO_ONE", "")
            .replace("PRIO_TWO", "priority: 1,"),
    );
    let run = p.run(&["wf.rhai", "-j", "1"]).code(0);
    assert_eq!(run.ran(), ["two[x=a]", "all"]);
    assert_eq!(p.read("a.txt"), "two\n");

    let p = project(
        &TWO_MAKERS
            .replace("PRIO_ONE", "priority: 3,")
            .replace("PRIO_TWO", "priority: 1,"),
    );
    let run = p.run(&["wf.rhai", "-j", "1"]).code(0);
    assert_eq!(run.ran(), ["one", "all"]);
    assert_eq!(p.read("a.txt"), "one\n");
}

#[test]
fn cycle_is_reported_with_the_whole_path() {
    let p = project(
        r#"
rule("report", #{ input: "clean.txt", output: "report.txt", shell: "touch {output}" });
rule("clean", #{ input: "merge.txt", output: "clean.txt", shell: "touch {output}" });
rule("merge", #{ input: "align.txt", output: "merge.txt", shell: "touch {output}" });
rule("align", #{ input: "report.txt", output: "align.txt", shell: "touch {output}" });
"#,
    );
    // Data flows report -> align -> merge -> clean -> report.
    p.run(&["wf.rhai"])
        .workflow_error()
        .stderr_has("the rules form a cycle: report -> align -> merge -> clean -> report")
        .stderr_has("hint: each job in the chain makes an input of the next");
}

#[test]
fn self_cycle_through_a_literal_file() {
    let p =
        project(r#"rule("loop", #{ input: "x.txt", output: "x.txt", shell: "touch {output}" });"#);
    p.run(&["wf.rhai"])
        .workflow_error()
        .stderr_has("the rules form a cycle: loop -> loop");
}

#[test]
fn runaway_wildcard_recursion_is_stopped_with_a_short_message() {
    let p =
        project(r#"rule("grow", #{ input: "{s}.x", output: "{s}", shell: "touch {output}" });"#);
    let run = p
        .run(&["wf.rhai", "a.txt"])
        .workflow_error()
        .stderr_has("rule `grow` keeps needing its own outputs through wildcards")
        .stderr_has("hint: constrain the wildcard");
    assert!(
        run.stderr.len() < 2000,
        "message too long: {} bytes",
        run.stderr.len()
    );
}

#[test]
fn runaway_recursion_with_a_long_suffix_is_stopped_quickly() {
    // Each level adds 41 characters: without a bound on path length this took minutes and
    // gigabytes before reaching the depth limit.
    let p = project(
        r#"rule("grow", #{ input: "{s}.0123456789012345678901234567890123456789", output: "{s}", shell: "touch {output}" });"#,
    );
    common::within(std::time::Duration::from_secs(10), || {
        p.run(&["wf.rhai", "a.txt", "-n"])
            .workflow_error()
            .stderr_has("rule `grow` keeps needing its own outputs through wildcards")
    });
}

// ---------------------------------------------------------------------------------------------
// Determinism

const DIAMOND: &str = r#"
let samples = ["s3", "s1", "s2"];
rule("all", #{ input: ["report.txt"] });
rule("report", #{ input: expand("merged/{s}.txt", #{ s: samples }), output: "report.txt", shell: "cat {input} > {output}" });
rule("merge", #{ input: #{ a: "left/{s}.txt", b: "right/{s}.txt" }, output: "merged/{s}.txt", shell: "cat {input} > {output}" });
rule("left", #{ input: "raw/{s}.txt", output: "left/{s}.txt", shell: "cp {input} {output}" });
rule("right", #{ input: "raw/{s}.txt", output: "right/{s}.txt", shell: "cp {input} {output}" });
"#;

fn diamond(wf: &str) -> Project {
    let p = project(wf);
    for s in ["s1", "s2", "s3"] {
        p.file(&format!("raw/{s}.txt"), &format!("{s}\n"));
    }
    p
}

#[test]
fn dry_run_and_graphs_are_byte_identical_across_runs() {
    let p = diamond(DIAMOND);
    for flag in ["-n", "--dag", "--rulegraph", "--list", "--summary"] {
        let first = p.run(&["wf.rhai", flag]).code(0).stdout;
        for _ in 0..3 {
            assert_eq!(p.run(&["wf.rhai", flag]).code(0).stdout, first, "{flag}");
        }
    }
}

#[test]
fn the_plan_does_not_depend_on_rule_declaration_order() {
    let a = diamond(DIAMOND);
    // Same rules, declared in another order.
    let mut lines: Vec<&str> = DIAMOND.lines().filter(|l| l.starts_with("rule(")).collect();
    lines.reverse();
    let reordered = format!(
        "let samples = [\"s3\", \"s1\", \"s2\"];\n{}\n",
        lines.join("\n")
    );
    let b = diamond(&reordered);
    let jobs = |p: &Project| p.run(&["wf.rhai", "-n"]).code(0).planned();
    assert_eq!(jobs(&a), jobs(&b));
    let run_a = a.run(&["wf.rhai", "-j", "1"]).code(0).ran();
    let run_b = b.run(&["wf.rhai", "-j", "1"]).code(0).ran();
    assert_eq!(run_a, run_b);
    assert_eq!(a.read("report.txt"), b.read("report.txt"));
    assert_eq!(a.read("report.txt"), "s3\ns3\ns1\ns1\ns2\ns2\n");
}

// ---------------------------------------------------------------------------------------------
// --list, --dag, --rulegraph

#[test]
fn list_shows_rules_with_their_files_in_declaration_order() {
    let p = diamond(DIAMOND);
    let out = p.run(&["wf.rhai", "--list"]).code(0).stdout;
    assert_eq!(
        out,
        "all\n    input:  report.txt\n\
         report (shell)\n    input:  merged/s3.txt, merged/s1.txt, merged/s2.txt\n    output: report.txt\n\
         merge (shell)\n    input:  a=left/{s}.txt, b=right/{s}.txt\n    output: merged/{s}.txt\n\
         left (shell)\n    input:  raw/{s}.txt\n    output: left/{s}.txt\n\
         right (shell)\n    input:  raw/{s}.txt\n    output: right/{s}.txt\n"
    );
}

#[test]
fn list_works_even_when_inputs_are_missing() {
    let p = project(r#"rule("use", #{ input: "nope.csv", output: "x.txt", run: |job| {} });"#);
    p.run(&["wf.rhai", "--list"])
        .code(0)
        .stdout_has("use (run)\n    input:  nope.csv\n    output: x.txt\n");
}

/// Pairs of strings: (node id, label) or (from, to).
type Pairs = Vec<(String, String)>;

/// Checks that `text` is a DOT digraph whose every edge joins declared nodes; returns
/// (node labels by id, edges).
fn parse_dot(text: &str) -> (Pairs, Pairs) {
    assert!(text.starts_with("digraph flowrun {\n"), "{text}");
    assert!(text.ends_with("}\n"), "{text}");
    let mut nodes = Vec::new();
    let mut edges = Vec::new();
    for line in text.lines().skip(1) {
        let line = line.trim();
        if line == "}" || line.starts_with("node [") {
            continue;
        }
        let line = line
            .strip_suffix(';')
            .unwrap_or_else(|| panic!("no `;`: {line}"));
        if let Some((a, b)) = line.split_once(" -> ") {
            edges.push((a.to_string(), b.to_string()));
        } else {
            let (id, attrs) = line
                .split_once(" [")
                .unwrap_or_else(|| panic!("bad line: {line}"));
            let label = attrs
                .split_once("label=\"")
                .and_then(|(_, r)| r.split_once('"'))
                .map(|(l, _)| l.to_string())
                .unwrap_or_else(|| panic!("no label: {line}"));
            nodes.push((id.to_string(), label));
        }
    }
    for (a, b) in &edges {
        assert!(
            nodes.iter().any(|(n, _)| n == a),
            "edge from undeclared {a}"
        );
        assert!(nodes.iter().any(|(n, _)| n == b), "edge to undeclared {b}");
    }
    (nodes, edges)
}

fn label_edges(nodes: &[(String, String)], edges: &[(String, String)]) -> Vec<(String, String)> {
    let name = |id: &str| nodes.iter().find(|(n, _)| n == id).unwrap().1.clone();
    let mut out: Vec<(String, String)> = edges.iter().map(|(a, b)| (name(a), name(b))).collect();
    out.sort();
    out
}

#[test]
fn dag_is_valid_dot_with_every_job_and_dependency() {
    let p = diamond(DIAMOND);
    let out = p.run(&["wf.rhai", "--dag"]).code(0).stdout;
    let (nodes, edges) = parse_dot(&out);
    assert_eq!(nodes.len(), 1 + 1 + 3 * 3);
    let e = label_edges(&nodes, &edges);
    assert!(
        e.contains(&("left[s=s1]".into(), "merge[s=s1]".into())),
        "{e:?}"
    );
    assert!(
        e.contains(&("right[s=s2]".into(), "merge[s=s2]".into())),
        "{e:?}"
    );
    assert!(
        e.contains(&("merge[s=s3]".into(), "report".into())),
        "{e:?}"
    );
    assert!(e.contains(&("report".into(), "all".into())), "{e:?}");
    assert_eq!(e.len(), 3 * 2 + 3 + 1);
    // Nothing has run: every job is solid. After a run, every job is dashed (up to date).
    assert!(!out.contains("dashed"), "{out}");
    p.run(&["wf.rhai"]).code(0);
    let after = p.run(&["wf.rhai", "--dag"]).code(0).stdout;
    assert_eq!(
        after.matches("rounded,dashed").count(),
        nodes.len(),
        "{after}"
    );
    // Only the jobs that would rerun are solid.
    p.file("raw/s2.txt", "changed\n");
    let changed = p.run(&["wf.rhai", "--dag"]).code(0).stdout;
    let (nodes, _) = parse_dot(&changed);
    let solid: Vec<&str> = changed
        .lines()
        .filter(|l| l.contains("style=\"rounded\""))
        .filter_map(|l| {
            nodes
                .iter()
                .find(|(id, _)| l.trim_start().starts_with(&format!("{id} [")))
        })
        .map(|(_, label)| label.as_str())
        .collect();
    let mut solid = solid;
    solid.sort();
    assert_eq!(
        solid,
        ["all", "left[s=s2]", "merge[s=s2]", "report", "right[s=s2]"]
    );
}

#[test]
fn rulegraph_is_valid_dot_with_one_node_per_rule() {
    let p = diamond(DIAMOND);
    let out = p.run(&["wf.rhai", "--rulegraph"]).code(0).stdout;
    let (nodes, edges) = parse_dot(&out);
    let mut labels: Vec<&str> = nodes.iter().map(|(_, l)| l.as_str()).collect();
    labels.sort();
    assert_eq!(labels, ["all", "left", "merge", "report", "right"]);
    assert_eq!(
        label_edges(&nodes, &edges),
        [
            ("left".to_string(), "merge".to_string()),
            ("merge".into(), "report".into()),
            ("report".into(), "all".into()),
            ("right".into(), "merge".into()),
        ]
    );
}

#[test]
fn dot_labels_are_escaped() {
    let p = project(
        r#"
rule("all", #{ input: ["out/say \"hi\".txt"] });
rule("make", #{ output: "out/{name}.txt", shell: "touch {output}" });
"#,
    );
    let out = p.run(&["wf.rhai", "--dag"]).code(0).stdout;
    assert!(out.contains(r#"label="make[name=say \"hi\"]""#), "{out}");
    parse_dot(&out);
}

#[test]
fn graph_commands_do_not_run_or_record_anything() {
    let p = diamond(DIAMOND);
    for flag in ["-n", "--dag", "--rulegraph", "--list", "--summary"] {
        p.run(&["wf.rhai", flag]).code(0);
    }
    assert!(!p.exists(".flowrun"));
    assert!(!p.exists("report.txt"));
}

#[test]
fn directory_option_runs_in_another_directory() {
    let p = diamond(DIAMOND);
    std::fs::create_dir_all(p.path().join("elsewhere")).unwrap();
    let mut cmd = p.cmd(&["../wf.rhai", "-d", "..", "-q"]);
    cmd.current_dir(p.path().join("elsewhere"));
    assert!(cmd.status().unwrap().success());
    assert_eq!(p.read("report.txt"), "s3\ns3\ns1\ns1\ns2\ns2\n");
    assert!(p.exists(".flowrun"));
    assert!(!p.exists("elsewhere/.flowrun"));
}
