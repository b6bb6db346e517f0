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
pub mod script;
mod shell;
pub mod software;
mod spawn;
mod tee;
mod thread;
pub mod worker;

pub use shell::{ChildRegistry, GroupRecord, Shell};

use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::diagnostic::Diagnostic;
use crate::graph::dag::{Job, JobFile};
use crate::rules::decl::{Model, ModelKind};
use crate::rules::registry::{Rule, Work};
use crate::rules::template::Values;
use crate::script::{CommandRunner, JobSpec, NamedPaths, Runtime};
use crate::usage::{Meter, ThreadMark};

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
    /// Which attempt of the job runs: 1, then one more per retry (`job.attempt`).
    pub attempt: u32,
    /// What the current attempt cost so far ([`crate::usage`]): every process and thread that
    /// does the job's work adds to it.
    pub usage: Arc<Meter>,
}

/// The input whose content hash a job computes as it reads it (the first input of a `chunked`
/// map/reduce in a binary format), so the scheduler need not read the file beforehand.
pub fn hashed_while_read<'j>(rule: &Rule, job: &'j Job) -> Option<&'j str> {
    let path = job.inputs.first()?.path.as_str();
    let chunked = matches!(rule.work, Work::MapReduce(_)) && rule.model.kind == ModelKind::Chunked;
    (chunked && chunked::hashes_while_reading(rule, path)).then_some(path)
}

/// A job's params (the rule's, or what its params functions gave) with its wildcards in their
/// strings (`"{dir}/x"`), as Snakemake formats them. The substitution is not recorded (the
/// store keeps the params before it), so it never makes a job rerun.
pub fn job_params<'a>(
    rule: &'a Rule,
    job: &'a Job,
) -> Cow<'a, serde_json::Map<String, serde_json::Value>> {
    fn fill(value: &mut serde_json::Value, w: &crate::rules::pattern::Wildcards) {
        match value {
            serde_json::Value::String(s) => {
                if let Cow::Owned(filled) = w.substitute(s) {
                    *s = filled;
                }
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(|v| fill(v, w)),
            serde_json::Value::Object(map) => map.values_mut().for_each(|v| fill(v, w)),
            _ => {}
        }
    }
    let params = job.params(rule);
    if job.wildcards.is_empty() || params.is_empty() {
        return Cow::Borrowed(params);
    }
    let mut filled = params.clone();
    filled.values_mut().for_each(|v| fill(v, &job.wildcards));
    Cow::Owned(filled)
}

/// `job` of `rule` as scripts, closures, worker processes and `--job-env` see it, running on
/// `threads` threads, in its `attempt`.
pub fn job_spec(rule: &Rule, job: &Job, threads: u32, attempt: u32) -> JobSpec {
    JobSpec {
        rule: rule.name.clone(),
        input: owned(&job.inputs),
        output: owned(&job.outputs),
        log: owned(&job.logs),
        wildcards: job.wildcards.clone(),
        params: job_params(rule, job).into_owned(),
        threads,
        resources: job.resources(rule).clone(),
        attempt,
    }
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
        let command = t.render(&self.values(&self.params()));
        Some(prefix + command.as_str())
    }

    /// The job's values for a template.
    fn values<'v>(&'v self, params: &'v serde_json::Map<String, serde_json::Value>) -> Values<'v> {
        Values {
            rule: &self.rule.name,
            input: borrowed(&self.job.inputs),
            output: borrowed(&self.job.outputs),
            log: borrowed(&self.job.logs),
            params,
            wildcards: &self.job.wildcards,
            threads: self.model.threads,
            resources: self.job.resources(self.rule),
        }
    }

    /// The rule's `message` for this job, filled in.
    pub fn message(&self) -> Option<String> {
        let t = self.rule.message.as_ref()?;
        Some(t.render(&self.values(&self.params())))
    }

    /// The rule's params with this job's wildcards filled in ([`job_params`]).
    fn params(&self) -> Cow<'_, serde_json::Map<String, serde_json::Value>> {
        job_params(self.rule, self.job)
    }

    /// The job as the script runtime (and worker processes) see it.
    pub fn spec(&self) -> JobSpec {
        job_spec(self.rule, self.job, self.model.threads, self.attempt)
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

    /// How `shell()` in this job's `run` closure runs a command: as a shell rule's command
    /// runs, under the job's key (so Ctrl-C and `timeout` reach it), output to its first log.
    fn command_runner(&self, key: &str) -> CommandRunner {
        let shell = self.shell.clone();
        let key = key.to_string();
        let log = self.job.logs.first().map(|l| l.path.clone());
        let (threads, verbose) = (self.model.threads, self.verbose);
        let usage = Arc::clone(&self.usage);
        let env: Vec<(String, String)> = software::job_vars(&self.rule.software);
        Arc::new(move |cmd: &str| {
            if verbose {
                eprintln!("    {cmd}");
            }
            let env: Vec<(&str, &str)> =
                env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            shell
                .run(&key, cmd, log.as_deref(), threads, &env, &usage)
                .map_err(|e| e.to_string())
        })
    }

    /// Runs the work once, measuring it into [`Self::usage`] afresh.
    pub fn execute(&self, key: &str) -> Result<(), Failure> {
        self.usage.reset();
        // Work done on this thread (closures, the fold, an async job's event loop) counts;
        // processes and pool threads add their own figures.
        let mark = ThreadMark::now();
        let result = self.work(key);
        self.usage.add(mark.elapsed());
        result
    }

    /// The work itself, after printing the rule's `message`, if any.
    fn work(&self, key: &str) -> Result<(), Failure> {
        if let Some(message) = self.message() {
            eprintln!("{message}");
        }
        match &self.rule.work {
            Work::Nothing => Ok(()),
            Work::Shell(_) => {
                let cmd = self.command().unwrap_or_default();
                if self.verbose {
                    eprintln!("    {cmd}");
                }
                let log = self.job.logs.first().map(|l| l.path.as_str());
                let software = software::job_vars(&self.rule.software);
                let mut env = match self.model.kind {
                    ModelKind::Mpi => self.shell.mpi.env(),
                    _ => Vec::new(),
                };
                env.extend(software.iter().map(|(k, v)| (k.as_str(), v.as_str())));
                self.shell
                    .run(key, &cmd, log, self.model.threads, &env, &self.usage)
            }
            Work::Run(closure) => self
                .runtime
                .call_run(*closure, &self.spec(), self.command_runner(key))
                .map_err(Failure::Script),
            Work::MapReduce(mr) => mapreduce::run(self, key, mr),
            Work::Script(s) => script::run(self, key, s),
        }
    }
}
