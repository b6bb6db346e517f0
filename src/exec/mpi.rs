//! The `mpi` model, parent side: flowrun starts `<launcher> -n RANKS [launcher args] <flowrun>
//! __mpi <hello file>` and supervises it. The ranks (see [`super::mpi_rank`], built with the
//! `mpi` cargo feature) evaluate the workflow, map their block of items and gather the results
//! on rank 0, which folds them in item order, runs `finish` and writes a status file that this
//! side reads once the launcher has exited.
//!
//! Shell rules with `model: "mpi"` get the launcher prefix (`mpirun -n RANKS [args]`) and the
//! same environment.
//!
//! Nothing hangs: the launcher runs in its own process group (registered for Ctrl-C), is told
//! to die with flowrun (`PR_SET_PDEATHSIG`), gets a bounded time to exit once rank 0 has
//! reported, and every rank still alive when the job ends is killed (ranks write their pids
//! into the job's run directory).

use std::collections::VecDeque;
use std::ops::Range;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use super::tee::Tee;
use super::worker::Hello;
use super::{Failure, JobContext};
use crate::native::atomic::write_atomic;

/// The argument that starts an MPI rank.
pub const RANK_ARG: &str = "__mpi";

/// The default launcher.
pub const DEFAULT_LAUNCHER: &str = "mpirun";

/// Environment variables that choose the launcher when the command line does not.
pub const LAUNCHER_ENV: &str = "FLOWRUN_MPI_LAUNCHER";
pub const ARGS_ENV: &str = "FLOWRUN_MPI_ARGS";

/// How long the launcher may take to exit after rank 0 has reported.
const LINGER: Duration = Duration::from_secs(15);

/// How long interrupted ranks get between SIGTERM and SIGKILL.
const INTERRUPT_GRACE: Duration = Duration::from_secs(5);

/// What to tell users whose flowrun was built without MPI.
pub const NOT_BUILT: &str = "this flowrun was built without MPI support, so the `mpi` model \
cannot run map/reduce rules; install OpenMPI (Debian/Ubuntu: `apt-get install libopenmpi-dev \
openmpi-bin libclang-dev clang`, or run `bash scripts/setup.sh`) and build with `cargo build \
--release --features mpi` (see docs/models/mpi.md)";

/// `flowrun __mpi HELLO`: one MPI rank. Returns the process exit code.
pub fn rank_main() -> u8 {
    let Some(hello) = std::env::args().nth(2) else {
        eprintln!("error: usage: flowrun {RANK_ARG} HELLO_FILE (started by the mpi model)");
        return crate::exit::WORKFLOW_ERROR;
    };
    #[cfg(feature = "mpi")]
    {
        super::mpi_rank::main(&hello)
    }
    #[cfg(not(feature = "mpi"))]
    {
        let _ = hello;
        eprintln!("error: {NOT_BUILT}");
        crate::exit::JOB_FAILED
    }
}

/// How MPI programs are started: `mpirun`, `mpiexec`, `srun` or a path, plus extra arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launcher {
    pub program: String,
    pub args: Vec<String>,
}

impl Default for Launcher {
    fn default() -> Self {
        Self {
            program: DEFAULT_LAUNCHER.to_string(),
            args: Vec::new(),
        }
    }
}

/// Whether an executable called `name` is on `PATH`.
fn on_path(name: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|d| {
            let p = d.join(name);
            p.is_file()
        })
    })
}

impl Launcher {
    /// The launcher from the command line, else `FLOWRUN_MPI_LAUNCHER` / `FLOWRUN_MPI_ARGS`,
    /// else `mpirun` with no extra arguments. `args` is split like a shell would split it.
    pub fn configure(program: Option<&str>, args: Option<&str>) -> Result<Self, String> {
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let program = program
            .map(str::to_string)
            .or_else(|| env(LAUNCHER_ENV))
            .unwrap_or_else(|| DEFAULT_LAUNCHER.to_string());
        if program.trim().is_empty() {
            return Err(
                "`--mpi-launcher` must name a program, e.g. mpirun, mpiexec or srun".into(),
            );
        }
        let args_text = args.map(str::to_string).or_else(|| env(ARGS_ENV));
        let args = match args_text {
            Some(text) => shell_words::split(&text)
                .map_err(|e| format!("`--mpi-args {text}` cannot be split into words: {e}"))?,
            None => Vec::new(),
        };
        Ok(Self { program, args })
    }

    /// The words that start `ranks` copies of a program: `mpirun -n 4 --oversubscribe`.
    pub fn words(&self, ranks: u32) -> Vec<String> {
        let mut words = vec![self.program.clone(), "-n".into(), ranks.to_string()];
        words.extend(self.args.iter().cloned());
        words
    }

    /// The same, quoted for a shell command line.
    pub fn prefix(&self, ranks: u32) -> String {
        shell_words::join(self.words(ranks))
    }

    /// Environment the launcher needs to work out of the box, each only if the user has not
    /// set it: Open MPI refuses to run as root without the first two, refuses more ranks than
    /// cores without the third, and wants ssh even for one machine unless told otherwise.
    /// Other MPI implementations and `srun` ignore these.
    pub fn env(&self) -> Vec<(&'static str, &'static str)> {
        let mut vars = vec![
            ("OMPI_ALLOW_RUN_AS_ROOT", "1"),
            ("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1"),
            ("OMPI_MCA_rmaps_base_oversubscribe", "1"),
            // Open MPI 5 reads its mapping policy from PRRTE.
            ("PRTE_MCA_rmaps_default_mapping_policy", ":oversubscribe"),
        ];
        if !on_path("ssh") && !on_path("rsh") {
            vars.push(("OMPI_MCA_plm_rsh_agent", ""));
        }
        vars.retain(|(k, _)| std::env::var_os(k).is_none());
        vars
    }
}

/// The block of item indices rank `rank` of `size` maps: contiguous, in rank order, sizes
/// differing by at most one (the first `n % size` ranks take one more).
pub fn block(n: usize, size: usize, rank: usize) -> Range<usize> {
    if size == 0 {
        return 0..0;
    }
    let base = n / size;
    let extra = n % size;
    let start = rank * base + rank.min(extra);
    start..start + base + usize::from(rank < extra)
}

/// What rank 0 leaves in the run directory when it is done.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Status {
    pub ok: bool,
    pub message: String,
}

/// What every rank is told, in the hello file.
#[derive(Debug, Serialize, Deserialize)]
pub struct MpiHello {
    /// The same hello a `process` worker gets.
    pub worker: Hello,
    /// flowrun's working directory (ranks change to it).
    pub cwd: PathBuf,
}

/// Files in a job's run directory.
pub fn status_path(run_dir: &Path) -> PathBuf {
    run_dir.join("status.json")
}

pub fn pid_path(run_dir: &Path, rank: i32) -> PathBuf {
    run_dir.join(format!("rank-{rank}.pid"))
}

/// Kills the ranks that wrote pid files and are still running (a launcher that died may
/// leave them behind), checking the pid still belongs to this job's rank.
fn kill_leftover_ranks(run_dir: &Path) {
    let Ok(entries) = std::fs::read_dir(run_dir) else {
        return;
    };
    let marker = run_dir.to_string_lossy().into_owned();
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !(name.starts_with("rank-") && name.ends_with(".pid")) {
            continue;
        }
        let Some(pid) = std::fs::read_to_string(e.path())
            .ok()
            .and_then(|t| t.trim().parse::<i32>().ok())
        else {
            continue;
        };
        let ours = std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|c| String::from_utf8_lossy(&c).contains(&marker))
            .unwrap_or(false);
        if ours {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}

/// Which rank died and how, from the launcher's words (Open MPI's `mpirun`/`mpiexec`, MPICH's
/// Hydra, SLURM's `srun`), e.g. "MPI rank 1 died: it was killed by signal 9 (Killed)".
fn dead_rank(tail: &VecDeque<String>) -> Option<String> {
    static PATTERNS: std::sync::OnceLock<Vec<regex::Regex>> = std::sync::OnceLock::new();
    let patterns = PATTERNS.get_or_init(|| {
        [
            r"process rank (?P<rank>\d+) with PID \d+ on node \S+ (?P<how>exited on signal \d+(?: \([^)]*\))?)",
            r"process rank (?P<rank>\d+) with PID \d+ on node \S+ (?P<how>exited with status \d+)",
            r"task (?P<rank>\d+): (?P<how>.+)$",
            r"rank (?P<rank>\d+) .*(?P<how>killed by signal \d+.*)$",
        ]
        .iter()
        .filter_map(|p| regex::Regex::new(p).ok())
        .collect()
    });
    tail.iter().find_map(|line| {
        patterns.iter().find_map(|re| {
            re.captures(line).map(|c| {
                let how = c["how"].trim().trim_end_matches('.');
                format!("MPI rank {} died ({how})", &c["rank"])
            })
        })
    })
}

/// The lines of launcher output worth quoting in an error: those naming a rank or a failure.
fn telling_lines(tail: &VecDeque<String>) -> Vec<String> {
    let keys = [
        "rank",
        "Rank",
        "task",
        "signal",
        "error",
        "Error",
        "EXIT CODE",
        "Killed",
        "not found",
    ];
    let mut out: Vec<String> = tail
        .iter()
        .map(|l| l.trim())
        .filter(|l| !l.is_empty() && !l.chars().all(|c| c == '-' || c == '='))
        .filter(|l| keys.iter().any(|k| l.contains(k)))
        .map(str::to_string)
        .collect();
    out.dedup();
    if out.len() > 8 {
        out.drain(..out.len() - 8);
    }
    out
}

fn hash_dir(key: &str) -> String {
    format!("{:032x}", crate::graph::filestate::hash_str(key))
}

/// How the launcher ended, in words.
fn ended(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(sig)) => {
            let name = Signal::try_from(sig).map(|s| s.as_str()).unwrap_or("?");
            format!("was killed by signal {sig} ({name})")
        }
        _ => "ended abnormally".to_string(),
    }
}

/// Runs a map/reduce job on MPI ranks.
pub fn run(ctx: &JobContext<'_>, key: &str) -> Result<(), Failure> {
    if !cfg!(feature = "mpi") {
        return Err(Failure::Setup(NOT_BUILT.to_string()));
    }
    let launcher = &ctx.shell.mpi;
    let exe = std::env::current_exe()
        .map_err(|e| Failure::Setup(format!("cannot find the flowrun binary: {e}")))?;
    let cwd = std::env::current_dir()
        .map_err(|e| Failure::Setup(format!("cannot read the working directory: {e}")))?;
    let run_dir = cwd.join(crate::STATE_DIR).join("mpi").join(hash_dir(key));
    let _ = std::fs::remove_dir_all(&run_dir);
    std::fs::create_dir_all(&run_dir)
        .map_err(|e| Failure::Setup(format!("cannot create `{}`: {e}", run_dir.display())))?;
    let result = launch(ctx, key, launcher, &exe, &cwd, &run_dir);
    kill_leftover_ranks(&run_dir);
    let _ = std::fs::remove_dir_all(&run_dir);
    result
}

fn launch(
    ctx: &JobContext<'_>,
    key: &str,
    launcher: &Launcher,
    exe: &Path,
    cwd: &Path,
    run_dir: &Path,
) -> Result<(), Failure> {
    let ranks = ctx.model.ranks.max(1);
    let hello = MpiHello {
        worker: Hello {
            options: ctx.runtime.options().clone(),
            rule: ctx.rule.name.clone(),
            job: ctx.spec(),
            threads: 1,
        },
        cwd: cwd.to_path_buf(),
    };
    let hello_path = run_dir.join("hello.json");
    let bytes = serde_json::to_vec(&hello).map_err(|e| Failure::Setup(e.to_string()))?;
    write_atomic(&hello_path, &bytes)
        .map_err(|e| Failure::Setup(format!("cannot write `{}`: {e}", hello_path.display())))?;

    let mut command = Command::new(&launcher.program);
    command
        .args(launcher.words(ranks).into_iter().skip(1))
        .arg(exe)
        .arg(RANK_ARG)
        .arg(&hello_path)
        .envs(launcher.env())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    // SIGTERM rather than SIGKILL, so the launcher can still take its ranks down.
    super::shell::die_with_parent(&mut command, Signal::SIGTERM);
    let shown = launcher.prefix(ranks);
    if ctx.verbose {
        eprintln!(
            "    {shown} {} {RANK_ARG} {}",
            exe.display(),
            hello_path.display()
        );
    }
    let mut child = command.spawn().map_err(|e| {
        let hint = if e.kind() == std::io::ErrorKind::NotFound {
            "; install OpenMPI (`bash scripts/setup.sh`) or choose another launcher with \
             `--mpi-launcher mpiexec|srun|PATH`"
        } else {
            ""
        };
        Failure::Setup(format!(
            "cannot start the MPI launcher `{}`: {e}{hint}",
            launcher.program
        ))
    })?;
    let pid = child.id() as i32;
    ctx.shell.registry.add(key, pid);

    let (tee, mut ends) = Tee::new(ctx.job.logs.first().map(|l| l.path.as_str()));
    if let Some(out) = child.stdout.take() {
        tee.forward(out, &mut ends);
    }
    if let Some(err) = child.stderr.take() {
        tee.forward(err, &mut ends);
    }
    drop(tee);

    let status_file = status_path(run_dir);
    let group = Pid::from_raw(pid);
    let mut reported: Option<Instant> = None;
    let mut interrupted: Option<Instant> = None;
    let mut lingered = false;
    let exit = loop {
        match crate::usage::try_reap(Pid::from_raw(pid)) {
            Ok(Some((status, cost))) => {
                ctx.usage.add(cost);
                break Ok(status);
            }
            Ok(None) => {}
            Err(e) => break Err(e),
        }
        if crate::interrupt::requested() {
            match interrupted {
                None => {
                    let _ = killpg(group, Signal::SIGTERM);
                    interrupted = Some(Instant::now());
                }
                Some(t) if t.elapsed() > INTERRUPT_GRACE => {
                    let _ = killpg(group, Signal::SIGKILL);
                    kill_leftover_ranks(run_dir);
                }
                Some(_) => {}
            }
        }
        if reported.is_none() && status_file.exists() {
            reported = Some(Instant::now());
        }
        if reported.is_some_and(|t| t.elapsed() > LINGER) && !lingered {
            // Rank 0 is done but the launcher does not exit: do not wait forever.
            lingered = true;
            let _ = killpg(group, Signal::SIGKILL);
            kill_leftover_ranks(run_dir);
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    // Whatever the launcher left in its group goes with it.
    let _ = killpg(group, Signal::SIGKILL);
    kill_leftover_ranks(run_dir);
    ctx.shell.registry.remove(key);
    let tail = ends.finish(Duration::from_secs(2));
    if interrupted.is_some() {
        return Err(Failure::Setup("interrupted".into()));
    }
    let exit = exit.map_err(|e| Failure::Setup(format!("waiting for `{shown}`: {e}")))?;
    let status: Option<Status> = std::fs::read(&status_file)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    match status {
        Some(s) if !s.ok => Err(Failure::Setup(s.message)),
        Some(_) if exit.success() || lingered => Ok(()),
        status => {
            let (tail, dead) = (telling_lines(&tail), dead_rank(&tail));
            let mut msg = if status.is_some() {
                format!("rank 0 finished, but `{shown}` {}", ended(exit))
            } else if exit.success() && dead.is_none() {
                format!(
                    "`{shown}` exited normally but MPI rank 0 left no result in `{}`: do the \
                     ranks run flowrun's MPI mode and see this directory (a shared file system \
                     on several hosts)?",
                    run_dir.display()
                )
            } else {
                format!(
                    "{}: the MPI job ended without a result from rank 0 (`{shown}` {})",
                    dead.unwrap_or_else(|| "an MPI rank failed".to_string()),
                    ended(exit)
                )
            };
            if !tail.is_empty() {
                msg.push_str("; it said:");
                for l in tail {
                    msg.push_str("\n    ");
                    msg.push_str(&l);
                }
            }
            Err(Failure::Setup(msg))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_cover_every_item_once_in_rank_order() {
        for n in 0..40 {
            for size in 1..9 {
                let mut next = 0;
                let mut lens = Vec::new();
                for r in 0..size {
                    let b = block(n, size, r);
                    assert_eq!(b.start, next, "n={n} size={size} rank={r}");
                    next = b.end;
                    lens.push(b.len());
                }
                assert_eq!(next, n);
                let (min, max) = (lens.iter().min().unwrap(), lens.iter().max().unwrap());
                assert!(max - min <= 1);
            }
        }
        assert_eq!(block(10, 3, 0), 0..4);
        assert_eq!(block(10, 3, 1), 4..7);
        assert_eq!(block(10, 3, 2), 7..10);
        assert_eq!(block(2, 3, 2), 2..2);
    }

    #[test]
    fn the_dead_rank_is_read_from_launcher_output() {
        let tail = |lines: &[&str]| lines.iter().map(|l| l.to_string()).collect::<VecDeque<_>>();
        let openmpi = tail(&[
            "Primary job  terminated normally, but 1 process returned",
            "mpirun noticed that process rank 1 with PID 0 on node vm exited on signal 9 (Killed).",
        ]);
        assert_eq!(
            dead_rank(&openmpi).unwrap(),
            "MPI rank 1 died (exited on signal 9 (Killed))"
        );
        let srun = tail(&["srun: error: node7: task 2: Segmentation fault"]);
        assert_eq!(
            dead_rank(&srun).unwrap(),
            "MPI rank 2 died (Segmentation fault)"
        );
        assert!(dead_rank(&tail(&["all fine"])).is_none());
    }

    #[test]
    fn launcher_words_and_quoting() {
        let l = Launcher::configure(Some("mpirun"), Some("--bind-to none -x 'A=b c'")).unwrap();
        assert_eq!(
            l.words(3),
            ["mpirun", "-n", "3", "--bind-to", "none", "-x", "A=b c"]
        );
        assert_eq!(l.prefix(3), "mpirun -n 3 --bind-to none -x 'A=b c'");
        assert!(Launcher::configure(Some("srun"), Some("'unclosed")).is_err());
        assert_eq!(
            Launcher::configure(Some("/opt/my mpi/bin/mpiexec"), Some(""))
                .unwrap()
                .prefix(2),
            "'/opt/my mpi/bin/mpiexec' -n 2"
        );
    }
}
