//! Running shell commands as supervised processes.
//!
//! Each command runs in its own process group under `bash` strict mode (`set -euo pipefail`, as
//! Snakemake does), so an interrupt can signal the whole tree it started and nothing is left
//! behind. Commands too long for one argument (Linux caps it at 128 KiB) are written to a
//! script file under `.flowrun/scripts/` and run from there.

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::os::fd::AsFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

use super::Failure;

/// The longest command passed as an argument; longer ones go through a script file.
const MAX_INLINE: usize = 100 * 1024;

/// Process groups of running commands, by job key, so an interrupt can reach them.
#[derive(Clone, Default)]
pub struct ChildRegistry(Arc<Mutex<HashMap<String, i32>>>);

impl ChildRegistry {
    pub(crate) fn add(&self, key: &str, pid: i32) {
        if let Ok(mut m) = self.0.lock() {
            m.insert(key.to_string(), pid);
        }
    }

    pub(crate) fn remove(&self, key: &str) {
        if let Ok(mut m) = self.0.lock() {
            m.remove(key);
        }
    }

    /// Sends `sig` to every running process group.
    pub fn signal_all(&self, sig: Signal) {
        if let Ok(m) = self.0.lock() {
            for pid in m.values() {
                let _ = killpg(Pid::from_raw(*pid), sig);
            }
        }
    }

    /// Whether no command is running.
    pub fn is_empty(&self) -> bool {
        self.0.lock().map(|m| m.is_empty()).unwrap_or(true)
    }

    /// Interrupt protocol: SIGTERM every group, wait up to `grace`, then SIGKILL what is left.
    pub fn terminate_all(&self, grace: Duration) {
        self.signal_all(Signal::SIGTERM);
        let start = Instant::now();
        while !self.is_empty() && start.elapsed() < grace {
            if crate::interrupt::count() > 1 {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.signal_all(Signal::SIGKILL);
    }
}

/// How shell commands are started.
pub struct Shell {
    pub registry: ChildRegistry,
    /// Where long commands are written.
    pub scripts_dir: PathBuf,
    /// How MPI programs are started (the `mpi` model).
    pub mpi: super::mpi::Launcher,
}

/// Says how a process ended, in words (with the 128+n convention for signals).
pub(crate) fn describe_status(status: std::process::ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(sig)) => {
            let name = Signal::try_from(sig).map(|s| s.as_str()).unwrap_or("?");
            format!(
                "the command was killed by signal {sig} ({name}), exit status {}",
                128 + sig
            )
        }
        _ => "ended abnormally".to_string(),
    }
}

impl Shell {
    /// Runs `cmd` for job `key`, output to `log` if given (else to flowrun's stderr), with
    /// extra environment variables `env`.
    pub fn run(
        &self,
        key: &str,
        cmd: &str,
        log: Option<&str>,
        threads: u32,
        env: &[(&str, &str)],
    ) -> Result<(), Failure> {
        let bash = std::path::Path::new("/bin/bash").exists();
        let shell = if bash { "/bin/bash" } else { "/bin/sh" };
        let prelude = if bash {
            "set -euo pipefail; "
        } else {
            "set -eu; "
        };
        let mut command = Command::new(shell);
        if cmd.len() > MAX_INLINE {
            std::fs::create_dir_all(&self.scripts_dir)
                .map_err(|e| Failure::Setup(e.to_string()))?;
            let file = self
                .scripts_dir
                .join(format!("{:032x}.sh", crate::filestate::hash_str(cmd)));
            std::fs::write(&file, format!("{prelude}\n{cmd}\n"))
                .map_err(|e| Failure::Setup(format!("cannot write `{}`: {e}", file.display())))?;
            command.arg(file);
        } else {
            command.arg("-c").arg(format!("{prelude}{cmd}"));
        }
        let (out, err) = match log {
            Some(path) => {
                let p = std::path::Path::new(path);
                if let Some(parent) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
                    let _ = std::fs::create_dir_all(parent);
                }
                let f = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                    .map_err(|e| Failure::Setup(format!("cannot open log `{path}`: {e}")))?;
                let f2 = f.try_clone().map_err(|e| Failure::Setup(e.to_string()))?;
                (Stdio::from(f), Stdio::from(f2))
            }
            None => {
                let fd = std::io::stderr()
                    .as_fd()
                    .try_clone_to_owned()
                    .map_err(|e| Failure::Setup(e.to_string()))?;
                (Stdio::from(fd), Stdio::inherit())
            }
        };
        command
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .env("FLOWRUN_THREADS", threads.to_string())
            .envs(env.iter().copied())
            .process_group(0);
        let mut child = command
            .spawn()
            .map_err(|e| Failure::Setup(format!("cannot start `{shell}`: {e}")))?;
        let pid = child.id() as i32;
        self.registry.add(key, pid);
        if crate::interrupt::requested() {
            let _ = killpg(Pid::from_raw(pid), Signal::SIGTERM);
        }
        let status = child.wait();
        self.registry.remove(key);
        let status = status.map_err(|e| Failure::Setup(format!("waiting for the command: {e}")))?;
        if status.success() {
            Ok(())
        } else {
            Err(Failure::Command(format!(
                "the command {}",
                describe_status(status)
            )))
        }
    }
}
