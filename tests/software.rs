//! Software environments: `env`, `software: #{ python: FILE, path: [...] }`, made once into a
//! shared cache (`FLOWRUN_ENVS`) before the first job or by `--create-envs`, used offline once
//! made; changing them reruns their jobs ("the software environment changed").
//!
//! The Python package installed is a tiny wheel the test writes itself, so no test needs the
//! network. Environments are made with `uv` from `target/pyenv` (scripts/setup-tests.sh
//! installs it); without it, flowrun falls back to `python3 -m venv` and `pip`, which these
//! tests then exercise instead.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{run_bounded, Project, Run};

/// Writes `tinypkg-VERSION-py3-none-any.whl` into `dir`: a package whose `VALUE` is
/// `tiny VERSION`.
fn write_wheel(dir: &Path, version: &str) {
    let script = format!(
        r#"
import base64, hashlib, zipfile
v = "{version}"
files = {{"tinypkg/__init__.py": f"VALUE = 'tiny {{v}}'\n",
         f"tinypkg-{{v}}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: tinypkg\nVersion: {{v}}\n",
         f"tinypkg-{{v}}.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}}
record = []
for name, text in files.items():
    digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
    record.append(f"{{name}},sha256={{digest}},{{len(text)}}")
record.append(f"tinypkg-{{v}}.dist-info/RECORD,,")
files[f"tinypkg-{{v}}.dist-info/RECORD"] = "\n".join(record) + "\n"
with zipfile.ZipFile(f"tinypkg-{{v}}-py3-none-any.whl", "w") as z:
    for name, text in files.items():
        z.writestr(name, text)
"#
    );
    let mut py = Command::new("python3");
    py.current_dir(dir).arg("-c").arg(script);
    run_bounded(py).code(0);
}

fn uv() -> Option<PathBuf> {
    let uv = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/pyenv/bin/uv");
    if uv.is_file() {
        Some(uv)
    } else {
        eprintln!("\n!!! NOTE: no target/pyenv/bin/uv (`bash scripts/setup-tests.sh`): environments are made with python3 -m venv and pip\n");
        None
    }
}

/// A project whose rule `a` runs in a Python environment with `tinypkg` 1.0, a tool folder on
/// its `PATH` and a variable, and whose rule `b` asks for nothing.
fn project() -> Project {
    let p = Project::new();
    write_wheel(p.path(), "1.0");
    write_wheel(p.path(), "2.0");
    p.file("envs/tiny.txt", "./tinypkg-1.0-py3-none-any.whl\n")
        .file("tools/bin/mytool", "#!/bin/sh\necho tool-ran\n")
        .file(
            "wf.rhai",
            r#"
rule("all", #{ input: ["out/a.txt", "out/b.txt"] });
rule("a", #{
    output: "out/a.txt",
    software: #{ python: "envs/tiny.txt", path: ["tools/bin"] },
    env: #{ GREETING: "hello", COUNT: 3 },
    shell: "python3 -c 'import os, tinypkg; print(tinypkg.VALUE, os.environ[\"GREETING\"], os.environ[\"COUNT\"])' > {output}; mytool >> {output}",
});
rule("b", #{ output: "out/b.txt", shell: "python3 -c 'import tinypkg' 2> /dev/null && echo found > {output} || echo absent > {output}" });
"#,
        );
    let tool = p.path().join("tools/bin/mytool");
    std::fs::set_permissions(&tool, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    p
}

/// Runs flowrun with the environments kept under the project and `uv` (if there is one).
fn run(p: &Project, args: &[&str]) -> Run {
    let mut cmd = p.cmd(args);
    cmd.env("FLOWRUN_ENVS", p.path().join("envcache"));
    match uv() {
        Some(uv) => cmd.env("FLOWRUN_UV", uv),
        None => cmd.env("FLOWRUN_UV", ""),
    };
    run_bounded(cmd)
}

#[test]
fn a_job_runs_with_its_environment_its_path_and_its_variables() {
    let p = project();
    run(&p, &["wf.rhai"])
        .code(0)
        .stderr_has("Creating software environment python-");
    assert_eq!(p.read("out/a.txt"), "tiny 1.0 hello 3\ntool-ran\n");
    // A rule without software does not see it.
    assert_eq!(p.read("out/b.txt"), "absent\n");
    // Made once: the next run that needs it uses it as it is.
    p.remove("out/a.txt");
    run(&p, &["wf.rhai"])
        .code(0)
        .stderr_lacks("Creating software environment");
    assert_eq!(p.read("out/a.txt"), "tiny 1.0 hello 3\ntool-ran\n");
}

#[test]
fn changing_the_requirements_reruns_exactly_the_jobs_that_use_them() {
    let p = project();
    run(&p, &["wf.rhai"]).code(0);
    p.file("envs/tiny.txt", "./tinypkg-2.0-py3-none-any.whl\n");
    let dry = run(&p, &["wf.rhai", "-n"]).code(0);
    assert_eq!(dry.planned(), ["a", "all"]);
    assert_eq!(dry.reasons("a"), ["the software environment changed"]);
    // The trigger can be turned off: then only the other triggers count.
    run(
        &p,
        &[
            "wf.rhai",
            "-n",
            "--rerun-triggers",
            "content,code,params,input",
        ],
    )
    .code(0)
    .stdout_has("nothing to be done: every output is up to date");
    run(&p, &["wf.rhai"])
        .code(0)
        .stderr_has("Creating software environment python-");
    assert_eq!(p.read("out/a.txt"), "tiny 2.0 hello 3\ntool-ran\n");
    // A variable is part of the identity too.
    p.file(
        "wf.rhai",
        &p.read("wf.rhai")
            .replace("GREETING: \"hello\"", "GREETING: \"hi\""),
    );
    let dry = run(&p, &["wf.rhai", "-n"]).code(0);
    assert_eq!(dry.planned(), ["a", "all"]);
    assert_eq!(dry.reasons("a"), ["the software environment changed"]);
    run(&p, &["wf.rhai"]).code(0);
    assert_eq!(p.read("out/a.txt"), "tiny 2.0 hi 3\ntool-ran\n");
    // Touching the file, or rewriting it unchanged, changes nothing.
    p.file("envs/tiny.txt", "./tinypkg-2.0-py3-none-any.whl\n");
    run(&p, &["wf.rhai", "-n"])
        .code(0)
        .stdout_has("nothing to be done: every output is up to date");
}

#[test]
fn create_envs_makes_them_ahead_and_runs_work_offline_afterwards() {
    let p = project();
    let made = run(&p, &["wf.rhai", "--create-envs"]).code(0);
    assert!(
        made.stdout.contains("(envs/tiny.txt) is ready in "),
        "{}",
        made.stdout
    );
    assert!(!p.exists("out/a.txt"), "--create-envs runs no job");
    // Offline: neither uv nor an index is reachable any more; the environment is enough.
    let mut cmd = p.cmd(&["wf.rhai"]);
    cmd.env("FLOWRUN_ENVS", p.path().join("envcache"))
        .env("FLOWRUN_UV", "/no/such/uv")
        .env("UV_OFFLINE", "1");
    run_bounded(cmd)
        .code(0)
        .stderr_lacks("Creating software environment");
    assert_eq!(p.read("out/a.txt"), "tiny 1.0 hello 3\ntool-ran\n");
}

#[test]
fn a_failed_creation_names_the_environment_and_the_file() {
    let p = project();
    p.file("envs/tiny.txt", "./no-such-package-1.0-py3-none-any.whl\n");
    run(&p, &["wf.rhai"])
        .workflow_error()
        .stderr_has("error: cannot create software environment `python-")
        .stderr_has("` from `envs/tiny.txt`: ");
    assert!(
        !p.exists("out/b.txt"),
        "nothing runs when an environment cannot be made"
    );
    // Nothing half-made is left to be taken for an environment.
    let left: Vec<_> = std::fs::read_dir(p.path().join("envcache"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with(".lock"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn bad_env_and_software_keys_are_errors() {
    let p = Project::new();
    p.file("envs/x.txt", "");
    let cases = [
        (r#"software: "envs/x.txt""#, "rule `s`: `software` must be a map such as `#{ python: \"envs/x.txt\" }`, not a string"),
        (r#"software: #{ pyton: "envs/x.txt" }"#, "rule `s`: `software` has no kind `pyton`; did you mean `python`?"),
        (r#"software: #{ conda: "envs/x.yaml" }"#, "rule `s`: `software` has no kind `conda`; the kinds are python, path"),
        (r#"software: #{ python: 3 }"#, "rule `s`: `software` `python` must be the path of a requirements file, not an integer"),
        (r#"software: #{ python: "envs/missing.txt" }"#, "rule `s`: `software` python file `envs/missing.txt` cannot be read: No such file or directory"),
        (r#"software: #{ path: [1] }"#, "rule `s`: `software` `path` holds folders as strings, not an integer"),
        (r#"env: "A=1""#, "rule `s`: `env` must be a map of strings, not a string"),
        (r#"env: #{ "1A": "x" }"#, "rule `s`: `env` `1A` is not a variable name"),
        (r#"env: #{ A: [1] }"#, "rule `s`: `env` `A` must be a string or a number, not an array"),
    ];
    for (key, message) in cases {
        p.file(
            "wf.rhai",
            &format!("rule(\"s\", #{{ output: \"x.txt\", shell: \"touch x.txt\", {key} }});"),
        );
        p.run(&["wf.rhai"]).workflow_error().stderr_has(message);
    }
    p.file(
        "wf.rhai",
        r#"rule("s", #{ output: "x.txt", env: #{ A: "1" }, run: |job| write_text(job.output[0], "") });"#,
    );
    p.run(&["wf.rhai"]).workflow_error().stderr_has(
        "rule `s`: `env` and `software` apply to the commands and scripts a job starts: give them to a `shell` or `script` rule",
    );
}

#[test]
fn a_cached_result_is_restored_only_into_the_same_software() {
    let cache = tempfile::tempdir().unwrap();
    let cache_arg = cache.path().to_str().unwrap();
    let wf = |value: &str| {
        format!(
            r#"rule("v", #{{ output: "v.txt", cache: true, env: #{{ V: "{value}" }}, shell: "echo $V > {{output}}" }});"#
        )
    };
    let first = Project::new();
    first.file("wf.rhai", &wf("1"));
    first.run(&["--cache-dir", cache_arg, "wf.rhai"]).code(0);
    let same = Project::new();
    same.file("wf.rhai", &wf("1"));
    same.run(&["-v", "--cache-dir", cache_arg, "wf.rhai"])
        .code(0)
        .stderr_has("Restored v from the cache");
    let other = Project::new();
    other.file("wf.rhai", &wf("2"));
    other
        .run(&["-v", "--cache-dir", cache_arg, "wf.rhai"])
        .code(0)
        .stderr_lacks("Restored v from the cache");
    assert_eq!(other.read("v.txt"), "2\n");
}
