//! Test harness: a temp working directory with files, and the real `flowrun` binary run in it
//! with a time bound.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

/// A temporary project directory.
pub struct Project {
    pub dir: tempfile::TempDir,
}

/// What a flowrun run produced.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// The run a finished process's output describes (code -1 when a signal ended it).
    pub fn from_output(out: Output) -> Self {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Asserts the exit code, showing the output on failure.
    pub fn code(self, code: i32) -> Self {
        assert_eq!(
            self.code, code,
            "unexpected exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        self
    }

    /// Asserts stderr contains `text`.
    pub fn stderr_has(self, text: &str) -> Self {
        self.check_stream("stderr", text, true)
    }

    /// Asserts stdout contains `text`.
    pub fn stdout_has(self, text: &str) -> Self {
        self.check_stream("stdout", text, true)
    }

    /// Asserts stderr does not contain `text`.
    pub fn stderr_lacks(self, text: &str) -> Self {
        self.check_stream("stderr", text, false)
    }

    /// Asserts stdout does not contain `text`.
    pub fn stdout_lacks(self, text: &str) -> Self {
        self.check_stream("stdout", text, false)
    }

    /// Asserts that the stream named `stream` contains `text` (`present`) or does not.
    fn check_stream(self, stream: &str, text: &str, present: bool) -> Self {
        let out = if stream == "stdout" {
            &self.stdout
        } else {
            &self.stderr
        };
        assert!(
            out.contains(text) == present,
            "{stream} {} {text:?}\n--- {stream}\n{out}",
            if present { "lacks" } else { "has" }
        );
        self
    }

    /// Asserts the run was a clean failure: exit code 2, an `error:` on stderr, no panic.
    pub fn workflow_error(self) -> Self {
        let run = self.code(2).stderr_has("error: ");
        assert!(
            !run.stderr.contains("panicked") && !run.stderr.contains("RUST_BACKTRACE"),
            "flowrun panicked\n--- stderr\n{}",
            run.stderr
        );
        run
    }

    /// The jobs that ran, sorted (for runs whose order is not fixed).
    pub fn ran_sorted(&self) -> Vec<String> {
        let mut r = self.ran();
        r.sort();
        r
    }

    /// The jobs a dry run would run ("job X" lines on stdout), in order.
    pub fn planned(&self) -> Vec<String> {
        self.stdout
            .lines()
            .filter_map(|l| l.strip_prefix("job "))
            .map(str::to_string)
            .collect()
    }

    /// The reasons a dry run gives for `job`.
    pub fn reasons(&self, job: &str) -> Vec<String> {
        let head = format!("job {job}");
        let mut lines = self.stdout.lines().skip_while(|l| *l != head);
        assert!(
            lines.next().is_some(),
            "no {head:?} in the plan\n--- stdout\n{}",
            self.stdout
        );
        lines
            .take_while(|l| l.starts_with("    "))
            .filter_map(|l| l.trim_start().strip_prefix("reason: "))
            .map(str::to_string)
            .collect()
    }

    /// The jobs that ran ("Running" lines), in order.
    pub fn ran(&self) -> Vec<String> {
        self.stderr
            .lines()
            .filter_map(|l| l.trim_start().strip_prefix("Running "))
            .map(|l| l.split_once("] ").map_or(l, |(_, j)| j).to_string())
            .collect()
    }
}

/// The flowrun binary under test.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_flowrun"))
}

/// `PATH` with the directory of the binary under test first, for shells that call `flowrun`.
pub fn path_with_bin() -> std::ffi::OsString {
    let dir = bin().parent().unwrap().to_path_buf();
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::join_paths(std::iter::once(dir).chain(std::env::split_paths(&path))).unwrap()
}

impl Project {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a file (creating directories).
    pub fn file(&self, rel: &str, text: &str) -> &Self {
        let p = self.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
        self
    }

    /// The events of a JSON Lines trace (`--trace`) written at `rel`.
    pub fn events(&self, rel: &str) -> Vec<serde_json::Value> {
        self.read(rel)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path().join(rel))
            .unwrap_or_else(|e| panic!("reading {rel}: {e}"))
    }

    pub fn exists(&self, rel: &str) -> bool {
        self.path().join(rel).exists()
    }

    /// Removes a file.
    pub fn remove(&self, rel: &str) -> &Self {
        std::fs::remove_file(self.path().join(rel))
            .unwrap_or_else(|e| panic!("removing {rel}: {e}"));
        self
    }

    /// Sets a file's modification time to now (like `touch`), content unchanged.
    pub fn touch(&self, rel: &str) -> &Self {
        self.set_mtime(rel, std::time::SystemTime::now())
    }

    /// Moves a file's modification time `secs` seconds into the past.
    pub fn age(&self, rel: &str, secs: u64) -> &Self {
        let p = self.path().join(rel);
        let old = std::fs::metadata(&p).and_then(|m| m.modified()).unwrap();
        self.set_mtime(rel, old - Duration::from_secs(secs))
    }

    /// Sets a file's modification time.
    pub fn set_mtime(&self, rel: &str, time: std::time::SystemTime) -> &Self {
        let f = std::fs::File::options()
            .append(true)
            .open(self.path().join(rel))
            .unwrap_or_else(|e| panic!("opening {rel}: {e}"));
        f.set_modified(time).unwrap();
        self
    }

    /// The modification time of a file.
    pub fn mtime(&self, rel: &str) -> std::time::SystemTime {
        std::fs::metadata(self.path().join(rel))
            .and_then(|m| m.modified())
            .unwrap_or_else(|e| panic!("stat {rel}: {e}"))
    }

    /// Starts flowrun in the background; the guard kills it (and the process groups it was
    /// told about) when dropped.
    pub fn spawn(&self, args: &[&str]) -> Background {
        Background::start(self.cmd(args))
    }

    /// Waits until `rel` exists and is not empty (panics after `limit`).
    pub fn wait_for(&self, rel: &str, limit: Duration) {
        wait_until(limit, Duration::from_millis(20), || {
            if std::fs::metadata(self.path().join(rel)).is_ok_and(|m| m.len() > 0) {
                Ok(())
            } else {
                Err(format!("{rel} did not appear within {limit:?}"))
            }
        })
    }

    /// A command for flowrun in this directory. The user's profile is looked for in a
    /// directory that does not exist, so a developer's own `~/.config/flowrun` cannot change
    /// what a test sees.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin());
        c.current_dir(self.path())
            .args(args)
            .env("NO_COLOR", "1")
            .env("XDG_CONFIG_HOME", self.path().join(".no-user-config"));
        c
    }

    /// Runs flowrun with `args` (killed after 120 s, which fails the test).
    pub fn run(&self, args: &[&str]) -> Run {
        run_bounded(self.cmd(args))
    }
}

/// Runs `cmd` with its output captured (killed after 120 s, which fails the test).
pub fn run_bounded(cmd: Command) -> Run {
    Background::start(cmd).finish(Duration::from_secs(120))
}

/// Calls `probe` every `step` until it gives `Ok`; once `limit` has passed, fails with the
/// message of its last `Err`.
pub fn wait_until<T>(
    limit: Duration,
    step: Duration,
    mut probe: impl FnMut() -> Result<T, String>,
) -> T {
    let start = std::time::Instant::now();
    loop {
        match probe() {
            Ok(v) => return v,
            Err(why) => assert!(start.elapsed() < limit, "{why}"),
        }
        std::thread::sleep(step);
    }
}

/// Runs `f` and asserts that it took less than `bound`.
pub fn within<T>(bound: Duration, f: impl FnOnce() -> T) -> T {
    let start = std::time::Instant::now();
    let r = f();
    assert!(start.elapsed() < bound, "took {:?}", start.elapsed());
    r
}

/// Reads a pipe to its end on a thread; the receiver gets the bytes at EOF.
fn drain(mut pipe: impl std::io::Read + Send + 'static) -> std::sync::mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = pipe.read_to_end(&mut buf);
        let _ = tx.send(buf);
    });
    rx
}

/// Waits for a child, killing it (and failing) after `limit`. Its output pipes must close
/// soon after it exits: a pipe held open means a process it started outlived it.
pub fn wait_bounded(mut child: std::process::Child, limit: Duration) -> Output {
    let out = child.stdout.take().map(drain);
    let err = child.stderr.take().map(drain);
    let collect =
        |rx: Option<std::sync::mpsc::Receiver<Vec<u8>>>, what: &str| {
            rx.map(|rx| {
                rx.recv_timeout(Duration::from_secs(10)).unwrap_or_else(|_| {
                panic!("flowrun's {what} stayed open after it exited: a child process survived it")
            })
            })
            .unwrap_or_default()
        };
    let start = std::time::Instant::now();
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Output {
                status,
                stdout: collect(out, "stdout"),
                stderr: collect(err, "stderr"),
            };
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            let stderr = err
                .and_then(|rx| rx.recv_timeout(Duration::from_secs(2)).ok())
                .unwrap_or_default();
            panic!(
                "flowrun did not finish within {limit:?}\n--- stderr\n{}",
                String::from_utf8_lossy(&stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A flowrun running in the background, killed on drop with every process group it names.
pub struct Background {
    child: Option<std::process::Child>,
    /// Process groups to kill on drop (jobs the test learned about).
    pub groups: Vec<i32>,
}

impl Background {
    /// Starts `cmd` with its output captured.
    pub fn start(mut cmd: Command) -> Self {
        let child = cmd
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start flowrun");
        Background {
            child: Some(child),
            groups: Vec::new(),
        }
    }

    /// The flowrun process id.
    pub fn pid(&self) -> i32 {
        self.child.as_ref().map_or(0, |c| c.id() as i32)
    }

    /// Sends a signal to flowrun.
    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid()), sig).unwrap();
    }

    /// Waits for flowrun to end (at most `limit`) and collects its output.
    pub fn finish(mut self, limit: Duration) -> Run {
        let child = self.child.take().expect("running");
        Run::from_output(wait_bounded(child, limit))
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        kill_groups(&self.groups);
    }
}

/// `n` numbered lines: `1\n2\n...`.
pub fn lines(n: usize) -> String {
    (1..=n).map(|i| format!("{i}\n")).collect()
}

/// The process groups flowrun lists in its lock file as running.
pub fn running_groups(p: &Project) -> Vec<i32> {
    std::fs::read_to_string(p.path().join(".flowrun/lock"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.strip_prefix("group ")?.trim().parse().ok())
        .collect()
}

/// Sends SIGKILL to each process group in `groups` (ignoring those already gone).
pub fn kill_groups(groups: &[i32]) {
    for g in groups {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(*g),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

/// The live (not zombie) processes in process group `pgid`, read from /proc.
pub fn live_in_group(pgid: i32) -> Vec<i32> {
    live_stats_in_group(pgid)
        .into_iter()
        .map(|(pid, _)| pid)
        .collect()
}

/// The live (not zombie) processes in process group `pgid`, each with its /proc stat line.
pub fn live_stats_in_group(pgid: i32) -> Vec<(i32, String)> {
    let mut found = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in dir.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // Fields after the command name (which is in parentheses and may hold spaces).
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // fields[0] = state, fields[1] = ppid, fields[2] = pgrp
        if fields.len() > 2 && fields[2] == pgid.to_string() && fields[0] != "Z" {
            found.push((pid, stat));
        }
    }
    found
}

/// The Snakemake of `target/pyenv` (made by `scripts/setup-tests.sh`), or `None` (and a loud
/// message) when it is not installed: twin tests then check flowrun alone.
pub fn snakemake() -> Option<PathBuf> {
    let bin = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/target/pyenv/bin/snakemake"
    ));
    if bin.exists() {
        Some(bin)
    } else {
        eprintln!(
            "!!! SKIPPING the Snakemake twin comparison: {} is missing; run `bash scripts/setup-tests.sh`",
            bin.display()
        );
        None
    }
}

/// Runs Snakemake on `Snakefile` in `dir` with `args` (one core, killed after 120 s), or
/// `None` when it is not installed.
pub fn run_snakemake(dir: &Path, args: &[&str]) -> Option<Run> {
    let mut cmd = Command::new(snakemake()?);
    cmd.current_dir(dir)
        .args(["-c1", "--nocolor"])
        .args(args)
        .env("NO_COLOR", "1");
    Some(run_bounded(cmd))
}

/// Waits up to 3 s for every process of group `pgid` to be gone (a job's command, stopped).
pub fn assert_group_gone(pgid: i32) {
    wait_until(Duration::from_secs(3), Duration::from_millis(20), || {
        let live = live_in_group(pgid);
        if live.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "processes of the job's group {pgid} survived: {live:?}"
            ))
        }
    })
}

/// A project holding the workflow `wf.rhai` with the text `wf`.
pub fn workflow(wf: &str) -> Project {
    let p = Project::new();
    p.file("wf.rhai", wf);
    p
}
