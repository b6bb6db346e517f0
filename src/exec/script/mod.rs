//! Running a rule's `script` for one job.
//!
//! The job goes to the script as a JSON file (`.flowrun/jobs/<hash>.json`, named by the
//! `FLOWRUN_JOB` variable), not as a global injected into the script's text: the file runs
//! unmodified, and the same file with the same environment runs it by hand
//! ([`environment`], printed by `flowrun --job-env`). Readers for Python (`import flowrun`,
//! found through `PYTHONPATH`) and R (`flowrun.job()`, loaded through `R_PROFILE_USER`) are
//! written under `.flowrun/lib/` from copies built into flowrun. A Rhai script runs inside
//! flowrun with `job` in scope, like a `run` closure.
//!
//! The interpreter's output passes through a [`Tee`] to the job's log (else flowrun's stderr),
//! and on failure its last lines say where the interpreter stopped: Python's traceback, bash's
//! `FILE: line N:`, R's `Error ...` line.

use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::fcntl::OFlag;
use nix::sys::signal::Signal;

use super::spawn::{Output, Spawn};
use super::tee::Tee;
use super::{Failure, JobContext};
use crate::rules::script::{Language, ScriptDecl};
use crate::rules::software::Software;
use crate::script::{JobSpec, NamedPaths};

/// The environment variable naming the job file.
pub const JOB_ENV: &str = "FLOWRUN_JOB";

const PYTHON_READER: &str = include_str!("flowrun.py");
const R_READER: &str = include_str!("flowrun.R");

/// `.flowrun/` under the working directory, absolute, so a script that changes directory
/// still finds its job.
fn state_dir() -> PathBuf {
    std::env::current_dir()
        .unwrap_or_default()
        .join(crate::STATE_DIR)
}

fn names(files: &NamedPaths) -> serde_json::Map<String, serde_json::Value> {
    let mut named = serde_json::Map::new();
    for (name, path) in files {
        if let Some(name) = name {
            let list = named
                .entry(name.clone())
                .or_insert_with(|| serde_json::Value::Array(Vec::new()));
            if let serde_json::Value::Array(a) = list {
                a.push(path.clone().into());
            }
        }
    }
    named
}

/// The job as its script reads it (the schema `docs/scripts.md` publishes).
pub fn job_json(spec: &JobSpec, label: &str) -> serde_json::Value {
    let paths =
        |files: &NamedPaths| -> Vec<String> { files.iter().map(|(_, p)| p.clone()).collect() };
    serde_json::json!({
        "flowrun_job": 1,
        "rule": spec.rule,
        "label": label,
        "input": paths(&spec.input),
        "output": paths(&spec.output),
        "log": paths(&spec.log),
        "named": {
            "input": names(&spec.input),
            "output": names(&spec.output),
            "log": names(&spec.log),
        },
        "wildcards": spec
            .wildcards
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::from(v.clone())))
            .collect::<serde_json::Map<_, _>>(),
        "params": spec.params,
        "threads": spec.threads,
        "resources": spec.resources,
    })
}

/// Writes `bytes` to `path` unless it already holds them.
fn write_if_changed(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if std::fs::read(path).is_ok_and(|old| old == bytes) {
        return Ok(());
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    crate::native::atomic::write_atomic(path, bytes)
}

/// Writes the job file of `label` and the readers; returns the environment that runs the
/// job's script: `FLOWRUN_JOB`, `FLOWRUN_THREADS`, and for Python and R where their reader is.
pub fn environment(
    spec: &JobSpec,
    label: &str,
    language: Language,
    software: &Software,
) -> std::io::Result<Vec<(String, String)>> {
    let state = state_dir();
    let job_file = state.join("jobs").join(format!(
        "{:032x}.json",
        crate::graph::filestate::hash_str(label)
    ));
    let json = serde_json::to_vec_pretty(&job_json(spec, label)).map_err(std::io::Error::other)?;
    write_if_changed(&job_file, &json)?;
    let mut env = vec![
        (JOB_ENV.to_string(), job_file.to_string_lossy().into_owned()),
        ("FLOWRUN_THREADS".to_string(), spec.threads.to_string()),
    ];
    let lib = state.join("lib");
    match language {
        Language::Python => {
            let reader = lib.join("python").join("flowrun.py");
            write_if_changed(&reader, PYTHON_READER.as_bytes())?;
            let dir = lib.join("python").to_string_lossy().into_owned();
            let path = match std::env::var("PYTHONPATH") {
                Ok(old) if !old.is_empty() => format!("{dir}:{old}"),
                _ => dir,
            };
            env.push(("PYTHONPATH".to_string(), path));
        }
        Language::R => {
            let reader = lib.join("R").join("flowrun.R");
            write_if_changed(&reader, R_READER.as_bytes())?;
            // The user's own profile still runs, from the reader.
            if let Ok(own) = std::env::var("R_PROFILE_USER") {
                env.push(("FLOWRUN_USER_RPROFILE".to_string(), own));
            }
            env.push((
                "R_PROFILE_USER".to_string(),
                reader.to_string_lossy().into_owned(),
            ));
        }
        Language::Bash | Language::Rhai => {}
    }
    env.extend(super::software::job_vars(software));
    Ok(env)
}

/// Runs `script` for the job of `ctx`.
pub fn run(ctx: &JobContext<'_>, key: &str, script: &ScriptDecl) -> Result<(), Failure> {
    let spec = ctx.spec();
    let Some(program) = script.language.interpreter() else {
        return ctx
            .runtime
            .run_script(Path::new(&script.path), &spec)
            .map_err(Failure::Script);
    };
    let env = environment(&spec, key, script.language, &ctx.rule.software)
        .map_err(|e| Failure::Setup(format!("cannot write the job file for `{key}`: {e}")))?;
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    if ctx.verbose {
        eprintln!("    {program} {}", script.path);
    }
    // Close-on-exec, so that only this job's process keeps the pipe open (other jobs' children
    // started meanwhile do not inherit it).
    let (reading, writing) = nix::unistd::pipe2(OFlag::O_CLOEXEC)
        .map_err(|e| Failure::Setup(format!("cannot make a pipe: {e}")))?;
    let (tee, mut ends) = Tee::new(ctx.job.logs.first().map(|l| l.path.as_str()));
    tee.forward(std::fs::File::from(reading), &mut ends);
    drop(tee);
    let started = Spawn::new(
        program,
        &[script.path.as_str()],
        &env,
        Output::File(writing),
        Signal::SIGKILL,
    )
    .and_then(|s| s.start())
    .map_err(|e| {
        Failure::Setup(format!(
            "cannot start `{program}` for `{}`: {e}",
            script.path
        ))
    });
    let status = started.and_then(|pid| ctx.shell.supervise(key, pid, &ctx.usage));
    let tail = ends.finish(Duration::from_secs(2));
    let status = status?;
    if status.success() {
        return Ok(());
    }
    let how = super::shell::describe_status(status);
    let tail: Vec<&str> = tail.iter().map(String::as_str).collect();
    let said = match where_it_stopped(script, &tail) {
        Some((Some(line), msg)) => format!(" at line {line}: {msg}"),
        Some((None, msg)) => format!(": {msg}"),
        None => String::new(),
    };
    Err(Failure::Command(format!(
        "script `{}` failed{said} ({program} {how})",
        script.path
    )))
}

/// Where the interpreter says the script stopped, from its last lines of output: the line (if
/// it gave one) and its message.
fn where_it_stopped(script: &ScriptDecl, tail: &[&str]) -> Option<(Option<u32>, String)> {
    let path = script.path.as_str();
    match script.language {
        Language::Python => {
            // The innermost frame in the script; the message is the traceback's last line.
            let line = tail.iter().rev().find_map(|l| {
                let rest = l.trim_start().strip_prefix("File \"")?;
                let (file, rest) = rest.split_once("\", line ")?;
                let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                (file == path || file.ends_with(&format!("/{path}")))
                    .then(|| digits.parse().ok())
                    .flatten()
            });
            let message = tail
                .iter()
                .rev()
                .find(|l| !l.is_empty() && !l.starts_with(' '))?;
            Some((line, message.to_string()))
        }
        Language::Bash => tail.iter().rev().find_map(|l| {
            let rest = l.strip_prefix(path)?.strip_prefix(": line ")?;
            let (line, message) = rest.split_once(": ")?;
            Some((line.parse().ok(), message.to_string()))
        }),
        Language::R => {
            let at = tail.iter().rposition(|l| l.starts_with("Error"))?;
            let mut message = tail[at].trim_end().to_string();
            // R continues a long message on an indented line.
            if let Some(next) = tail.get(at + 1).filter(|l| l.starts_with("  ")) {
                message.push(' ');
                message.push_str(next.trim());
            }
            Some((None, message))
        }
        Language::Rhai => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decl(path: &str, language: Language) -> ScriptDecl {
        ScriptDecl {
            path: path.into(),
            language,
        }
    }

    #[test]
    fn python_tracebacks_give_the_innermost_line_in_the_script() {
        let tail = [
            "Traceback (most recent call last):",
            "  File \"/w/scripts/x.py\", line 7, in <module>",
            "    main()",
            "  File \"/w/scripts/x.py\", line 4, in main",
            "    1 / 0",
            "  File \"/usr/lib/python3/y.py\", line 99, in z",
            "ZeroDivisionError: division by zero",
        ];
        assert_eq!(
            where_it_stopped(&decl("scripts/x.py", Language::Python), &tail),
            Some((Some(4), "ZeroDivisionError: division by zero".into()))
        );
    }

    #[test]
    fn bash_and_r_errors() {
        let bash = ["ok", "scripts/x.sh: line 3: nope: command not found"];
        assert_eq!(
            where_it_stopped(&decl("scripts/x.sh", Language::Bash), &bash),
            Some((Some(3), "nope: command not found".into()))
        );
        let r = ["Error in f() : ", "  boom", "Execution halted"];
        assert_eq!(
            where_it_stopped(&decl("x.R", Language::R), &r),
            Some((None, "Error in f() : boom".into()))
        );
        assert_eq!(where_it_stopped(&decl("x.R", Language::R), &["fine"]), None);
    }

    #[test]
    fn the_job_file_lists_paths_and_their_names() {
        let spec = JobSpec {
            rule: "plot".into(),
            input: vec![
                (Some("table".into()), "a.csv".into()),
                (None, "b.csv".into()),
            ],
            output: vec![(None, "p.png".into())],
            log: Vec::new(),
            wildcards: Default::default(),
            params: serde_json::Map::new(),
            threads: 2,
            resources: Default::default(),
            attempt: 1,
        };
        let j = job_json(&spec, "plot");
        assert_eq!(j["input"], serde_json::json!(["a.csv", "b.csv"]));
        assert_eq!(j["named"]["input"], serde_json::json!({"table": ["a.csv"]}));
        assert_eq!(j["threads"], 2);
        assert_eq!(j["flowrun_job"], 1);
    }
}
