//! Running shell commands as supervised processes.
//!
//! Each command runs in its own process group under `bash` strict mode (`set -euo pipefail`, as
//! Snakemake does), so an interrupt can signal the whole tree it started and nothing is left
//! behind; it is started by [`super::spawn`], which keeps flowrun's memory out of the way of a
//! short command. Commands too long for one argument (Linux caps it at 128 KiB) are written to a
//! script file under `.flowrun/scripts/` and run from there.

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

use super::spawn::{Output, Spawn};
use super::Failure;
use crate::usage::Meter;

/// The longest command passed as an argument; longer ones go through a script file.
const MAX_INLINE: usize = 100 * 1024;

/// Process groups of running commands, by job key, so an interrupt can reach them.
///
/// With a [`GroupRecord`] (the run's lock file), the list is also written there, so that if
/// flowrun itself is killed the next run can stop the groups it left behind.
#[derive(Clone, Default)]
pub struct ChildRegistry {
    groups: Arc<Mutex<HashMap<String, i32>>>,
    record: Option<Arc<dyn GroupRecord>>,
}

/// Somewhere the running process groups are kept, outside this process: the run lock, which
/// a later run reads to stop what a killed flowrun left behind.
pub trait GroupRecord: Send + Sync {
    /// Replaces the recorded list with `groups`.
    fn record_groups(&self, groups: &[i32]);
}

impl ChildRegistry {
    /// A registry that records running process groups in `record`.
    pub fn recorded(record: Arc<dyn GroupRecord>) -> Self {
        Self {
            groups: Arc::default(),
            record: Some(record),
        }
    }

    fn update(&self, change: impl FnOnce(&mut HashMap<String, i32>)) {
        if let Ok(mut m) = self.groups.lock() {
            change(&mut m);
            if let Some(lock) = &self.record {
                let mut groups: Vec<i32> = m.values().copied().collect();
                groups.sort_unstable();
                lock.record_groups(&groups);
            }
        }
    }

    pub(crate) fn add(&self, key: &str, pid: i32) {
        self.update(|m| {
            m.insert(key.to_string(), pid);
        });
    }

    pub(crate) fn remove(&self, key: &str) {
        self.update(|m| {
            m.remove(key);
        });
    }

    /// Sends `sig` to every running process group.
    pub fn signal_all(&self, sig: Signal) {
        if let Ok(m) = self.groups.lock() {
            for pid in m.values() {
                let _ = killpg(Pid::from_raw(*pid), sig);
            }
        }
    }

    /// Sends `sig` to the process groups of job `key`: its command, or its worker processes
    /// (`key#0`, `key#1`, ...). Returns how many groups it reached.
    pub fn signal_job(&self, key: &str, sig: Signal) -> usize {
        let Ok(m) = self.groups.lock() else {
            return 0;
        };
        let mut n = 0;
        for (k, pid) in m.iter() {
            let own = k == key
                || k.strip_prefix(key)
                    .is_some_and(|rest| rest.starts_with('#'));
            if own {
                let _ = killpg(Pid::from_raw(*pid), sig);
                n += 1;
            }
        }
        n
    }

    /// Whether no command is running.
    pub fn is_empty(&self) -> bool {
        self.groups.lock().map(|m| m.is_empty()).unwrap_or(true)
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

/// Makes a child die with flowrun: if flowrun is killed (even with SIGKILL), the kernel sends
/// the child `signal` instead of leaving it running as an orphan that keeps writing outputs.
/// For the processes started once per job or pool (workers, MPI launchers, async commands);
/// shell commands, started by the thousand, get the same from [`super::spawn`] without `fork`.
pub(crate) fn die_with_parent(command: &mut Command, signal: Signal) {
    // SAFETY: the closure only calls prctl, which is async-signal-safe.
    unsafe {
        command
            .pre_exec(move || nix::sys::prctl::set_pdeathsig(signal).map_err(std::io::Error::from));
    }
}

/// How shell commands are started.
#[derive(Clone)]
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
            format!("killed by signal {sig} ({name}), exit status {}", 128 + sig)
        }
        _ => "ended abnormally".to_string(),
    }
}

/// Words bash gives a meaning of its own as the first word of a command: its builtins and
/// keywords (`compgen -b`, `compgen -k`). A command starting with one of them runs in the shell.
const SHELL_WORDS: &[&str] = &[
    ".",
    ":",
    "[",
    "alias",
    "bg",
    "bind",
    "break",
    "builtin",
    "caller",
    "cd",
    "command",
    "compgen",
    "complete",
    "compopt",
    "continue",
    "declare",
    "dirs",
    "disown",
    "echo",
    "enable",
    "eval",
    "exec",
    "exit",
    "export",
    "false",
    "fc",
    "fg",
    "getopts",
    "hash",
    "help",
    "history",
    "jobs",
    "kill",
    "let",
    "local",
    "logout",
    "mapfile",
    "popd",
    "printf",
    "pushd",
    "pwd",
    "read",
    "readarray",
    "readonly",
    "return",
    "set",
    "shift",
    "shopt",
    "source",
    "suspend",
    "test",
    "times",
    "trap",
    "true",
    "type",
    "typeset",
    "ulimit",
    "umask",
    "unalias",
    "unset",
    "wait",
    "if",
    "then",
    "else",
    "elif",
    "fi",
    "case",
    "esac",
    "for",
    "select",
    "while",
    "until",
    "do",
    "done",
    "in",
    "function",
    "time",
    "coproc",
];

/// The words of a command that needs no shell, as GNU Make decides: nothing but plain words
/// (letters, digits and `-_./,:+=@%`) separated by spaces, the first of them a program rather
/// than a shell builtin, keyword or variable assignment. Such a command means the same with or
/// without `bash -c "set -euo pipefail; ..."`, and starting it directly saves a shell per job.
pub(crate) fn plain_words(cmd: &str) -> Option<Vec<&str>> {
    let plain = cmd
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b" -_./,:+=@%".contains(&b));
    if !plain {
        return None;
    }
    let words: Vec<&str> = cmd.split(' ').filter(|w| !w.is_empty()).collect();
    let first = *words.first()?;
    if first.contains('=') || SHELL_WORDS.contains(&first) {
        return None;
    }
    Some(words)
}

impl Shell {
    /// Where a job's output goes: appended to its log (retries add to it), else flowrun's
    /// standard error.
    fn output(log: Option<&str>) -> Result<Output, Failure> {
        let Some(path) = log else {
            return Ok(Output::Stderr);
        };
        let p = std::path::Path::new(path);
        if let Some(parent) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
            let _ = std::fs::create_dir_all(parent);
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .map_err(|e| Failure::Setup(format!("cannot open log `{path}`: {e}")))?;
        Ok(Output::File(file.into()))
    }

    /// Waits for the started process `pid` of job `key` (its group reachable by an interrupt
    /// meanwhile), reaps it and adds its cost to `usage`.
    pub(crate) fn supervise(
        &self,
        key: &str,
        pid: Pid,
        usage: &Meter,
    ) -> Result<std::process::ExitStatus, Failure> {
        self.registry.add(key, pid.as_raw());
        if crate::interrupt::requested() {
            let _ = killpg(pid, Signal::SIGTERM);
        }
        let reaped = crate::usage::reap(pid);
        self.registry.remove(key);
        let (status, cost) =
            reaped.map_err(|e| Failure::Setup(format!("waiting for the process: {e}")))?;
        usage.add(cost);
        Ok(status)
    }

    /// Runs `cmd` for job `key`, output to `log` if given (else to flowrun's stderr), with
    /// extra environment variables `env`; what the command cost is added to `usage`.
    pub fn run(
        &self,
        key: &str,
        cmd: &str,
        log: Option<&str>,
        threads: u32,
        env: &[(&str, &str)],
        usage: &Meter,
    ) -> Result<(), Failure> {
        let bash = std::path::Path::new("/bin/bash").exists();
        let shell = if bash { "/bin/bash" } else { "/bin/sh" };
        let prelude = if bash {
            "set -euo pipefail; "
        } else {
            "set -eu; "
        };
        let threads = threads.to_string();
        let vars: Vec<(&str, &str)> = std::iter::once(("FLOWRUN_THREADS", threads.as_str()))
            .chain(env.iter().copied())
            .collect();
        let start = |program: &str, args: &[&str]| -> Result<std::io::Result<Pid>, Failure> {
            let output = Self::output(log)?;
            Ok(Spawn::new(program, args, &vars, output, Signal::SIGKILL).and_then(|s| s.start()))
        };
        let direct = if cmd.len() <= MAX_INLINE {
            plain_words(cmd)
        } else {
            None
        };
        // Not found, not executable, a script without `#!`: the shell handles it (or says
        // "command not found", status 127) exactly as it would have.
        let mut pid = None;
        if let Some(words) = direct {
            pid = start(words[0], &words[1..])?.ok();
        }
        let pid = match pid {
            Some(pid) => pid,
            None => {
                let script;
                let args = if cmd.len() > MAX_INLINE {
                    std::fs::create_dir_all(&self.scripts_dir)
                        .map_err(|e| Failure::Setup(e.to_string()))?;
                    let file = self.scripts_dir.join(format!(
                        "{:032x}.sh",
                        crate::graph::filestate::hash_str(cmd)
                    ));
                    std::fs::write(&file, format!("{prelude}\n{cmd}\n")).map_err(|e| {
                        Failure::Setup(format!("cannot write `{}`: {e}", file.display()))
                    })?;
                    script = file.to_string_lossy().into_owned();
                    vec![script.as_str()]
                } else {
                    script = format!("{prelude}{cmd}");
                    vec!["-c", script.as_str()]
                };
                start(shell, &args)?
                    .map_err(|e| Failure::Setup(format!("cannot start `{shell}`: {e}")))?
            }
        };
        let status = self.supervise(key, pid, usage)?;
        if status.success() {
            Ok(())
        } else {
            let how = describe_status(status);
            let verb = if how.starts_with("killed") {
                "was "
            } else {
                ""
            };
            Err(Failure::Command(format!("the command {verb}{how}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::plain_words;

    #[test]
    fn only_plain_commands_skip_the_shell() {
        assert_eq!(
            plain_words("cp  data/a.txt out/a.txt"),
            Some(vec!["cp", "data/a.txt", "out/a.txt"])
        );
        assert_eq!(
            plain_words("sort -k1,1n -o x=y.txt in@2%.txt"),
            Some(vec!["sort", "-k1,1n", "-o", "x=y.txt", "in@2%.txt"])
        );
        for shell in [
            "echo hi",
            "cd dir",
            "exit 3",
            "true",
            "X=1 cmd",
            "cat a > b",
            "cat a | wc -l",
            "ls *.txt",
            "cp 'a b' c",
            "cp $HOME/a b",
            "a; b",
            "a && b",
            "cp ~/a b",
            "cmd # comment",
            "cp a\nb",
            "cp\ta b",
            "",
            "   ",
        ] {
            assert_eq!(plain_words(shell), None, "{shell:?}");
        }
    }
}
