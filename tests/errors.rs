//! A corpus of bad workflows and bad command lines: each gets one clear message and exit code 2,
//! never a panic, and nothing runs.

mod common;
use common::{Project, Run};

const OK_RULE: &str = r#"rule("a", #{ output: "a.txt", shell: "touch {output}" });"#;

/// Runs flowrun on a workflow holding `text`, expecting a workflow error.
fn bad(text: &str, args: &[&str]) -> Run {
    let p = Project::new();
    p.file("wf.rhai", text);
    let mut all = vec!["wf.rhai"];
    all.extend_from_slice(args);
    let run = p.run(&all).workflow_error();
    assert!(!p.exists("a.txt"), "a job ran despite the error");
    assert!(
        !p.exists(".flowrun/store.db"),
        "state was written despite the error"
    );
    run
}

fn bad_rule(text: &str) -> Run {
    bad(text, &[])
}

// ---------------------------------------------------------------------------------------------
// Rhai errors

#[test]
fn syntax_error_shows_file_line_column_source_and_caret() {
    let run = bad_rule("let x = 1;\nlet y = x +* 2;\nrule(\"a\", #{ output: \"a.txt\" });\n");
    let text = run
        .stderr_has("error: syntax error: Unexpected '*'")
        .stderr_has("wf.rhai:2:12\n")
        .stderr;
    assert!(
        text.contains("  |\n2 | let y = x +* 2;\n  |            ^\n"),
        "{text}"
    );
}

#[test]
fn syntax_error_at_end_of_file_shows_where() {
    let run = bad_rule("rule(\"a\", #{ output: \"a.txt\", shell: \"x\" }\n");
    run.stderr_has("syntax error: Expecting ')' to close the arguments list")
        .stderr_has("wf.rhai:2:1\n")
        .stderr_has("2 | \n  | ^\n");
}

#[test]
fn unterminated_string_is_a_syntax_error() {
    bad_rule("rule(\"a\", #{ output: \"a.txt, shell: \"x\" });\n")
        .stderr_has("syntax error")
        .stderr_has("wf.rhai:1:");
}

#[test]
fn runtime_error_at_definition_time_points_at_the_line() {
    bad_rule("let files = [\"a\"];\nlet f = files[3];\n")
        .stderr_has("wf.rhai:2:")
        .stderr_has("let f = files[3];");
}

#[test]
fn unknown_function_is_reported() {
    bad_rule("rule(\"a\", #{ output: expnd(\"{x}\", #{ x: 1 }) });\n")
        .stderr_has("Function not found: expnd")
        .stderr_has("wf.rhai:1:");
}

#[test]
fn runtime_error_inside_a_rule_file_function_points_into_the_rule_file() {
    let p = Project::new();
    p.file(
        "rules/lib.rhai",
        "fn make(n) {\n    let x = n + \"a\" * 2;\n    rule(\"m\", #{ output: \"m.txt\" });\n}\n",
    )
    .file(
        "workflows/wf.rhai",
        "import \"../rules/lib\" as lib;\nlib::make(1);\n",
    );
    let run = p
        .run(&["workflows/wf.rhai"])
        .workflow_error()
        .stderr_has("Function not found: *")
        .stderr_has("rules/lib.rhai:2:")
        .stderr_has("2 |     let x = n + \"a\" * 2;");
    assert!(!run.stderr.contains("workflows/wf.rhai:"), "{}", run.stderr);
}

#[test]
fn syntax_error_in_a_rule_file_points_into_the_rule_file() {
    let p = Project::new();
    p.file("rules/syn.rhai", "fn f() {\n    let x = 1 +;\n}\n")
        .file("wf.rhai", "import \"rules/syn\" as s;\n");
    p.run(&["wf.rhai"])
        .workflow_error()
        .stderr_has("syntax error: Unexpected ';'")
        .stderr_has("rules/syn.rhai:2:16")
        .stderr_has("2 |     let x = 1 +;");
}

#[test]
fn bad_rule_in_a_rule_file_points_into_the_rule_file() {
    let p = Project::new();
    p.file(
        "rules/key.rhai",
        "\nrule(\"top\", #{ outptu: \"top.txt\" });\n",
    )
    .file("wf.rhai", "import \"rules/key\" as k;\n");
    p.run(&["wf.rhai"])
        .workflow_error()
        .stderr_has("rule `top`: unknown key `outptu`; did you mean `output`?")
        .stderr_has("rules/key.rhai:2:1");
}

#[test]
fn missing_rule_file_is_reported_at_the_import() {
    bad_rule("import \"../rules/nothere\" as x;\n")
        .stderr_has("Module not found")
        .stderr_has("nothere")
        .stderr_has("wf.rhai:1:8");
}

// ---------------------------------------------------------------------------------------------
// Rule keys and types

#[test]
fn unknown_rule_key_suggests_the_near_spelling() {
    bad_rule("rule(\"a\", #{ outptu: \"a.txt\", shell: \"x\" });\n")
        .stderr_has("rule `a`: unknown key `outptu`; did you mean `output`?")
        .stderr_has("wf.rhai:1:1");
    bad_rule("rule(\"a\", #{ output: \"a.txt\", shel: \"x\" });\n")
        .stderr_has("did you mean `shell`?");
    bad_rule("rule(\"a\", #{ output: \"a.txt\", zzzzzz: 1 });\n")
        .stderr_has("unknown key `zzzzzz`; the keys are input, output, log, params, shell, run");
}

#[test]
fn wrong_value_types_name_the_rule_and_the_key() {
    let cases = [
        (r#"threads: "4""#, "rule `r`: `threads` must be an integer, not a string"),
        ("input: 5", "rule `r`: `input` must be a path string, an array of paths or a map of named paths or a function of the wildcards, not an integer"),
        ("params: 3", "rule `r`: `params` must be a map or a function of the wildcards, not an integer"),
        ("shell: 1", "rule `r`: `shell` must be a string, not an integer"),
        (r#"run: "x""#, "rule `r`: `run` must be a closure like `|job| { ... }`, not a string"),
        ("threads: 0", "rule `r`: `threads` must be at least 1, not 0"),
        ("retries: -1", "rule `r`: `retries` must be at least 0, not -1"),
        ("priority: 1.5", "rule `r`: `priority` must be an integer, not a float"),
        (r#"resources: #{ mem_mb: "x" }"#, "rule `r`: `resources` `mem_mb` must be a non-negative integer, not a string"),
        ("resources: 5", "rule `r`: `resources` must be a map of integers, not an integer"),
        (r#"log: #{ a: [1] }"#, "rule `r`: `log` must be a path string"),
        ("params: #{ f: || 1 }", "rule `r`: `params.f` must be a function of the job's wildcards and, if it needs them, the job's files: `|w| ...`, `|w, input| ...`, `|w, output| ...` or `|w, input, output| ...`"),
        ("params: #{ f: [|w| 1] }", "rule `r`: `params` cannot hold a function; params must be plain data"),
        (r#"wildcard_constraints: "x""#, "rule `r`: `wildcard_constraints` must be a map of strings, not a string"),
        (r#"input: """#, "rule `r`: `input` holds an empty path"),
    ];
    for (key, message) in cases {
        let text = format!("rule(\"r\", #{{ output: \"a.txt\", {key} }});\n");
        bad_rule(&text)
            .stderr_has(message)
            .stderr_has("wf.rhai:1:1");
    }
}

#[test]
fn shell_and_run_together_are_an_error() {
    bad_rule("rule(\"a\", #{ output: \"a.txt\", shell: \"x\", run: |job| {} });\n")
        .stderr_has("rule `a`: `shell` and `run` cannot both be given; pick one");
}

#[test]
fn bad_rule_names_are_errors() {
    bad_rule("rule(\"two words\", #{ output: \"a.txt\" });\n")
        .stderr_has("rule name `two words` must be a non-empty word without spaces");
    bad_rule("rule(\"\", #{ output: \"a.txt\" });\n").stderr_has("must be a non-empty word");
}

#[test]
fn rule_called_wrongly_is_reported() {
    bad_rule("rule(\"a\");\n").stderr_has("Function not found: rule");
    bad_rule("rule(\"a\", 5);\n").stderr_has("Function not found: rule");
}

#[test]
fn temp_of_a_non_path_is_an_error() {
    bad_rule("rule(\"a\", #{ output: temp(5) });\n")
        .stderr_has("temp() takes a path string or an array of them")
        .stderr_has("wf.rhai:1:22");
}

#[test]
fn global_wildcard_constraints_must_be_strings() {
    bad_rule(&format!("wildcard_constraints(#{{ s: 1 }});\n{OK_RULE}\n"))
        .stderr_has("wildcard_constraints: `s` must be a regex string");
}

// ---------------------------------------------------------------------------------------------
// Shell templates

#[test]
fn unknown_placeholder_in_shell_suggests_a_fix() {
    bad_rule(
        "rule(\"a\", #{ input: \"i\", output: \"a.txt\", shell: \"cat {inptu} > {output}\" });\n",
    )
    .stderr_has("rule `a`: shell: unknown placeholder `{inptu}`; did you mean `input`?");
    bad_rule("rule(\"a\", #{ output: \"a.txt\", params: #{ factor: 2 }, shell: \"echo {params.factr}\" });\n")
        .stderr_has("`{params.factr}`: the rule has no param `factr`; did you mean `factor`?");
    bad_rule("rule(\"a\", #{ input: #{ reads: \"r\" }, output: \"a.txt\", shell: \"cat {input.read}\" });\n")
        .stderr_has("`{input.read}`: the rule has no file name `read`; did you mean `reads`?");
    bad_rule("rule(\"a\", #{ output: \"{s}.txt\", shell: \"echo {wildcards.t}\" });\n")
        .stderr_has("`{wildcards.t}`: the rule has no wildcard `t`");
}

#[test]
fn bad_placeholders_are_reported() {
    let cases = [
        ("echo {", "unclosed `{` in the command; write `{{` for a literal brace"),
        ("echo }", "stray `}` in the command; write `}}` for a literal brace"),
        ("cat {input[5]}", "`{input[5]}`: index 5 is out of range; the rule has 1 such file(s)"),
        ("echo {params}", "`{params}` needs a name"),
        ("echo {zzzz}", "unknown placeholder `{zzzz}`; placeholders are input, output, log, params, wildcards, threads, resources"),
    ];
    for (shell, message) in cases {
        let text =
            format!("rule(\"a\", #{{ input: \"i\", output: \"a.txt\", shell: \"{shell}\" }});\n");
        bad_rule(&text).stderr_has(message);
    }
}

// ---------------------------------------------------------------------------------------------
// Patterns and wildcards

#[test]
fn input_wildcard_missing_from_outputs_is_an_error() {
    bad_rule("rule(\"a\", #{ input: \"{x}.in\", output: \"a.txt\", shell: \"x\" });\n")
        .stderr_has("rule `a`: input `{x}.in` uses wildcard `{x}`, which no output of the rule defines (the rule has no wildcards in its outputs)");
    bad_rule("rule(\"a\", #{ input: \"{sampel}.in\", output: \"{sample}.txt\", shell: \"x\" });\n")
        .stderr_has("input `{sampel}.in` uses wildcard `{sampel}`")
        .stderr_has("hint: did you mean `sample`?");
    bad_rule("rule(\"a\", #{ output: \"{s}.txt\", log: \"{t}.log\", shell: \"x\" });\n")
        .stderr_has("rule `a`: log `{t}.log` uses wildcard `{t}`");
}

#[test]
fn outputs_with_different_wildcards_are_an_error() {
    bad_rule("rule(\"a\", #{ output: [\"{x}.a\", \"{y}.b\"], shell: \"x\" });\n").stderr_has(
        "rule `a`: every output must have the same wildcards, but `{x}.a` has {x} and `{y}.b` has {y}",
    );
}

#[test]
fn duplicate_rule_names_are_an_error() {
    bad_rule(&format!("{OK_RULE}\n{OK_RULE}\n"))
        .stderr_has("rule `a` is declared twice (first declared at ")
        .stderr_has("wf.rhai:1:1)")
        .stderr_has("wf.rhai:2:1\n")
        .stderr_has("hint: give each rule its own name");
}

#[test]
fn bad_wildcard_constraint_regex_is_an_error() {
    bad_rule("rule(\"a\", #{ output: \"{x}.txt\", wildcard_constraints: #{ x: \"[a-\" }, shell: \"x\" });\n")
        .stderr_has("rule `a`: output: wildcard `x` in `{x}.txt` has an invalid constraint");
    bad_rule("rule(\"a\", #{ output: \"{x,(}.txt\", shell: \"x\" });\n")
        .stderr_has("wildcard `x` in `{x,(}.txt` has an invalid constraint");
    bad_rule("wildcard_constraints(#{ x: \"(\" });\nrule(\"a\", #{ output: \"{x}.txt\", shell: \"x\" });\n")
        .stderr_has("has an invalid constraint");
}

#[test]
fn unclosed_brace_in_a_pattern_is_an_error() {
    bad_rule("rule(\"a\", #{ output: \"{x.txt\", shell: \"x\" });\n")
        .stderr_has("rule `a`: output: unclosed `{` in `{x.txt`; write `{{` for a literal brace");
    bad_rule("rule(\"a\", #{ input: \"x}.txt\", output: \"a.txt\", shell: \"x\" });\n")
        .stderr_has("rule `a`: input: stray `}` in `x}.txt`");
    bad_rule("rule(\"a\", #{ output: \"{1x}.txt\", shell: \"x\" });\n")
        .stderr_has("`{1x}` in `{1x}.txt` is not a valid wildcard name");
}

#[test]
fn several_bad_rules_are_reported_together() {
    let run = bad_rule(
        "rule(\"a\", #{ output: \"{x.txt\", shell: \"x\" });\nrule(\"b\", #{ output: \"b.txt\", shell: \"{inptu}\" });\n",
    );
    run.stderr_has("rule `a`: output: unclosed")
        .stderr_has("rule `b`: shell: unknown placeholder");
}

// ---------------------------------------------------------------------------------------------
// Workflow files

#[test]
fn empty_workflow_declares_no_rules() {
    for text in ["", "// just a comment\n", "let x = 1;\n"] {
        bad_rule(text)
            .stderr_has("`wf.rhai` declares no rules")
            .stderr_has("hint: declare one with `rule(");
    }
}

#[test]
fn missing_workflow_file_is_an_error() {
    let p = Project::new();
    p.run(&["nope.rhai"])
        .workflow_error()
        .stderr_has("workflow file `")
        .stderr_has("nope.rhai` does not exist");
}

#[test]
fn a_directory_as_workflow_file_is_an_error() {
    let p = Project::new();
    std::fs::create_dir_all(p.path().join("wf.rhai")).unwrap();
    p.run(&["wf.rhai"])
        .workflow_error()
        .stderr_has("does not exist");
}

// ---------------------------------------------------------------------------------------------
// The command line

#[test]
fn unknown_rerun_trigger_is_an_error() {
    bad(OK_RULE, &["--rerun-triggers", "mtim"])
        .stderr_has("unknown rerun trigger `mtim`")
        .stderr_has("hint: did you mean `mtime`?");
    bad(OK_RULE, &["--rerun-triggers", "content,bogus"])
        .stderr_has("unknown rerun trigger `bogus`")
        .stderr_has("the triggers are mtime, content, code, params, input, software");
}

#[test]
fn bad_config_syntax_is_an_error() {
    bad(OK_RULE, &["--config", "novalue"])
        .stderr_has("`--config novalue` is not `key=value`")
        .stderr_has("hint: write e.g. `--config rows=1000`");
    bad(OK_RULE, &["--config", "=3"]).stderr_has("`--config =3` has an empty key");
    bad(OK_RULE, &["--config", "a..b=3"]).stderr_has("has an empty key");
}

#[test]
fn bad_configfile_extension_is_an_error() {
    let p = Project::new();
    p.file("wf.rhai", OK_RULE).file("c.ini", "a=1\n");
    p.run(&["wf.rhai", "--configfile", "c.ini"])
        .workflow_error()
        .stderr_has("c.ini` has an unknown extension")
        .stderr_has("hint: use .json, .toml, .yaml or .yml");
}

#[test]
fn bad_configfile_content_is_an_error() {
    let p = Project::new();
    p.file("wf.rhai", OK_RULE)
        .file("bad.json", "{ nope")
        .file("bad.toml", "a = = 1\n")
        .file("bad.yaml", "a: [1, 2\n")
        .file("list.json", "[1, 2]")
        .file("scalar.yaml", "3\n");
    for f in ["bad.json", "bad.toml", "bad.yaml"] {
        p.run(&["wf.rhai", "--configfile", f])
            .workflow_error()
            .stderr_has("cannot parse config file `")
            .stderr_has(f);
    }
    for f in ["list.json", "scalar.yaml"] {
        p.run(&["wf.rhai", "--configfile", f])
            .workflow_error()
            .stderr_has("must hold a map of keys at the top level");
    }
    p.run(&["wf.rhai", "--configfile", "missing.yaml"])
        .workflow_error()
        .stderr_has("cannot read config file `");
    assert!(!p.exists("a.txt"));
}

#[test]
fn resources_must_be_name_equals_number() {
    bad(OK_RULE, &["--resources", "mem_mb"])
        .stderr_has("`--resources mem_mb` is not `NAME=N`")
        .stderr_has("hint: e.g. `--resources mem_mb=4000`");
    bad(OK_RULE, &["--resources", "mem_mb=lots"])
        .stderr_has("`--resources mem_mb=lots`: `lots` is not a whole number");
    bad(OK_RULE, &["--resources", "mem_mb=-5"]).stderr_has("is not a whole number");
}

#[test]
fn unknown_option_is_a_usage_error() {
    bad(OK_RULE, &["--bogus"]).stderr_has("unexpected argument '--bogus'");
    bad(OK_RULE, &["-j", "many"]).stderr_has("invalid value 'many'");
}

#[test]
fn missing_directory_is_an_error() {
    bad(OK_RULE, &["-d", "/nonexistent/flowrun-test-dir"])
        .stderr_has("cannot change to directory `/nonexistent/flowrun-test-dir`");
}

#[test]
fn help_documents_options_and_exit_codes() {
    let p = Project::new();
    let run = p.run(&["--help"]).code(0);
    for text in [
        "--dry-run",
        "--cores",
        "--keep-going",
        "--force-all",
        "--force",
        "--until",
        "--rerun-triggers",
        "--config",
        "--configfile",
        "--resources",
        "--keep-incomplete",
        "--list",
        "--dag",
        "--rulegraph",
        "--summary",
        "--directory",
        "--quiet",
        "--verbose",
        "130  interrupted",
        "3    another flowrun is running",
    ] {
        assert!(
            run.stdout.contains(text),
            "--help lacks {text}\n{}",
            run.stdout
        );
    }
}
