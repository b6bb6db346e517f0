//! Software environments: made once, in a cache shared by every workflow, before the first job
//! that needs them; a job then starts with the environment's `bin/` first on its `PATH` and
//! `VIRTUAL_ENV` set, exactly what activating it would do, without an activation shell.
//!
//! A Python environment is a venv made from the rule's requirements file, with `uv` when it is
//! on `PATH` (or named by `FLOWRUN_UV`), else with `python3 -m venv` and `pip`. It lives in
//! `$FLOWRUN_ENVS`, else `$XDG_CACHE_HOME/flowrun/envs`, else `~/.cache/flowrun/envs`, under
//! the name of its file's content hash ([`PythonEnv::name`]); a `.flowrun-ready` file inside
//! marks it complete, so an interrupted creation is started over, and an existing one is used
//! as it is: no network after it was made. A lock file beside it keeps two flowruns (two
//! workflows) from making the same environment at once.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;

use nix::fcntl::{Flock, FlockArg};

use crate::rules::software::{PythonEnv, Software};

/// Why an environment could not be made.
#[derive(Debug, thiserror::Error)]
#[error("cannot create software environment `{name}` from `{file}`: {why}")]
pub struct CreateError {
    pub name: String,
    pub file: String,
    pub why: String,
}

/// Where environments are kept.
pub fn envs_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("FLOWRUN_ENVS").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    cache.join("flowrun").join("envs")
}

fn env_path(env: &PythonEnv) -> PathBuf {
    envs_dir().join(env.name())
}

const READY: &str = ".flowrun-ready";

/// Whether the environment exists, complete.
pub fn is_ready(env: &PythonEnv) -> bool {
    env_path(env).join(READY).is_file()
}

/// The variables a job of a rule with `sw` starts with: its `env`, and `PATH` (and
/// `VIRTUAL_ENV`) for its software. Empty for a rule without any.
pub fn job_vars(sw: &Software) -> Vec<(String, String)> {
    let mut vars: Vec<(String, String)> =
        sw.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    let mut front: Vec<String> = Vec::new();
    if let Some(py) = &sw.python {
        let venv = env_path(py);
        front.push(venv.join("bin").to_string_lossy().into_owned());
        vars.push(("VIRTUAL_ENV".into(), venv.to_string_lossy().into_owned()));
    }
    let cwd = std::env::current_dir().unwrap_or_default();
    front.extend(
        sw.path
            .iter()
            .map(|p| cwd.join(p).to_string_lossy().into_owned()),
    );
    if !front.is_empty() {
        let path = sw
            .env
            .get("PATH")
            .cloned()
            .or_else(|| std::env::var("PATH").ok())
            .unwrap_or_default();
        front.push(path);
        vars.retain(|(k, _)| k != "PATH");
        vars.push(("PATH".into(), front.join(":")));
    }
    vars
}

/// Runs `command`, turning a failure into the tool's last words.
fn run(mut command: Command, what: &str) -> Result<(), String> {
    let out = command
        .output()
        .map_err(|e| format!("cannot start {what}: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let tail: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    let tail = tail[tail.len().saturating_sub(6)..].join("\n");
    Err(format!(
        "{what} {}:\n{tail}",
        super::shell::describe_status(out.status)
    ))
}

fn uv() -> Option<PathBuf> {
    if let Some(uv) = std::env::var_os("FLOWRUN_UV").filter(|u| !u.is_empty()) {
        return Some(PathBuf::from(uv));
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join("uv"))
        .find(|p| p.is_file())
}

/// Makes the venv of `env` at `dir`.
fn build(env: &PythonEnv, dir: &Path) -> Result<(), String> {
    let python = dir.join("bin").join("python");
    match uv() {
        Some(uv) => {
            let mut venv = Command::new(&uv);
            venv.arg("venv").arg("--quiet").arg(dir);
            run(venv, "`uv venv`")?;
            let mut install = Command::new(&uv);
            install
                .args(["pip", "install", "--quiet", "--python"])
                .arg(&python)
                .arg("-r")
                .arg(&env.file);
            run(install, "`uv pip install`")
        }
        None => {
            let mut venv = Command::new("python3");
            venv.args(["-m", "venv"]).arg(dir);
            run(venv, "`python3 -m venv`")?;
            let mut install = Command::new(&python);
            install
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                    "-r",
                ])
                .arg(&env.file);
            run(install, "`pip install`")
        }
    }
}

/// Makes `env` unless it exists; says so on stderr when it does make it.
pub fn create(env: &PythonEnv) -> Result<(), CreateError> {
    let fail = |why: String| CreateError {
        name: env.name(),
        file: env.file.clone(),
        why,
    };
    let dir = env_path(env);
    let root = envs_dir();
    std::fs::create_dir_all(&root).map_err(|e| fail(format!("`{}`: {e}", root.display())))?;
    let lock_file =
        File::create(root.join(format!("{}.lock", env.name()))).map_err(|e| fail(e.to_string()))?;
    // Held until this function returns: another flowrun making the same environment waits.
    let _lock = Flock::lock(lock_file, FlockArg::LockExclusive)
        .map_err(|(_, e)| fail(format!("cannot lock: {e}")))?;
    if is_ready(env) {
        return Ok(());
    }
    eprintln!(
        "Creating software environment {} from {} in {}",
        env.name(),
        env.file,
        dir.display()
    );
    if dir.exists() {
        // Left half-made by an interrupted creation.
        std::fs::remove_dir_all(&dir).map_err(|e| fail(e.to_string()))?;
    }
    if let Err(why) = build(env, &dir) {
        let _ = std::fs::remove_dir_all(&dir);
        return Err(fail(why));
    }
    File::create(dir.join(READY))
        .map(drop)
        .map_err(|e| fail(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_finds_its_environment_first_on_its_path() {
        let sw = Software {
            env: [("GREETING".to_string(), "hi".to_string())].into(),
            python: Some(PythonEnv {
                file: "r.txt".into(),
                hash: 7 << 64,
            }),
            path: vec!["tools/bin".into()],
        };
        let vars = job_vars(&sw);
        let get = |k: &str| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        assert_eq!(get("GREETING").as_deref(), Some("hi"));
        let path = get("PATH").unwrap();
        let parts: Vec<&str> = path.split(':').collect();
        assert!(parts[0].ends_with("/python-0000000000000007/bin"), "{path}");
        assert!(parts[1].ends_with("/tools/bin"), "{path}");
        assert!(get("VIRTUAL_ENV")
            .unwrap()
            .ends_with("python-0000000000000007"));
        assert!(job_vars(&Software::default()).is_empty());
    }
}
