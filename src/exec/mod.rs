//! Executing one job's work: a shell command, a Rhai closure, or the map/reduce form under the
//! rule's execution model. The scheduler decides *when*; this module only knows *how*, and
//! reports back success or a [`Failure`].

mod asynchronous;
mod chunked;
mod mapreduce;
pub mod mpi;
#[cfg(feature = "mpi")]
pub mod mpi_rank;
pub mod node;
mod process;
mod shell;
mod spawn;
mod thread;
pub mod worker;

pub use shell::{ChildRegistry, GroupRecord, Shell};

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::diagnostic::Diagnostic;
use crate::graph::dag::{Job, JobFile};
use crate::rules::decl::{Model, ModelKind};
use crate::rules::registry::{Rule, Work};
use crate::rules::template::Values;
use crate::script::{JobSpec, NamedPaths, Runtime};

/// How a job's work ended.
#[derive(Debug)]
pub enum Failure {
    /// The command exited non-zero or was killed.
    Command(String),
    /// A Rhai error in one of the rule's closures.
    Script(Diagnostic),
    /// flowrun could not start or supervise the work (a worker died, a file could not be made).
    Setup(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Command(m) | Failure::Setup(m) => f.write_str(m),
            Failure::Script(d) => f.write_str(d.render().trim_end()),
        }
    }
}

impl From<Diagnostic> for Failure {
    fn from(d: Diagnostic) -> Self {
        Failure::Script(d)
    }
}

/// Everything needed to run a job, borrowed from the scheduler.
pub struct JobContext<'a> {
    pub rule: &'a Rule,
    pub job: &'a Job,
    /// The rule's model with threads fitted to the core budget.
    pub model: Model,
    pub runtime: &'a Runtime,
    pub shell: &'a Shell,
    pub verbose: bool,
    /// `Some` when the scheduler left the content hash of the job's first input to the job
    /// ([`hashed_while_read`]); the job puts the hash of the whole file there if it read it.
    pub input_hash: Option<Mutex<Option<u128>>>,
}

/// The input whose content hash a job computes as it reads it (the first input of a `chunked`
/// map/reduce in a binary format), so the scheduler need not read the file beforehand.
pub fn hashed_while_read<'j>(rule: &Rule, job: &'j Job) -> Option<&'j str> {
    let path = job.inputs.first()?.path.as_str();
    let chunked = matches!(rule.work, Work::MapReduce(_)) && rule.model.kind == ModelKind::Chunked;
    (chunked && chunked::hashes_while_reading(rule, path)).then_some(path)
}

fn borrowed(list: &[JobFile]) -> Vec<(Option<&str>, &str)> {
    list.iter()
        .map(|f| (f.name.as_deref(), f.path.as_str()))
        .collect()
}

fn owned(list: &[JobFile]) -> NamedPaths {
    list.iter()
        .map(|f| (f.name.clone(), f.path.clone()))
        .collect()
}

impl JobContext<'_> {
    /// The shell command this job would run, if it is a shell job. Under the `mpi` model it
    /// starts with the launcher: `mpirun -n RANKS [launcher args] `.
    pub fn command(&self) -> Option<String> {
        let Work::Shell(t) = &self.rule.work else {
            return None;
        };
        let prefix = match self.model.kind {
            ModelKind::Mpi => format!("{} ", self.shell.mpi.prefix(self.model.ranks.max(1))),
            _ => String::new(),
        };
        let command = t.render(&Values {
            input: borrowed(&self.job.inputs),
            output: borrowed(&self.job.outputs),
            log: borrowed(&self.job.logs),
            params: self.job.params(self.rule),
            wildcards: &self.job.wildcards,
            threads: self.model.threads,
            resources: self.job.resources(self.rule),
        });
        Some(prefix + command.as_str())
    }

    /// The job as the script runtime (and worker processes) see it.
    pub fn spec(&self) -> JobSpec {
        JobSpec {
            rule: self.rule.name.clone(),
            input: owned(&self.job.inputs),
            output: owned(&self.job.outputs),
            log: owned(&self.job.logs),
            wildcards: self.job.wildcards.clone(),
            params: self.job.params(self.rule).clone(),
            threads: self.model.threads,
            resources: self.job.resources(self.rule).clone(),
        }
    }

    /// Runs the work once, within the rule's `timeout` if it has one: past it, the job's
    /// process groups (command, worker processes, MPI launcher) get SIGTERM, then SIGKILL after
    /// `grace`, and its Rhai code (`run`, `items`, `map`, `reduce`, `finish` in flowrun) stops
    /// at its next operations.
    pub fn execute_within(&self, key: &str, grace: Duration) -> Result<(), Failure> {
        let Some(timeout) = self.rule.timeout else {
            return self.execute(key);
        };
        let deadline = Instant::now() + timeout;
        let fired = AtomicBool::new(false);
        let (done, watched) = mpsc::channel::<()>();
        let result = std::thread::scope(|scope| {
            let fired = &fired;
            scope.spawn(move || {
                if watched.recv_timeout(timeout) != Err(RecvTimeoutError::Timeout) {
                    return;
                }
                fired.store(true, Ordering::SeqCst);
                if self.shell.registry.signal_job(key, Signal::SIGTERM) > 0 {
                    // Until the work ends (the sender drops) or the grace period is over.
                    let _ = watched.recv_timeout(grace);
                    self.shell.registry.signal_job(key, Signal::SIGKILL);
                }
            });
            let result = crate::interrupt::with_deadline(Some(deadline), || self.execute(key));
            drop(done);
            result
        });
        match result {
            Err(_) if fired.load(Ordering::SeqCst) || Instant::now() >= deadline => Err(
                Failure::Command(format!("timed out after {} s", timeout.as_secs_f64())),
            ),
            other => other,
        }
    }

    /// Runs the work once.
    pub fn execute(&self, key: &str) -> Result<(), Failure> {
        match &self.rule.work {
            Work::Nothing => Ok(()),
            Work::Shell(_) => {
                let cmd = self.command().unwrap_or_default();
                if self.verbose {
                    eprintln!("    {cmd}");
                }
                let log = self.job.logs.first().map(|l| l.path.as_str());
                let env = match self.model.kind {
                    ModelKind::Mpi => self.shell.mpi.env(),
                    _ => Vec::new(),
                };
                self.shell.run(key, &cmd, log, self.model.threads, &env)
            }
            Work::Run(closure) => self
                .runtime
                .call_run(*closure, &self.spec())
                .map_err(Failure::Script),
            Work::MapReduce(mr) => mapreduce::run(self, key, mr),
        }
    }
}
