//! Hostile or broken workflows (issue 6): each case must end with exit code 2, its expected
//! message, no panic, nothing run, no state written and nothing written outside the project.
//! Together with `tests/errors.rs` this is the corpus of bad input.

mod common;
use common::Project;

/// One broken workflow: its text, extra arguments, files to create first and the texts its
/// error must contain.
struct Case {
    name: &'static str,
    workflow: String,
    args: Vec<String>,
    expect: Vec<String>,
}

fn case(name: &'static str, workflow: &str, expect: &[&str]) -> Case {
    Case {
        name,
        workflow: workflow.to_string(),
        args: Vec::new(),
        expect: expect.iter().map(|s| s.to_string()).collect(),
    }
}

fn with_args(mut c: Case, args: &[&str]) -> Case {
    c.args = args.iter().map(|s| s.to_string()).collect();
    c
}

/// A unique name in /tmp that must never be created by a refused workflow.
fn outside(tag: &str) -> String {
    format!("/tmp/flowrun-hostile-{}-{tag}.txt", std::process::id())
}

fn corpus() -> Vec<Case> {
    let long = "d/".repeat(2100) + "x.txt";
    let long_name = "n".repeat(300) + ".txt";
    let abs = outside("abs");
    let abs_log = outside("log");
    let abs_wild = outside("wild");
    vec![
        // Syntax.
        case(
            "missing closing parenthesis",
            "rule(\"a\", #{ output: \"a.txt\", shell: \"touch {output}\" }\n",
            &["syntax error", "wf.rhai:2:1"],
        ),
        case(
            "missing variable name",
            "let = 5;\n",
            &["syntax error", "wf.rhai:1:"],
        ),
        case(
            "unterminated comment",
            "/* never closed\nrule(\"a\", #{ output: \"a.txt\" });\n",
            &["declares no rules"],
        ),
        case(
            "unbalanced map braces",
            "rule(\"a\", #{ output: \"a.txt\", params: #{ x: 1 } );\n",
            &["syntax error"],
        ),
        // Wrong types.
        case(
            "output is a number",
            r#"rule("a", #{ output: 5 });"#,
            &["rule `a`: `output` must be a path string, an array of paths or a map of named paths, not an integer"],
        ),
        case(
            "threads is a string",
            r#"rule("a", #{ output: "a.txt", threads: "two", shell: "touch {output}" });"#,
            &["rule `a`: `threads` must be an integer, not a string"],
        ),
        case(
            "shell is a number",
            r#"rule("a", #{ output: "a.txt", shell: 42 });"#,
            &["rule `a`: `shell` must be a string, not an integer"],
        ),
        case(
            "params is a number",
            r#"rule("a", #{ output: "a.txt", params: 3, shell: "touch {output}" });"#,
            &["rule `a`: `params` must be a map or a function of the wildcards, not an integer"],
        ),
        case(
            "negative retries",
            r#"rule("a", #{ output: "a.txt", retries: -1, shell: "touch {output}" });"#,
            &["rule `a`: `retries` must be at least 0, not -1"],
        ),
        case(
            "timeout is a string",
            r#"rule("a", #{ output: "a.txt", timeout: "soon", shell: "touch {output}" });"#,
            &["rule `a`: `timeout` must be a number of seconds, not a string"],
        ),
        case(
            "timeout is zero",
            r#"rule("a", #{ output: "a.txt", timeout: 0, shell: "touch {output}" });"#,
            &["rule `a`: `timeout` must be more than 0 seconds"],
        ),
        case(
            "timeout is negative",
            r#"rule("a", #{ output: "a.txt", timeout: -1.5, shell: "touch {output}" });"#,
            &["`timeout` must be more than 0 seconds and at most a year, not -1.5"],
        ),
        case(
            "allow_outside is a string",
            r#"rule("a", #{ output: "a.txt", allow_outside: "yes", shell: "touch {output}" });"#,
            &["rule `a`: `allow_outside` must be `true` or `false`, not a string"],
        ),
        case(
            "run is a string",
            r#"rule("a", #{ output: "a.txt", run: "echo hi" });"#,
            &["rule `a`: `run` must be a closure like `|job| { ... }`, not a string"],
        ),
        case(
            "rule spec is not a map",
            r#"rule("a", 5);"#,
            &["Function not found: rule"],
        ),
        case(
            "empty output path",
            r#"rule("a", #{ output: "", shell: "true" });"#,
            &["rule `a`: `output` holds an empty path"],
        ),
        // Unknown keys and names.
        case(
            "misspelt output",
            r#"rule("a", #{ outptu: "a.txt", shell: "touch a.txt" });"#,
            &["unknown key `outptu`", "did you mean `output`?"],
        ),
        case(
            "misspelt timeout",
            r#"rule("a", #{ output: "a.txt", timout: 5, shell: "touch {output}" });"#,
            &["unknown key `timout`", "did you mean `timeout`?"],
        ),
        case(
            "unknown model",
            r#"rule("a", #{ output: "a.txt", model: "gpu", items: [1], map: |j, x| x, finish: |j, r| () });"#,
            &["`gpu` is not a model"],
        ),
        case(
            "map without finish",
            r#"rule("a", #{ output: "a.txt", items: [1], map: |j, x| x });"#,
            &["`finish` is missing"],
        ),
        with_args(
            case(
                "unknown target",
                r#"rule("a", #{ output: "a.txt", shell: "touch {output}" });"#,
                &["no rule makes `nosuch`, and it is not a rule name or an existing file"],
            ),
            &["nosuch"],
        ),
        // Graph problems.
        case(
            "missing input",
            r#"rule("a", #{ input: "nope.txt", output: "a.txt", shell: "cp {input} {output}" });"#,
            &["missing input `nope.txt`, needed by a, and no rule makes it"],
        ),
        case(
            "missing input of a wildcard job",
            r#"
rule("all", #{ input: "out/s1.txt" });
rule("m", #{ input: "raw/{s}.txt", output: "out/{s}.txt", shell: "cp {input} {output}" });
"#,
            &["missing input `raw/s1.txt`, needed by m[s=s1], and no rule makes it"],
        ),
        case(
            "two-rule cycle",
            r#"
rule("a", #{ input: "b.txt", output: "a.txt", shell: "cp {input} {output}" });
rule("b", #{ input: "a.txt", output: "b.txt", shell: "cp {input} {output}" });
"#,
            &["the rules form a cycle: ", "a -> b -> a"],
        ),
        case(
            "self cycle",
            r#"rule("x", #{ input: "x.txt", output: "x.txt", shell: "touch {output}" });"#,
            &["the rules form a cycle: x -> x"],
        ),
        case(
            "ambiguous producers",
            r#"
rule("all", #{ input: "r/a.txt" });
rule("one", #{ output: "r/{x}.txt", shell: "touch {output}" });
rule("two", #{ output: "r/{y}.txt", shell: "touch {output}" });
"#,
            &["`r/a.txt` can be made by more than one rule: `one`, `two`", "priority"],
        ),
        case(
            "runaway wildcard recursion",
            r#"rule("grow", #{ input: "{x}.x", output: "{x}", shell: "touch {output}" });
rule("all", #{ input: "a" });"#,
            &["keeps needing its own outputs through wildcards"],
        ),
        // Paths that escape the working directory.
        case(
            "wildcard value with ../ escapes",
            r#"
rule("all", #{ input: "../escape-hostile.txt" });
rule("make", #{ output: "{x}.txt", shell: "echo pwned > {output}" });
"#,
            &[
                "`../escape-hostile.txt` is outside the working directory: rule `make` would make it with x=../escape-hostile",
                "allow_outside: true",
            ],
        ),
        case(
            "wildcard value climbing two levels from a subdirectory",
            r#"
rule("all", #{ input: "out/../../x-hostile.txt" });
rule("make", #{ output: "out/{x}.txt", shell: "echo pwned > {output}" });
"#,
            &["is outside the working directory: rule `make` would make it with x=../../x-hostile"],
        ),
        with_args(
            case(
                "target on the command line climbs out",
                r#"rule("make", #{ output: "res/{x}.txt", shell: "echo pwned > {output}" });"#,
                &["is outside the working directory: rule `make` would make it"],
            ),
            &["res/../../../hostile-target.txt"],
        ),
        case(
            "second output escapes through the wildcard value",
            r#"
rule("all", #{ input: "a/b/../x.txt" });
rule("make", #{ output: ["a/b/{x}.txt", "{x}.log"], shell: "touch {output}" });
"#,
            &["would write `../x.log`, which climbs out of the working directory with `..`"],
        ),
        case(
            "literal ../ output",
            r#"rule("a", #{ output: "../up-hostile.txt", shell: "touch {output}" });"#,
            &["rule `a`: output `../up-hostile.txt` climbs out of the working directory with `..`"],
        ),
        case(
            "../ in an output pattern",
            r#"rule("a", #{ output: "x/../../{n}.txt", shell: "touch {output}" });"#,
            &["output `x/../../{n}.txt` climbs out of the working directory"],
        ),
        case(
            "absolute output",
            &format!(r#"rule("a", #{{ output: "{abs}", shell: "touch {{output}}" }});"#),
            &[&format!("rule `a`: output `{abs}` is an absolute path; flowrun writes only inside the working directory"), "allow_outside: true"],
        ),
        case(
            "absolute log",
            &format!(r#"rule("a", #{{ output: "a.txt", log: "{abs_log}", shell: "touch {{output}}" }});"#),
            &[&format!("rule `a`: log `{abs_log}` is an absolute path")],
        ),
        case(
            "absolute path through a wildcard value",
            &format!(r#"
rule("all", #{{ input: "{abs_wild}" }});
rule("make", #{{ output: "{{p}}", shell: "echo pwned > {{output}}" }});
"#),
            &[&format!("`{abs_wild}` is outside the working directory: rule `make` would make it")],
        ),
        // Very long paths and impossible names.
        case(
            "output path over 4096 bytes",
            &format!(r#"rule("a", #{{ output: "{long}", shell: "touch {{output}}" }});"#),
            &["bytes long; paths must be shorter than 4096 bytes"],
        ),
        case(
            "input path over 4096 bytes",
            &format!(r#"rule("a", #{{ input: "{long}", output: "a.txt", shell: "touch {{output}}" }});"#),
            &["bytes long; paths must be shorter than 4096 bytes"],
        ),
        case(
            "file name over 255 bytes",
            &format!(r#"rule("a", #{{ output: "{long_name}", shell: "touch {{output}}" }});"#),
            &["has a part of 304 bytes", "at most 255"],
        ),
        with_args(
            case(
                "wildcard value makes a path over 4096 bytes",
                r#"rule("make", #{ output: "w/{x}", shell: "touch {output}" });"#,
                &["rule `make` cannot make it: the path", "paths must be shorter than 4096 bytes"],
            ),
            &[format!("w/{long}").as_str()],
        ),
        case(
            "input path over 4096 bytes through expand",
            &format!(r#"
rule("all", #{{ input: expand("w/{{x}}", #{{ x: "{long}" }}) }});
rule("make", #{{ output: "w/{{x}}", shell: "touch {{output}}" }});
"#),
            &["paths must be shorter than 4096 bytes"],
        ),
        case(
            "NUL byte in an output",
            "rule(\"a\", #{ output: \"a\\x00b.txt\", shell: \"touch {output}\" });",
            &["holds a NUL byte"],
        ),
        // Limits at definition time.
        case(
            "endless loop",
            "let i = 0;\nloop { i += 1; }\n",
            &["operations while being defined (an endless loop?)", "wf.rhai:2:"],
        ),
        case(
            "deep recursion",
            "fn f(n) { f(n + 1) }\nf(0);\n",
            &["function calls are nested too deeply"],
        ),
        case(
            "string doubling bomb",
            "let s = \"xxxxxxxx\";\nloop { s += s; }\n",
            &["wf.rhai:2:"],
        ),
        case(
            // 40 jobs, whose functions run on every core at once; one of them runs away.
            "string doubling bomb in an input function",
            r#"rule("all", #{ input: expand("{n}.txt", #{ n: range(0, 40).collect() }) });
rule("a", #{ output: "{n}.txt", shell: "touch {output}", input: |w| {
    if w.n != "7" { return []; }
    let s = "xxxxxxxx"; loop { s += s; } } });
"#,
            &[
                "rule `a`, job a[n=7]: the `input` function failed: the workflow held more than",
                "MiB of memory",
                "wf.rhai:2:",
            ],
        ),
        case(
            "gigantic expand",
            r#"
let n = range(0, 2000).collect();
rule("all", #{ input: expand("{a}/{b}/{c}.txt", #{ a: n, b: n, c: n }) });
"#,
            &["would make more than 2000000 paths"],
        ),
        // Effects at definition time.
        case(
            "write_text at definition time",
            "write_text(\"a.txt\", \"pwned\");\nrule(\"a\", #{ output: \"a.txt\" });\n",
            &["`write_text` is not allowed while the workflow is being defined"],
        ),
        case(
            "write_lines at definition time",
            "write_lines(\"a.txt\", [1, 2]);\n",
            &["`write_lines` is not allowed while the workflow is being defined"],
        ),
        case(
            "write_json at definition time",
            "write_json(\"a.txt\", #{ x: 1 });\n",
            &["`write_json` is not allowed while the workflow is being defined"],
        ),
        case(
            "write_random_npy at definition time",
            "write_random_npy(\"a.txt\", 10, 2, 1);\n",
            &["`write_random_npy` is not allowed while the workflow is being defined"],
        ),
        case(
            "write_npy at definition time",
            "write_npy(\"a.txt\", read_npy(\"nothing.npy\"));\n",
            &["error: "],
        ),
        // Runtime errors while defining.
        case(
            "throw at definition time",
            "throw \"refusing to define\";\n",
            &["refusing to define", "wf.rhai:1:"],
        ),
        case(
            "undefined variable",
            "rule(\"a\", #{ output: nothing_here });\n",
            &["Variable not found: nothing_here", "wf.rhai:1:"],
        ),
        case(
            "import of itself",
            "import \"wf\" as me;\nrule(\"a\", #{ output: \"a.txt\" });\n",
            &["imports form a cycle: ", "wf.rhai -> "],
        ),
        // Nothing at all.
        case("empty workflow", "", &["declares no rules"]),
        case(
            "only comments",
            "// nothing here\n/* still nothing */\n",
            &["declares no rules"],
        ),
    ]
}

#[test]
fn every_hostile_workflow_gets_its_message_and_exit_2() {
    let cases = corpus();
    assert!(cases.len() >= 50, "the corpus has {} cases", cases.len());
    let mut failures = Vec::new();
    let parent = tempfile::tempdir().unwrap();
    for (i, c) in cases.iter().enumerate() {
        // Each project sits two levels down, so `../` escapes land in our own temp dir.
        let dir = parent.path().join(format!("{i}/work"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("wf.rhai"), &c.workflow).unwrap();
        let out = std::process::Command::new(common::bin())
            .current_dir(&dir)
            .arg("wf.rhai")
            .args(&c.args)
            .env("NO_COLOR", "1")
            .env("XDG_CONFIG_HOME", parent.path().join("no-user-config"))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let mut problems = Vec::new();
        if out.status.code() != Some(2) {
            problems.push(format!("exit code {:?}", out.status.code()));
        }
        if stderr.contains("panicked") {
            problems.push("panicked".into());
        }
        if !stderr.contains("error: ") {
            problems.push("no `error: `".into());
        }
        for e in &c.expect {
            if !stderr.contains(e.as_str()) {
                problems.push(format!("lacks {e:?}"));
            }
        }
        if dir.join(".flowrun/store.db").exists() {
            problems.push("state written".into());
        }
        let written: Vec<String> = walk(parent.path())
            .into_iter()
            .filter(|p| !p.ends_with("wf.rhai") && !p.contains("/.flowrun"))
            .collect();
        if !written.is_empty() {
            problems.push(format!("files written: {written:?}"));
        }
        if !problems.is_empty() {
            failures.push(format!(
                "case {i} `{}`: {}\n--- stderr\n{stderr}",
                c.name,
                problems.join("; ")
            ));
        }
        let _ = std::fs::remove_dir_all(parent.path().join(i.to_string()));
    }
    for tag in ["abs", "log", "wild"] {
        assert!(
            !std::path::Path::new(&outside(tag)).exists(),
            "an absolute output was written"
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    eprintln!("{} hostile workflows refused as expected", cases.len());
}

fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p.to_string_lossy().into_owned());
        }
    }
    out
}

#[test]
fn a_non_utf8_file_name_matched_by_glob_wildcards_is_a_clear_error() {
    use std::os::unix::ffi::OsStrExt;
    let p = Project::new();
    p.file("data/good.txt", "x");
    std::fs::write(
        p.path()
            .join("data")
            .join(std::ffi::OsStr::from_bytes(b"bad-\xff.txt")),
        "y",
    )
    .unwrap();
    p.file(
        "wf.rhai",
        r#"
let found = glob_wildcards("data/{s}.txt");
rule("all", #{ input: expand("data/{s}.txt", #{ s: found.s }) });
"#,
    );
    p.run(&["wf.rhai"])
        .workflow_error()
        .stderr_has("glob_wildcards: the file name `data/bad-")
        .stderr_has("is not valid UTF-8, and flowrun paths must be");
    // A pattern that would not match it is not bothered by it.
    p.file(
        "wf.rhai",
        r#"
let found = glob_wildcards("data/{s,[a-z]+}.txt");
rule("all", #{ input: expand("data/{s}.txt", #{ s: found.s }) });
"#,
    );
    p.run(&["wf.rhai"]).code(0);
}

#[test]
fn definition_time_command_requests_are_inert() {
    let p = Project::new();
    p.file(
        "wf.rhai",
        r#"
let r = command("touch pwned-by-command");
rule("a", #{ output: "a.txt", shell: "touch {output}" });
"#,
    );
    let run = p.run(&["wf.rhai"]);
    assert!(!p.exists("pwned-by-command"), "{}", run.stderr);
}

#[test]
fn an_absolute_output_is_written_with_allow_outside() {
    let p = Project::new();
    let elsewhere = tempfile::tempdir().unwrap();
    let target = elsewhere.path().join("made.txt");
    p.file(
        "wf.rhai",
        &format!(
            r#"rule("a", #{{ output: "{}", allow_outside: true, shell: "echo ok > {{output}}" }});"#,
            target.display()
        ),
    );
    p.run(&["wf.rhai"]).code(0);
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "ok\n");
    // A catch-all pattern does not take over an existing file outside: it is a source.
    let p = Project::new();
    p.file("../src-outside-hostile.txt", "source\n");
    p.file(
        "wf.rhai",
        r#"
rule("all", #{ input: "copy.txt" });
rule("copy", #{ input: "../src-outside-hostile.txt", output: "copy.txt", priority: 1,
                shell: "cp {input} {output}" });
rule("any", #{ output: "{x}.txt", shell: "echo pwned > {output}" });
"#,
    );
    let run = p.run(&["wf.rhai"]).code(0);
    assert_eq!(run.ran(), ["copy", "all"]);
    assert_eq!(p.read("copy.txt"), "source\n");
    assert_eq!(p.read("../src-outside-hostile.txt"), "source\n");
    let _ = std::fs::remove_file(p.path().join("../src-outside-hostile.txt"));
}
