//! The workflow language (DESIGN.md §2), driven through the real binary: every rule key and
//! helper, reusable rule files, and the definition-time sandbox.

mod common;
use common::Project;

// ---------------------------------------------------------------------------------------------
// Inputs, outputs and shell placeholders

#[test]
fn inputs_as_string_array_and_named_map_render_in_shell() {
    let p = Project::new();
    p.file("one.txt", "1\n")
        .file("two.txt", "2\n")
        .file("ref.txt", "R\n")
        .file(
            "wf.rhai",
            r#"
rule("all", #{ input: ["out/string.txt", "out/array.txt", "out/map.txt"] });
rule("string", #{ input: "one.txt", output: "out/string.txt", shell: "cat {input} > {output}" });
rule("array", #{
    input: ["one.txt", "two.txt"],
    output: "out/array.txt",
    shell: "echo {input} / {input[0]} / {input[1]} > {output[0]}",
});
rule("map", #{
    input: #{ reads: "two.txt", reference: "ref.txt" },
    output: #{ table: "out/map.txt" },
    shell: "echo {input.reads} {input.reference} / {input} > {output.table}",
});
"#,
        );
    p.run(&["wf.rhai"]).code(0);
    assert_eq!(p.read("out/string.txt"), "1\n");
    assert_eq!(
        p.read("out/array.txt"),
        "one.txt two.txt / one.txt / two.txt\n"
    );
    assert_eq!(p.read("out/map.txt"), "two.txt ref.txt / two.txt ref.txt\n");
}

#[test]
fn run_closure_reads_files_by_name_and_index() {
    let p = Project::new();
    p.file("a.txt", "A").file("b.txt", "B").file(
        "wf.rhai",
        r#"
rule("join", #{
    input: #{ first: "a.txt", second: "b.txt" },
    output: #{ both: "out/both.txt", count: "out/count.txt" },
    run: |job| {
        let text = read_text(job.input.first) + read_text(job.input[1]);
        write_text(job.output.both, text);
        write_text(job.output[1], `${job.input.len} ${job.output.len}`);
    },
});
"#,
    );
    p.run(&["wf.rhai"]).code(0);
    assert_eq!(p.read("out/both.txt"), "AB");
    assert_eq!(p.read("out/count.txt"), "2 2");
}

#[test]
fn double_braces_are_literal_braces_in_shell() {
    let p = Project::new();
    p.file("nums.txt", "1\n2\n").file(
        "wf.rhai",
        r#"
rule("sum", #{
    input: "nums.txt",
    output: "sum.txt",
    shell: "awk '{{ s += $1 }} END {{ print s }}' {input} > {output}; echo '{{x}}' >> {output}",
});
"#,
    );
    p.run(&["wf.rhai"]).code(0);
    assert_eq!(p.read("sum.txt"), "3\n{x}\n");
}

#[test]
fn paths_with_spaces_and_quotes_are_quoted_for_the_shell() {
    let p = Project::new();
    p.file("my data/it's here.txt", "spaced\n").file(
        "wf.rhai",
        r#"
rule("copy", #{
    input: "my data/it's here.txt",
    output: "out dir/copy of it.txt",
    shell: "cat {input} > {output}",
});
"#,
    );
    p.run(&["wf.rhai"]).code(0);
    assert_eq!(p.read("out dir/copy of it.txt"), "spaced\n");
}

#[test]
fn wildcards_threads_and_params_render_in_shell() {
    let p = Project::new();
    p.file(
        "wf.rhai",
        r#"
rule("all", #{ input: ["out/x-1.txt"] });
rule("make", #{
    output: "out/{name}-{n}.txt",
    threads: 2,
    params: #{ greeting: "hello world", n: 7, list: ["a", "b"], nested: #{ k: "deep" } },
    shell: "echo {wildcards.name} {wildcards.n} {threads} {params.greeting} {params.n} {params.list} {params.nested.k} $FLOWRUN_THREADS > {output}",
});
"#,
    );
    p.run(&["wf.rhai", "-j", "4"]).code(0);
    assert_eq!(p.read("out/x-1.txt"), "x 1 2 hello world 7 a b deep 2\n");
}

#[test]
fn run_closure_gets_wildcards_params_threads_and_rule() {
    let p = Project::new();
    p.file(
        "wf.rhai",
        r#"
rule("all", #{ input: "out/s1.txt" });
rule("make", #{
    output: "out/{sample}.txt",
    params: #{ factor: 3, tags: ["p", "q"] },
    threads: 2,
    resources: #{ mem_mb: 10 },
    run: |job| {
        let w = job.wildcards.sample;
        let f = job.params.factor * 2;
        write_text(job.output[0], `${job.rule} ${w} ${f} ${job.params.tags[1]} ${job.threads} ${job.resources.mem_mb}`);
    },
});
"#,
    );
    p.run(&["wf.rhai", "-j", "2"]).code(0);
    assert_eq!(p.read("out/s1.txt"), "make s1 6 q 2 10");
}

#[test]
fn threads_are_capped_by_the_core_budget() {
    let p = Project::new();
    p.file(
        "wf.rhai",
        r#"
rule("all", #{ input: ["shell.txt", "run.txt"] });
rule("sh", #{ output: "shell.txt", threads: 16, shell: "echo {threads} $FLOWRUN_THREADS > {output}" });
rule("rn", #{ output: "run.txt", threads: 16, run: |job| write_text(job.output[0], `${job.threads}`) });
"#,
    );
    p.run(&["wf.rhai", "-j", "3"]).code(0);
    assert_eq!(p.read("shell.txt"), "3 3\n");
    assert_eq!(p.read("run.txt"), "3");
}

// ---------------------------------------------------------------------------------------------
// Wildcard constraints

const TWO_WAYS: &str = r#"
rule("all", #{ input: ["out/12.txt", "out/ab.txt"] });
rule("number", #{ output: "out/{n}.txt", CONSTRAINT_N shell: "echo number {wildcards.n} > {output}" });
rule("word", #{ output: "out/{w}.txt", CONSTRAINT_W shell: "echo word {wildcards.w} > {output}" });
"#;

fn two_ways(global: &str, n: &str, w: &str) -> Project {
    let p = Project::new();
    let text = format!(
        "{global}\n{}",
        TWO_WAYS
            .replace("CONSTRAINT_N", n)
            .replace("CONSTRAINT_W", w)
    );
    p.file("wf.rhai", &text);
    p
}

fn check_two_ways(p: &Project) {
    let run = p.run(&["wf.rhai", "-j", "1"]).code(0);
    assert_eq!(run.ran(), ["number[n=12]", "word[w=ab]", "all"]);
    assert_eq!(p.read("out/12.txt"), "number 12\n");
    assert_eq!(p.read("out/ab.txt"), "word ab\n");
}

#[test]
fn without_constraints_two_patterns_are_ambiguous() {
    let p = two_ways("", "", "");
    p.run(&["wf.rhai"])
        .workflow_error()
        .stderr_has("`out/12.txt` can be made by more than one rule: `number`, `word`")
        .stderr_has("wildcard_constraints");
}

#[test]
fn rule_level_wildcard_constraints_choose_the_rule() {
    let p = two_ways(
        "",
        r#"wildcard_constraints: #{ n: "[0-9]+" },"#,
        r#"wildcard_constraints: #{ w: "[a-z]+" },"#,
    );
    check_two_ways(&p);
}

#[test]
fn global_wildcard_constraints_function_applies_to_every_rule() {
    let p = two_ways(
        r#"wildcard_constraints(#{ n: "[0-9]+", w: "[a-z]+" });"#,
        "",
        "",
    );
    check_two_ways(&p);
}

#[test]
fn inline_constraints_in_patterns() {
    let p = Project::new();
    p.file(
        "wf.rhai",
        r#"
rule("all", #{ input: ["out/12.txt", "out/ab.txt"] });
rule("number", #{ output: "out/{n,[0-9]+}.txt", shell: "echo number {wildcards.n} > {output}" });
rule("word", #{ output: "out/{w,[a-z]+}.txt", shell: "echo word {wildcards.w} > {output}" });
"#,
    );
    check_two_ways(&p);
}

#[test]
fn rule_constraint_overrides_global_one() {
    let p = Project::new();
    p.file(
        "wf.rhai",
        r#"
wildcard_constraints(#{ s: "[a-z]+" });
rule("all", #{ input: ["out/12.txt"] });
rule("make", #{ output: "out/{s}.txt", wildcard_constraints: #{ s: "[0-9]+" }, shell: "echo {wildcards.s} > {output}" });
"#,
    );
    p.run(&["wf.rhai"]).code(0);
    assert_eq!(p.read("out/12.txt"), "12\n");
}

// ---------------------------------------------------------------------------------------------
// expand and glob_wildcards

#[test]
fn glob_wildcards_and_expand_over_real_files() {
    let p = Project::new();
    p.file("data/b.txt", "bee\n")
        .file("data/a.txt", "ay\n")
        .file("data/sub/c.txt", "sea\n")
        .file("data/notes.csv", "not matched\n")
        .file(
            "wf.rhai",
            r#"
let found = glob_wildcards("data/{s}.txt");
rule("all", #{ input: expand("out/{s}.upper", #{ s: found.s }) });
rule("upper", #{ input: "data/{s}.txt", output: "out/{s}.upper", shell: "tr a-z A-Z < {input} > {output}" });
rule("listing", #{
    output: "listing.txt",
    params: #{ s: found.s, product: expand("{a}_{b}", #{ a: [1, 2], b: ["x", "y"] }),
               escaped: expand("{a}.{{ext}}", #{ a: "f" }) },
    shell: "echo {params.s} / {params.product} / {params.escaped} > {output}",
});
"#,
        );
    let run = p.run(&["wf.rhai", "-j", "1"]).code(0);
    assert_eq!(
        run.ran(),
        ["upper[s=a]", "upper[s=b]", "upper[s=sub/c]", "all"]
    );
    assert_eq!(p.read("out/a.upper"), "AY\n");
    assert_eq!(p.read("out/sub/c.upper"), "SEA\n");
    p.run(&["wf.rhai", "listing"]).code(0);
    assert_eq!(
        p.read("listing.txt"),
        "a b sub/c / 1_x 1_y 2_x 2_y / f.{ext}\n"
    );
}

#[test]
fn glob_wildcards_with_constraint_and_several_names() {
    let p = Project::new();
    p.file("raw/s1_r1.fq", "")
        .file("raw/s1_r2.fq", "")
        .file("raw/s2_r1.fq", "")
        .file("raw/sX_r1.fq", "")
        .file(
            "wf.rhai",
            r#"
let g = glob_wildcards("raw/s{n,[0-9]+}_r{r}.fq");
rule("show", #{ output: "found.txt", params: #{ n: g.n, r: g.r }, shell: "echo {params.n} / {params.r} > {output}" });
"#,
        );
    p.run(&["wf.rhai"]).code(0);
    assert_eq!(p.read("found.txt"), "1 1 2 / 1 2 1\n");
}

#[test]
fn glob_wildcards_follows_links_but_not_round_in_a_circle() {
    let p = Project::new();
    p.file("data/a.txt", "")
        .file("elsewhere/b.txt", "")
        .file("elsewhere/deep/c.txt", "")
        .file(
            "wf.rhai",
            r#"
let g = glob_wildcards("data/{s}.txt");
rule("show", #{ output: "found.txt", params: #{ s: g.s }, shell: "echo {params.s} > {output}" });
"#,
        );
    let link = |target: &str, at: &str| {
        std::os::unix::fs::symlink(target, p.path().join(at)).unwrap();
    };
    link("a.txt", "data/alias.txt");
    link("../elsewhere", "data/linked");
    // Back to `data` itself, and from inside the linked directory back to it: both are passed
    // over rather than walked again and again.
    link(".", "data/again");
    link("..", "elsewhere/deep/up");
    link("missing.txt", "data/dangling.txt");
    p.run(&["wf.rhai"]).code(0);
    assert_eq!(p.read("found.txt"), "a alias linked/b linked/deep/c\n");
}

#[test]
fn expand_with_missing_values_is_an_error() {
    let p = Project::new();
    p.file(
        "wf.rhai",
        "rule(\"all\", #{ input: expand(\"out/{s}.txt\", #{ x: [1] }) });\n",
    );
    p.run(&["wf.rhai"])
        .workflow_error()
        .stderr_has("expand: no values for `{s}` in `out/{s}.txt`")
        .stderr_has("wf.rhai:1:");
}

// ---------------------------------------------------------------------------------------------
// Configuration

const CONFIG_WF: &str = r#"
let cfg = config(#{ n: 1, flag: false, list: ["a"], name: "default", nested: #{ a: 1, b: 2 } });
rule("show", #{
    output: "cfg.txt",
    params: #{ c: cfg },
    run: |job| {
        let c = job.params.c;
        write_text(job.output[0], `${type_of(c.n)}=${c.n} ${type_of(c.flag)}=${c.flag} ${c.list} ${c.name} ${c.nested.a} ${c.nested.b}`);
    },
});
"#;

fn config_project() -> Project {
    let p = Project::new();
    p.file("wf.rhai", CONFIG_WF)
        .file("c.json", r#"{"n": 2, "name": "json"}"#)
        .file("c.toml", "n = 3\nflag = true\n[nested]\na = 10\n")
        .file("c.yaml", "list: [x, y]\nname: yaml\n");
    p
}

#[test]
fn config_defaults_apply_without_user_config() {
    let p = config_project();
    p.run(&["wf.rhai"]).code(0);
    assert_eq!(p.read("cfg.txt"), r#"i64=1 bool=false ["a"] default 1 2"#);
}

#[test]
fn configfile_json_toml_yaml_merge_in_order() {
    let p = config_project();
    p.run(&["wf.rhai", "--configfile", "c.json"]).code(0);
    assert_eq!(p.read("cfg.txt"), r#"i64=2 bool=false ["a"] json 1 2"#);
    p.run(&[
        "wf.rhai",
        "--configfile",
        "c.json",
        "--configfile",
        "c.toml",
        "--configfile",
        "c.yaml",
    ])
    .code(0);
    // Later files win; nested maps merge key by key.
    assert_eq!(p.read("cfg.txt"), r#"i64=3 bool=true ["x", "y"] yaml 10 2"#);
}

#[test]
fn config_overrides_are_typed_and_beat_config_files() {
    let p = config_project();
    p.run(&[
        "wf.rhai",
        "--configfile",
        "c.toml",
        "--config",
        "n=7",
        "--config",
        "flag=false",
        "--config",
        "list=[p, q, 3]",
        "--config",
        "nested.b=1.5",
        "--config",
        "name=cli",
    ])
    .code(0);
    assert_eq!(
        p.read("cfg.txt"),
        r#"i64=7 bool=false ["p", "q", 3] cli 10 1.5"#
    );
}

#[test]
fn config_change_reruns_as_a_params_change() {
    let p = config_project();
    p.run(&["wf.rhai"]).code(0);
    let plan = p.run(&["wf.rhai", "-n", "--config", "n=5"]).code(0);
    assert_eq!(plan.reasons("show"), ["the rule's params changed"]);
    assert!(p.run(&["wf.rhai"]).code(0).ran().is_empty());
}

// ---------------------------------------------------------------------------------------------
// temp() and protected()

const TEMP_WF: &str = r#"
rule("all", #{ input: ["final1.txt", "final2.txt"] });
rule("mid", #{ input: "in.txt", output: temp("mid.txt"), shell: "cat {input} > {output}; echo mid >> {output}" });
rule("one", #{ input: "mid.txt", output: "final1.txt", shell: "test -e {input} && cat {input} > {output}; echo one >> {output}" });
rule("two", #{ input: "mid.txt", output: "final2.txt", shell: "sleep 0.2; cat {input} > {output}; echo two >> {output}" });
"#;

#[test]
fn temp_output_is_deleted_after_its_last_consumer_and_not_remade() {
    let p = Project::new();
    p.file("in.txt", "in\n").file("wf.rhai", TEMP_WF);
    let run = p.run(&["wf.rhai", "-j", "2"]).code(0);
    assert_eq!(run.ran().len(), 4, "{}", run.stderr);
    assert!(!p.exists("mid.txt"), "temp output kept");
    assert_eq!(p.read("final1.txt"), "in\nmid\none\n");
    assert_eq!(p.read("final2.txt"), "in\nmid\ntwo\n");
    // Nothing to do next time: the deleted temp file is not remade.
    let again = p.run(&["wf.rhai"]).code(0);
    assert!(again.ran().is_empty(), "{}", again.stderr);
    p.run(&["wf.rhai", "-n"])
        .code(0)
        .stdout_has("nothing to be done");
    p.run(&["wf.rhai", "--summary"])
        .code(0)
        .stdout_has("temporary file, deleted after use");
}

#[test]
fn temp_output_is_remade_when_a_consumer_must_rerun() {
    let p = Project::new();
    p.file("in.txt", "in\n").file("wf.rhai", TEMP_WF);
    p.run(&["wf.rhai"]).code(0);
    p.remove("final1.txt");
    let plan = p.run(&["wf.rhai", "-n"]).code(0);
    assert_eq!(
        plan.reasons("mid"),
        ["temporary output deleted, needed again by one"]
    );
    let run = p.run(&["wf.rhai", "-j", "1"]).code(0);
    assert_eq!(run.ran(), ["mid", "one", "all"]);
    assert!(!p.exists("mid.txt"));
    assert_eq!(p.read("final1.txt"), "in\nmid\none\n");
}

#[test]
fn temp_output_as_target_is_kept() {
    let p = Project::new();
    p.file("in.txt", "in\n").file("wf.rhai", TEMP_WF);
    p.run(&["wf.rhai", "mid.txt"]).code(0);
    assert!(p.exists("mid.txt"));
}

#[test]
fn input_change_behind_a_deleted_temp_file_still_reruns() {
    let p = Project::new();
    p.file("in.txt", "in\n").file("wf.rhai", TEMP_WF);
    p.run(&["wf.rhai"]).code(0);
    p.file("in.txt", "changed\n");
    let plan = p.run(&["wf.rhai", "-n"]).code(0);
    assert!(
        plan.reasons("mid")
            .contains(&"input `in.txt` changed".to_string()),
        "{}",
        plan.stdout
    );
    let run = p.run(&["wf.rhai", "-j", "1"]).code(0);
    assert_eq!(run.ran(), ["mid", "one", "two", "all"]);
    assert_eq!(p.read("final1.txt"), "changed\nmid\none\n");
    assert_eq!(p.read("final2.txt"), "changed\nmid\ntwo\n");
    assert!(!p.exists("mid.txt"));
}

#[test]
fn change_behind_a_chain_of_temp_files_reaches_the_end() {
    let p = Project::new();
    p.file("in.txt", "1\n").file(
        "wf.rhai",
        r#"
rule("all", #{ input: "end.txt" });
rule("a", #{ input: "in.txt", output: temp("t1.txt"), shell: "cat {input} > {output}" });
rule("b", #{ input: "t1.txt", output: temp("t2.txt"), shell: "cat {input} > {output}" });
rule("c", #{ input: "t2.txt", output: "end.txt", shell: "cat {input} > {output}" });
"#,
    );
    p.run(&["wf.rhai"]).code(0);
    assert!(!p.exists("t1.txt") && !p.exists("t2.txt"));
    p.file("in.txt", "2\n");
    let run = p.run(&["wf.rhai", "-j", "1"]).code(0);
    assert_eq!(run.ran(), ["a", "b", "c", "all"]);
    assert_eq!(p.read("end.txt"), "2\n");
    assert!(!p.exists("t1.txt") && !p.exists("t2.txt"));
    assert!(p.run(&["wf.rhai"]).code(0).ran().is_empty());
}

const PROTECTED_WF: &str = r#"
rule("keep", #{ input: "in.txt", output: protected("kept.txt"), shell: "cat {input} > {output}" });
"#;

#[test]
fn protected_output_is_made_read_only() {
    let p = Project::new();
    p.file("in.txt", "v1\n").file("wf.rhai", PROTECTED_WF);
    p.run(&["wf.rhai"]).code(0);
    let perms = std::fs::metadata(p.path().join("kept.txt"))
        .unwrap()
        .permissions();
    assert!(perms.readonly(), "protected output is writable");
    assert!(p.run(&["wf.rhai"]).code(0).ran().is_empty());
}

#[test]
fn protected_output_is_not_overwritten_by_a_rerun() {
    let p = Project::new();
    p.file("in.txt", "v1\n").file("wf.rhai", PROTECTED_WF);
    p.run(&["wf.rhai"]).code(0);
    p.file("in.txt", "v2\n");
    p.run(&["wf.rhai"]).code(1).stderr_has("Failed").stderr_has(
        "output `kept.txt` is protected; remove it by hand if it really must be remade",
    );
    assert_eq!(p.read("kept.txt"), "v1\n", "protected output changed");
    // Removing it by hand lets the job run again.
    std::fs::remove_file(p.path().join("kept.txt")).unwrap();
    p.run(&["wf.rhai"]).code(0);
    assert_eq!(p.read("kept.txt"), "v2\n");
}

// ---------------------------------------------------------------------------------------------
// log, retries, priority, resources

#[test]
fn log_is_kept_on_failure_and_named_in_the_error() {
    let p = Project::new();
    p.file(
        "wf.rhai",
        r#"
rule("broken", #{
    output: "out.txt",
    log: "logs/broken.log",
    shell: "echo partial > {output}; echo 'something broke' >&2; exit 3",
});
"#,
    );
    p.run(&["wf.rhai"])
        .code(1)
        .stderr_has("broken")
        .stderr_has("the command exited with status 3")
        .stderr_has("log: logs/broken.log");
    assert_eq!(p.read("logs/broken.log"), "something broke\n");
    assert!(!p.exists("out.txt"), "failed output kept");
}

#[test]
fn log_receives_stdout_and_stderr_of_a_successful_job() {
    let p = Project::new();
    p.file(
        "wf.rhai",
        r#"rule("ok", #{ output: "out.txt", log: "ok.log", shell: "echo to-out; echo to-err >&2; touch {output}" });"#,
    );
    p.run(&["wf.rhai"]).code(0).stderr_lacks("to-out");
    assert_eq!(p.read("ok.log"), "to-out\nto-err\n");
}

#[test]
fn retries_rerun_a_failing_job() {
    let p = Project::new();
    p.file(
        "wf.rhai",
        r#"
rule("flaky", #{
    output: "out.txt",
    retries: 2,
    shell: "n=$(cat count 2>/dev/null || echo 0); n=$((n+1)); echo $n > count; [ $n -ge 3 ]; echo ok > {output}",
});
"#,
    );
    p.run(&["wf.rhai"])
        .code(0)
        .stderr_has("Retrying flaky (1/2)")
        .stderr_has("Retrying flaky (2/2)");
    assert_eq!(p.read("out.txt"), "ok\n");
    assert_eq!(p.read("count"), "3\n");
}

#[test]
fn retries_exhausted_fail_the_job() {
    let p = Project::new();
    p.file(
        "wf.rhai",
        r#"rule("bad", #{ output: "out.txt", retries: 1, shell: "echo x >> attempts; exit 1" });"#,
    );
    p.run(&["wf.rhai"])
        .code(1)
        .stderr_has("Retrying bad (1/1)")
        .stderr_has("the command exited with status 1");
    assert_eq!(p.read("attempts"), "x\nx\n");
}

#[test]
fn priority_orders_ready_jobs() {
    let p = Project::new();
    p.file(
        "wf.rhai",
        r#"
rule("all", #{ input: ["a.txt", "b.txt", "c.txt", "d.txt"] });
rule("a", #{ output: "a.txt", shell: "echo a >> order; touch {output}" });
rule("b", #{ output: "b.txt", priority: 5, shell: "echo b >> order; touch {output}" });
rule("c", #{ output: "c.txt", priority: 2, shell: "echo c >> order; touch {output}" });
rule("d", #{ output: "d.txt", priority: -1, shell: "echo d >> order; touch {output}" });
"#,
    );
    let run = p.run(&["wf.rhai", "-j", "1"]).code(0);
    assert_eq!(run.ran(), ["b", "c", "a", "d", "all"]);
    assert_eq!(p.read("order"), "b\nc\na\nd\n");
}

const RESOURCES_WF: &str = r#"
rule("all", #{ input: ["a.txt", "b.txt"] });
rule("a", #{ output: "a.txt", resources: #{ mem_mb: 60 }, shell: "mkdir busy; sleep 0.3; rmdir busy; touch {output}" });
rule("b", #{ output: "b.txt", resources: #{ mem_mb: 60 }, shell: "mkdir busy; sleep 0.3; rmdir busy; touch {output}" });
"#;

#[test]
fn resources_cap_how_many_jobs_run_at_once() {
    // Each job fails if the other is running (`mkdir busy`); the cap keeps them apart.
    let p = Project::new();
    p.file("wf.rhai", RESOURCES_WF);
    p.run(&["wf.rhai", "-j", "2", "--resources", "mem_mb=100"])
        .code(0);
    assert!(p.exists("a.txt") && p.exists("b.txt"));
}

#[test]
fn a_job_bigger_than_the_resource_cap_fails_clearly() {
    let p = Project::new();
    p.file("wf.rhai", RESOURCES_WF);
    p.run(&["wf.rhai", "--resources", "mem_mb=50"])
        .code(1)
        .stderr_has("the job needs mem_mb=60, more than --resources mem_mb=50");
}

#[test]
fn resources_placeholder_renders_in_shell() {
    let p = Project::new();
    p.file(
        "wf.rhai",
        r#"rule("r", #{ output: "r.txt", resources: #{ mem_mb: 123 }, shell: "echo {resources.mem_mb} > {output}" });"#,
    );
    p.run(&["wf.rhai"]).code(0);
    assert_eq!(p.read("r.txt"), "123\n");
}

// ---------------------------------------------------------------------------------------------
// Reusable rule files

fn rule_file_project() -> Project {
    let p = Project::new();
    p.file("data/n.txt", "3\n")
        .file(
            "rules/x.rhai",
            r#"
// A top-level rule: registers when the file is imported.
rule("base", #{ input: "data/n.txt", output: "out/base.txt", shell: "cp {input} {output}" });

fn helper(v) { v * 2 }

// A parameterised rule set with a prefix; its closure calls a function of this file.
fn scaled_rules(opts) {
    let p = opts.prefix;
    rule(p + "_scaled", #{
        input: "out/base.txt",
        output: `out/${p}.txt`,
        params: #{ k: opts.k },
        run: |job| {
            let s = read_text(job.input[0]);
            s.trim();
            write_text(job.output[0], `${helper(parse_int(s)) * job.params.k}`);
        },
    });
}
"#,
        )
        .file(
            "workflows/wf.rhai",
            r#"
import "../rules/x" as x;
x::scaled_rules(#{ prefix: "one", k: 1 });
x::scaled_rules(#{ prefix: "ten", k: 10 });
rule("all", #{ input: ["out/one.txt", "out/ten.txt"] });
"#,
        );
    p
}

#[test]
fn rule_file_import_registers_rules_and_runs_closures() {
    let p = rule_file_project();
    let run = p.run(&["workflows/wf.rhai", "-j", "1"]).code(0);
    assert_eq!(run.ran(), ["base", "one_scaled", "ten_scaled", "all"]);
    assert_eq!(p.read("out/one.txt"), "6");
    assert_eq!(p.read("out/ten.txt"), "60");
    p.run(&["workflows/wf.rhai", "--list"])
        .code(0)
        .stdout_has("base (shell)\n")
        .stdout_has("one_scaled (run)\n")
        .stdout_has("ten_scaled (run)\n");
}

#[test]
fn rule_file_import_resolves_relative_to_the_importing_file() {
    let p = rule_file_project();
    // From inside the workflow directory, with -d back to the project.
    let mut cmd = p.cmd(&["wf.rhai", "-d", "..", "-q"]);
    cmd.current_dir(p.path().join("workflows"));
    let status = cmd.status().unwrap();
    assert!(status.success());
    assert_eq!(p.read("out/ten.txt"), "60");
}

#[test]
fn nested_imports_resolve_relative_to_the_rule_file() {
    let p = Project::new();
    p.file("rules/lib/math.rhai", "fn triple(v) { v * 3 }\n")
        .file(
            "rules/z.rhai",
            r#"
import "lib/math" as m;
fn z_rules(n) {
    rule("z", #{ output: "out/z.txt", params: #{ n: n }, run: |job| write_text(job.output[0], `${m::triple(job.params.n)}`) });
}
"#,
        )
        .file(
            "workflows/wf.rhai",
            "import \"../rules/z\" as z;\nz::z_rules(5);\n",
        );
    p.run(&["workflows/wf.rhai"]).code(0);
    assert_eq!(p.read("out/z.txt"), "15");
}

#[test]
fn reformatting_a_closure_in_a_rule_file_does_not_rerun_but_editing_does() {
    let p = rule_file_project();
    p.run(&["workflows/wf.rhai"]).code(0);
    let text = p.read("rules/x.rhai");
    p.file(
        "rules/x.rhai",
        &text.replace(
            "helper(parse_int(s)) * job.params.k",
            "helper(parse_int(s))   *\n               job.params.k",
        ),
    );
    p.run(&["workflows/wf.rhai", "-n"])
        .code(0)
        .stdout_has("nothing to be done");
    p.file(
        "rules/x.rhai",
        &text.replace(
            "helper(parse_int(s)) * job.params.k",
            "helper(parse_int(s)) + job.params.k",
        ),
    );
    let plan = p.run(&["workflows/wf.rhai", "-n"]).code(0);
    assert_eq!(plan.reasons("one_scaled"), ["the rule's code changed"]);
    assert_eq!(plan.reasons("ten_scaled"), ["the rule's code changed"]);
    p.run(&["workflows/wf.rhai"]).code(0);
    assert_eq!(p.read("out/ten.txt"), "16");
}

#[test]
fn runtime_error_in_a_rule_file_closure_points_into_the_rule_file() {
    let p = Project::new();
    p.file(
        "rules/bad.rhai",
        r#"
fn bad_rules() {
    rule("bad", #{
        output: "out.txt",
        run: |job| {
            let x = job.params.missing;
        },
    });
}
"#,
    )
    .file(
        "workflows/wf.rhai",
        "import \"../rules/bad\" as b;\nb::bad_rules();\n",
    );
    let run = p.run(&["workflows/wf.rhai"]).code(1);
    let run = run
        .stderr_has("Property not found: missing")
        .stderr_has("rules/bad.rhai:6:")
        .stderr_has("let x = job.params.missing;");
    assert!(!run.stderr.contains("../rules/bad:"), "{}", run.stderr);
}

// ---------------------------------------------------------------------------------------------
// The definition-time sandbox and limits

#[test]
fn writing_a_file_at_definition_time_is_refused() {
    let p = Project::new();
    p.file(
        "wf.rhai",
        "write_text(\"evil.txt\", \"x\");\nrule(\"a\", #{ output: \"a.txt\", shell: \"touch {output}\" });\n",
    );
    for args in [&["wf.rhai"][..], &["wf.rhai", "-n"], &["wf.rhai", "--list"]] {
        p.run(args)
            .workflow_error()
            .stderr_has("`write_text` is not allowed while the workflow is being defined")
            .stderr_has("wf.rhai:1:1");
        assert!(
            !p.exists("evil.txt"),
            "a file was written at definition time"
        );
        assert!(!p.exists("a.txt"));
    }
}

#[test]
fn reading_files_at_definition_time_is_allowed() {
    let p = Project::new();
    p.file("samples.txt", "a\nb\n").file(
        "wf.rhai",
        r#"
let samples = read_lines("samples.txt");
rule("all", #{ input: expand("{s}.out", #{ s: samples }) });
rule("make", #{ output: "{s}.out", shell: "touch {output}" });
"#,
    );
    let run = p.run(&["wf.rhai", "-j", "1"]).code(0);
    assert_eq!(run.ran(), ["make[s=a]", "make[s=b]", "all"]);
}

#[test]
fn endless_loop_at_definition_time_is_stopped() {
    let p = Project::new();
    p.file(
        "wf.rhai",
        "rule(\"a\", #{ output: \"a.txt\", shell: \"touch {output}\" });\nlet i = 0;\nloop { i += 1; }\n",
    );
    p.run(&["wf.rhai", "-n"])
        .workflow_error()
        .stderr_has("while being defined (an endless loop?)")
        .stderr_has("wf.rhai:3:")
        .stderr_has("hint: a workflow file should only declare rules");
}

#[test]
fn deep_recursion_at_definition_time_is_stopped() {
    let p = Project::new();
    p.file("wf.rhai", "fn f(n) { f(n + 1) }\nf(0);\n");
    p.run(&["wf.rhai"])
        .workflow_error()
        .stderr_has("function calls are nested too deeply")
        .stderr_has("hint: is there a recursion without an end?");
}

#[test]
fn closures_may_write_and_loop_at_run_time() {
    let p = Project::new();
    p.file(
        "wf.rhai",
        r#"rule("a", #{ output: "a.txt", run: |job| { let n = 0; for i in 0..1000 { n += i; } write_text(job.output[0], `${n}`); } });"#,
    );
    p.run(&["wf.rhai"]).code(0);
    assert_eq!(p.read("a.txt"), "499500");
}
