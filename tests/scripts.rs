//! `script:` rules: Python, R, bash and Rhai files run unmodified, reading their job from the
//! JSON file `FLOWRUN_JOB` names; `flowrun --job-env LABEL` reproduces one job by hand; the
//! script's content is part of the rule's code; failures say where the interpreter stopped.

mod common;

use std::process::Command;

use common::{run_bounded, Project};

/// A Python script using every part of its job.
const PY_SCRIPT: &str = r#"import flowrun
job = flowrun.job()
total = sum(float(line) for line in open(job.input.table))
with open(job.output[0], "w") as out:
    out.write(f"{job.rule} {job.label} {job.wildcards.s} {total * job.params.factor} "
              f"{job.threads} {job.resources.mem_mb} {len(job.input)} {job.input[1]}\n")
with open(job.log[0], "w") as log:
    log.write("logged\n")
"#;

const PY_WORKFLOW: &str = r#"
rule("py", #{
    input: #{ table: "data/{s}.csv", extra: "extra.txt" },
    output: "out/{s}.txt",
    log: "logs/{s}.log",
    params: #{ factor: 3 },
    threads: 2,
    resources: #{ mem_mb: 100 },
    script: "scripts/sum.py",
});
"#;

fn python_project() -> Project {
    let p = Project::new();
    p.file("wf.rhai", PY_WORKFLOW)
        .file("scripts/sum.py", PY_SCRIPT)
        .file("data/a.csv", "1\n2\n3\n")
        .file("extra.txt", "");
    p
}

fn have(program: &str) -> bool {
    Command::new(program).arg("--version").output().is_ok()
}

#[test]
fn a_python_script_reads_its_whole_job() {
    let p = python_project();
    p.run(&["wf.rhai", "-j2", "out/a.txt"]).code(0);
    assert_eq!(
        p.read("out/a.txt"),
        "py py[s=a] a 18.0 2 100 2 data/a.csv\n"
    );
    assert_eq!(p.read("logs/a.log"), "logged\n");
}

#[test]
fn job_env_reproduces_one_job_by_hand() {
    let p = python_project();
    let out = p
        .run(&["wf.rhai", "-j2", "--job-env", "py[s=a]", "out/a.txt"])
        .code(0);
    let env = out.stdout;
    assert!(env.contains("export FLOWRUN_JOB="), "{env}");
    assert!(env.contains("# then: python3 scripts/sum.py"), "{env}");
    assert!(!p.exists("out/a.txt"), "--job-env runs nothing");
    // What an IDE would do: the printed environment, then the script as it is.
    let mut sh = Command::new("bash");
    sh.current_dir(p.path())
        .arg("-c")
        .arg(format!("{env}\npython3 scripts/sum.py"));
    run_bounded(sh).code(0);
    assert_eq!(
        p.read("out/a.txt"),
        "py py[s=a] a 18.0 2 100 2 data/a.csv\n"
    );
}

#[test]
fn job_env_errors_name_the_job() {
    let p = python_project();
    p.file(
        "wf.rhai",
        &format!(
            "{PY_WORKFLOW}\nrule(\"plain\", #{{ output: \"p.txt\", shell: \"touch p.txt\" }});"
        ),
    );
    p.run(&["wf.rhai", "--job-env", "py[s=b]", "out/a.txt"])
        .workflow_error()
        .stderr_has("error: no job `py[s=b]` in the graph of the targets")
        .stderr_has("did you mean `py[s=a]`?");
    p.run(&["wf.rhai", "--job-env", "plain", "p.txt"])
        .workflow_error()
        .stderr_has("error: job `plain` runs no script: its rule `plain` has no `script` key");
}

#[test]
fn the_scripts_content_is_part_of_the_rules_code_not_its_mtime() {
    let p = python_project();
    p.run(&["wf.rhai", "out/a.txt"]).code(0);
    p.touch("scripts/sum.py");
    p.run(&["wf.rhai", "-n", "out/a.txt"])
        .code(0)
        .stdout_has("nothing to be done: every output is up to date");
    p.file(
        "scripts/sum.py",
        &format!("{PY_SCRIPT}# a comment counts\n"),
    );
    let dry = p.run(&["wf.rhai", "-n", "out/a.txt"]).code(0);
    assert_eq!(dry.reasons("py[s=a]"), ["the rule's code changed"]);
}

#[test]
fn a_failing_python_script_says_where_it_stopped() {
    let p = Project::new();
    p.file(
        "wf.rhai",
        r#"rule("bad", #{ output: "x.txt", script: "scripts/bad.py" });"#,
    )
    .file("scripts/bad.py", "def f():\n    return 1 / 0\n\nf()\n");
    p.run(&["wf.rhai"])
        .code(1)
        .stderr_has("Failed [1/1] bad")
        .stderr_has(
            "script `scripts/bad.py` failed at line 2: ZeroDivisionError: division by zero \
             (python3 exited with status 1)",
        )
        // The traceback itself went to flowrun's stderr.
        .stderr_has("Traceback (most recent call last):");
}

#[test]
fn bash_and_rhai_scripts() {
    let p = Project::new();
    p.file(
        "wf.rhai",
        r#"
rule("all", #{ input: ["b.txt", "r.txt"] });
rule("sh", #{ input: "in.txt", output: "b.txt", script: "scripts/count.sh" });
rule("rh", #{ input: "in.txt", output: "r.txt", params: #{ k: 2 }, script: "scripts/double.rhai" });
"#,
    )
    .file("in.txt", "x\ny\n")
    .file(
        "scripts/count.sh",
        "grep -o '\"output\": \\[' \"$FLOWRUN_JOB\" > /dev/null\nwc -l < in.txt > b.txt\n",
    )
    .file(
        "scripts/double.rhai",
        "let n = read_lines(job.input[0]).len();\nwrite_text(job.output[0], `${n * job.params.k}`);\n",
    );
    p.run(&["wf.rhai"]).code(0);
    assert_eq!(p.read("b.txt").trim(), "2");
    assert_eq!(p.read("r.txt"), "4");

    p.file("scripts/count.sh", "echo one\nno-such-command-x\n");
    p.file(
        "scripts/double.rhai",
        "let n = 1;\nlet m = n + undefined_var;\n",
    );
    p.run(&["wf.rhai", "-k"])
        .code(1)
        .stderr_has(
            "script `scripts/count.sh` failed at line 2: no-such-command-x: command not found \
             (bash exited with status 127)",
        )
        .stderr_has("scripts/double.rhai:2:")
        .stderr_has("undefined_var");
}

#[test]
fn an_r_script_reads_its_job() {
    if !have("Rscript") {
        eprintln!("\n!!! SKIPPING an_r_script_reads_its_job: `Rscript` is not installed (`bash scripts/setup.sh` installs r-base-core).\n");
        return;
    }
    let p = Project::new();
    p.file(
        "wf.rhai",
        r#"rule("r", #{ input: #{ table: "data/{s}.csv", other: "o.txt" }, output: "out/{s}.txt",
    params: #{ factor: 3, name: "x \"quoted\"" }, script: "scripts/sum.R" });"#,
    )
    .file("data/a.csv", "1\n2\n3\n")
    .file("o.txt", "")
    .file(
        "scripts/sum.R",
        r#"job <- flowrun.job()
x <- as.numeric(readLines(job$input$table))
writeLines(paste(job$rule, job$wildcards$s, sum(x) * job$params$factor, job$params$name,
                 length(job$input), job$input[[2]]), job$output[[1]])
"#,
    );
    p.run(&["wf.rhai", "out/a.txt"]).code(0);
    assert_eq!(p.read("out/a.txt"), "r a 18 x \"quoted\" 2 data/a.csv\n");

    p.file(
        "scripts/sum.R",
        "job <- flowrun.job()\nf <- function() stop(\"boom\")\nf()\n",
    );
    p.run(&["wf.rhai", "out/a.txt"]).code(1).stderr_has(
        "script `scripts/sum.R` failed: Error in f() : boom (Rscript exited with status 1)",
    );
}

#[test]
fn scripts_are_found_beside_the_file_that_declares_the_rule() {
    let p = Project::new();
    p.file(
        "workflows/wf.rhai",
        r#"rule("py", #{ output: "x.txt", script: "scripts/w.py" });"#,
    )
    .file(
        "workflows/scripts/w.py",
        "import flowrun\nopen(flowrun.job().output[0], 'w').write('ok')\n",
    );
    p.run(&["workflows/wf.rhai"]).code(0);
    assert_eq!(p.read("x.txt"), "ok");
}

#[test]
fn bad_script_keys_are_errors() {
    let p = Project::new();
    p.file("tool", "print(1)\n");
    let cases = [
        (
            r#"script: "scripts/missing.py""#,
            "rule `s`: `script` `scripts/missing.py` cannot be read: No such file or directory",
        ),
        (
            r#"script: "tool""#,
            "rule `s`: `script` `tool`: the extension does not say its language (.py, .R, .sh, .rhai); name it with `script: #{ path: \"tool\", language: \"python\" }`",
        ),
        (
            r#"script: #{ path: "tool", language: "perl" }"#,
            "rule `s`: `script` language `perl` is not one flowrun runs; the languages are python, R, bash, rhai",
        ),
        (
            r#"script: #{ file: "tool" }"#,
            "rule `s`: `script` has no key `file`; give `path` and optionally `language`",
        ),
        (
            r#"script: 3"#,
            "rule `s`: `script` must be a path or a map `#{ path: ..., language: ... }`, not an integer",
        ),
        (
            r#"script: "tool", shell: "true""#,
            "rule `s`: `script` cannot be combined with `shell`, `run` or `map`: a rule does one kind of work",
        ),
    ];
    for (key, message) in cases {
        p.file(
            "wf.rhai",
            &format!("rule(\"s\", #{{ output: \"x.txt\", {key} }});"),
        );
        p.run(&["wf.rhai"]).workflow_error().stderr_has(message);
    }
    // With a language named, any file name goes.
    p.file(
        "wf.rhai",
        r#"rule("s", #{ output: "x.txt", script: #{ path: "tool", language: "python" } });"#,
    );
    p.file(
        "tool",
        "import flowrun\nopen(flowrun.job().output[0], 'w').write('t')\n",
    );
    p.run(&["wf.rhai"]).code(0);
    assert_eq!(p.read("x.txt"), "t");
}
