//! `--executor slurm`: every job not marked `local: true` runs as a SLURM batch job.
//!
//! This is a second [`Place`]: the scheduler, retries, early cutoff, the store and every report
//! work as for a local run, and `attempt` answers as local work does. An attempt writes the
//! job's spec and batch script under `.flowrun/slurm/<rule>/<wildcards>/`, submits it with one
//! `sbatch` ([`submit`]), records the job id in the store, and waits for its end with the
//! run's other jobs ([`tracker`]: one `squeue` per poll round). On the node, flowrun itself
//! runs the job (`flowrun __job`, see [`crate::exec::node`]), so `run` closures and every
//! execution model work there, and writes an exit-status file beside the log.
//!
//! Outputs are expected on a filesystem shared with the nodes; `--latency-wait` covers the
//! time a network filesystem takes to show them here.
//!
//! Never losing or duplicating work: Ctrl-C cancels all of the run's jobs with one `scancel`
//! and waits until they have left the queue, so the scheduler cleans their partial outputs
//! only once nothing writes them any more. If flowrun itself is killed, the job ids stay in
//! the store; the next run follows the jobs still queued or running (and takes in those that
//! finished meanwhile, once their exit-status file and outputs check out) instead of
//! submitting them again. The store has a second connection here for those ids: they are the
//! executor's business, and the scheduler's records are untouched by it.

mod state;
mod submit;
mod tracker;

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::exec::mpi::Launcher;
use crate::exec::node::{read_status, status_path, ExitStatus, NodeJob};
use crate::exec::{Failure, JobContext};
use crate::graph::store::{Store, StoreError, Submission};
use crate::rules::registry::{Rule, Rules};
use crate::run::place::{Attempt, Local, Place};
use crate::script::LoadOptions;
use crate::STATE_DIR;

pub use state::SlurmState;
pub use submit::ExtraError;
use submit::Submitter;
use tracker::Tracker;

/// Lines of a failed job's log shown with its error.
const TAIL_LINES: usize = 15;

/// How the executor is set up, from the command line.
#[derive(Debug, Clone)]
pub struct SlurmOptions {
    /// The flowrun binary the nodes run (on the shared filesystem).
    pub exe: PathBuf,
    /// The workflow and its config, as the nodes load them.
    pub load: LoadOptions,
    /// The longest time between two status queries.
    pub poll: Duration,
    /// How long outputs and exit-status files may take to appear after a job's end.
    pub latency_wait: Duration,
    /// Submissions per second at most.
    pub submit_rate: f64,
    /// The MPI launcher inside an allocation.
    pub launcher: Launcher,
    /// Seconds a rule's `timeout` gives stopped work on the node.
    pub grace: f64,
}

/// Why the SLURM executor cannot start.
#[derive(Debug, thiserror::Error)]
pub enum SlurmError {
    #[error("`--executor slurm` needs SLURM's `{0}`, which is not on PATH")]
    Missing(&'static str),
    #[error(transparent)]
    Extra(#[from] ExtraError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The SLURM cluster as a place to run jobs.
pub struct Slurm<'a> {
    local: Local<'a>,
    options: SlurmOptions,
    /// This run's id: every job's `--job-name`.
    run: String,
    dir: PathBuf,
    store: Mutex<Store>,
    /// Jobs an earlier, killed flowrun submitted that are to be followed, by label.
    resumable: Mutex<HashMap<String, Submission>>,
    tracker: Tracker,
    submitter: Submitter,
    /// Set by `stop_all`: no more submissions. Held while `sbatch` runs, so that no job is
    /// submitted behind the cancellation's back.
    closed: Mutex<bool>,
    /// Jobs submitted by this run.
    submitted: std::sync::atomic::AtomicU64,
}

/// Whether an executable called `name` is on `PATH`.
fn on_path(name: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(name).is_file()))
}

/// A run id: the time and flowrun's pid, unique on one submitting machine.
fn run_id() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format!("flowrun-{secs:x}{:x}", std::process::id())
}

/// `.flowrun/slurm/<rule>/<name=value,…>`: where a job's spec, script, logs and exit files go.
pub fn job_dir(root: &Path, rule: &Rule, ctx: &JobContext<'_>) -> PathBuf {
    let mut dir = root.join(STATE_DIR).join("slurm").join(&rule.name);
    let wildcards: Vec<String> = ctx
        .job
        .wildcards
        .iter()
        .map(|(k, v)| format!("{k}={}", v.replace('/', "%2F")))
        .collect();
    if !wildcards.is_empty() {
        dir.push(wildcards.join(","));
    }
    dir
}

/// The last lines of a log, indented, after a line naming it.
fn log_tail(log: &Path) -> String {
    let shown = log
        .strip_prefix(std::env::current_dir().unwrap_or_default())
        .unwrap_or(log);
    let Ok(text) = std::fs::read_to_string(log) else {
        return format!("\nlog: {} (not written)", shown.display());
    };
    let lines: Vec<&str> = text.lines().collect();
    let from = lines.len().saturating_sub(TAIL_LINES);
    let mut out = format!("\nlog: {}", shown.display());
    if lines.is_empty() {
        out.push_str(" (empty)");
    } else {
        out.push_str(if from > 0 { ", last lines:" } else { ":" });
        for line in &lines[from..] {
            out.push_str("\n    | ");
            out.push_str(line);
        }
    }
    out
}

impl<'a> Slurm<'a> {
    /// Checks the tools and every rule's `slurm_extra`, and finds the jobs a killed flowrun
    /// left on the cluster. Returns notes to show (jobs being followed again).
    pub fn new(
        local: Local<'a>,
        options: SlurmOptions,
        rules: &Rules,
    ) -> Result<(Self, Vec<String>), SlurmError> {
        for tool in ["sbatch", "squeue", "scancel"] {
            if !on_path(tool) {
                return Err(SlurmError::Missing(tool));
            }
        }
        for rule in rules.iter() {
            submit::extra_words(rule)?;
        }
        let dir = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
        let (mut store, _) = Store::open(Path::new(STATE_DIR))?;
        let (resumable, notes) = Self::reattach(&mut store)?;
        let slurm = Self {
            local,
            run: run_id(),
            dir,
            store: Mutex::new(store),
            resumable: Mutex::new(resumable),
            tracker: Tracker::new(options.poll),
            submitter: Submitter::new(options.submit_rate, 5, Duration::from_secs(1)),
            closed: Mutex::new(false),
            submitted: std::sync::atomic::AtomicU64::new(0),
            options,
        };
        Ok((slurm, notes))
    }

    /// Sorts the submissions a killed flowrun left: jobs still queued or running, and jobs
    /// that completed with an exit-status file saying so, are followed; the rest (failed, or
    /// unknown to the cluster without an exit file) are forgotten and will be submitted anew.
    fn reattach(
        store: &mut Store,
    ) -> Result<(HashMap<String, Submission>, Vec<String>), StoreError> {
        let left = store.submissions()?;
        if left.is_empty() {
            return Ok((HashMap::new(), Vec::new()));
        }
        let names: BTreeSet<String> = left.values().map(|s| s.run.clone()).collect();
        let lines = tracker::query(&names).unwrap_or_default();
        let mut follow = HashMap::new();
        let mut notes = Vec::new();
        let mut ids = Vec::new();
        for (label, sub) in left {
            let state = lines
                .iter()
                .find(|l| l.id == sub.job_id && l.name == sub.run && l.comment == sub.label)
                .map(|l| l.state);
            let status = read_status(&status_path(Path::new(&sub.dir), &sub.job_id));
            let worth = match (state, &status) {
                (_, Some(s)) => s.code == crate::exit::SUCCESS,
                (Some(s), None) => !s.ended(),
                (None, None) => false,
            };
            if worth {
                ids.push(format!("{} ({})", sub.label, sub.job_id));
                follow.insert(label, sub);
            } else {
                store.settled(&label)?;
            }
        }
        if !ids.is_empty() {
            ids.sort();
            notes.push(format!(
                "following {} SLURM job(s) an earlier flowrun submitted instead of submitting \
                 them again: {}",
                ids.len(),
                ids.join(", ")
            ));
        }
        Ok((follow, notes))
    }

    /// What the run asked of the controller: jobs submitted, status queries run.
    pub fn load(&self) -> String {
        format!(
            "SLURM run {}: {} job(s) submitted, {} status quer{}",
            self.run,
            self.submitted.load(std::sync::atomic::Ordering::Relaxed),
            self.tracker.rounds(),
            if self.tracker.rounds() == 1 {
                "y"
            } else {
                "ies"
            }
        )
    }

    fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes the job's spec and script and submits it; returns its id.
    fn submit(&self, ctx: &JobContext<'_>, label: &str, dir: &Path) -> Result<String, Failure> {
        let rule = ctx.rule;
        let setup = |what: &Path, e: std::io::Error| {
            Failure::Setup(format!("cannot write `{}`: {e}", what.display()))
        };
        std::fs::create_dir_all(dir).map_err(|e| setup(dir, e))?;
        let target = ctx
            .job
            .outputs
            .first()
            .map_or_else(|| rule.name.clone(), |o| o.path.clone());
        let spec = NodeJob {
            options: self.options.load.clone(),
            dir: self.dir.clone(),
            target,
            label: label.to_string(),
            status_dir: dir.to_path_buf(),
            launcher: self.options.launcher.program.clone(),
            launcher_args: self.options.launcher.args.clone(),
            grace: self.options.grace,
            attempt: ctx.attempt,
        };
        let spec_path = dir.join("job.json");
        let script_path = dir.join("job.sh");
        std::fs::write(
            &spec_path,
            serde_json::to_vec_pretty(&spec).unwrap_or_default(),
        )
        .map_err(|e| setup(&spec_path, e))?;
        let script = submit::batch_script(
            &self.options.exe,
            &spec_path,
            label,
            &self.run,
            ctx.model.threads,
        );
        std::fs::write(&script_path, script.as_bytes()).map_err(|e| setup(&script_path, e))?;
        let args = submit::sbatch_args(
            rule,
            ctx.job.resources(rule),
            &ctx.model,
            &self.run,
            label,
            &dir.join("%j.log"),
        );
        let closed = self.closed.lock().unwrap_or_else(|p| p.into_inner());
        if *closed || crate::interrupt::requested() {
            return Err(Failure::Setup("interrupted before it was submitted".into()));
        }
        let id = self
            .submitter
            .submit(&args, &script_path)
            .map_err(|e| Failure::Setup(format!("{e}{}", hint_for(&e.to_string()))))?;
        self.submitted
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // Recorded before anything else can fail: a killed flowrun must find it.
        let recorded = self.store().submitted(&Submission {
            label: label.to_string(),
            job_id: id.clone(),
            run: self.run.clone(),
            dir: dir.to_string_lossy().into_owned(),
        });
        // Followed before `stop_all` can look: it cancels what is followed.
        self.tracker
            .follow(&id, &self.run, label, status_path(dir, &id));
        drop(closed);
        if let Err(e) = recorded {
            crate::diagnostic::warn(&format!(
                "SLURM job {id} ({label}) could not be recorded in the store ({e}); if flowrun \
                 is killed now, the next run submits it again"
            ));
        }
        Ok(id)
    }

    /// Judges a job's end: its exit-status file first, then the queue's last word.
    fn judge(
        &self,
        ctx: &JobContext<'_>,
        id: &str,
        dir: &Path,
        ended: tracker::Ended,
    ) -> Result<(), Failure> {
        let log = dir.join(format!("{id}.log"));
        let status_file = status_path(dir, id);
        let wait = self.options.latency_wait;
        let status = ended.status.or_else(|| match ended.state {
            // Completed, or unknown to the queue: the exit file may still be on its way.
            Some(SlurmState::Completed) | None => appear(wait, || read_status(&status_file)),
            _ => None,
        });
        // The queue's word wins when SLURM ended the job (time, memory, cancellation, node):
        // the job's own exit file then only says it was stopped.
        let over_memory = ended.state == Some(SlurmState::Failed)
            && ctx.job.resources(ctx.rule).contains_key("mem_mb")
            && std::fs::read_to_string(&log).is_ok_and(|t| t.contains("exceeded memory limit"));
        let stopped = over_memory
            || ended.state.is_some_and(|s| {
                s.ended() && !matches!(s, SlurmState::Completed | SlurmState::Failed)
            });
        // What the job cost on its node comes back in its exit file.
        ctx.usage.reset();
        if let Some(usage) = status.as_ref().and_then(|s| s.usage) {
            ctx.usage.add(usage);
        }
        match (status, ended.state) {
            (_, Some(state)) if stopped => Err(self.stopped(ctx, id, state, &log)),
            (Some(ExitStatus { code: 0, .. }), _) => {
                for o in &ctx.job.outputs {
                    let path = Path::new(&o.path);
                    if appear(wait, || path.exists().then_some(())).is_none() {
                        return Err(Failure::Setup(format!(
                            "SLURM job {id} finished, but its output `{}` did not appear here \
                             within {} s (--latency-wait; is the filesystem shared with the \
                             nodes?){}",
                            o.path,
                            wait.as_secs_f64(),
                            log_tail(&log)
                        )));
                    }
                }
                Ok(())
            }
            (Some(ExitStatus { message, code, .. }), _) => Err(Failure::Command(format!(
                "SLURM job {id} failed with exit code {code}: {}{}",
                message.unwrap_or_else(|| "no message".into()),
                log_tail(&log)
            ))),
            (None, Some(SlurmState::Completed)) => Err(Failure::Setup(format!(
                "SLURM job {id} completed, but its exit-status file `{}` did not appear within \
                 {} s (--latency-wait; is the filesystem shared with the nodes?){}",
                status_file.display(),
                wait.as_secs_f64(),
                log_tail(&log)
            ))),
            (None, Some(state)) => {
                let tail = log_tail(&log);
                let memory = ctx.job.resources(ctx.rule).get("mem_mb").filter(|_| {
                    state == SlurmState::Failed && tail.contains("exceeded memory limit")
                });
                let what = match memory {
                    Some(mb) => format!(
                        "was killed for using more memory than its --mem={mb}M (raise \
                         `resources.mem_mb`)"
                    ),
                    None => state.words(),
                };
                let limit = match (state, ctx.job.resources(ctx.rule).get("runtime")) {
                    (SlurmState::Timeout, Some(m)) => {
                        format!(" (--time={m} minutes; raise `resources.runtime`)")
                    }
                    _ => String::new(),
                };
                Err(Failure::Command(format!(
                    "SLURM job {id} {what}{limit}{tail}"
                )))
            }
            (None, None) => Err(Failure::Setup(format!(
                "SLURM no longer lists job {id} and it left no exit-status file `{}`: it was \
                 lost (was the controller restarted?){}",
                status_file.display(),
                log_tail(&log)
            ))),
        }
    }
}

impl Slurm<'_> {
    /// A job that ended without a word of its own, or that SLURM stopped: the state in words,
    /// the limit it hit, the log's tail.
    fn stopped(&self, ctx: &JobContext<'_>, id: &str, state: SlurmState, log: &Path) -> Failure {
        let tail = log_tail(log);
        // Without cgroups, SLURM kills a job over its memory and says so only in the log; the
        // state is FAILED.
        let memory = ctx.job.resources(ctx.rule).get("mem_mb").filter(|_| {
            state == SlurmState::OutOfMemory
                || (state == SlurmState::Failed && tail.contains("exceeded memory limit"))
        });
        let what = match memory {
            Some(mb) => format!(
                "was killed for using more memory than its --mem={mb}M (raise `resources.mem_mb`)"
            ),
            None => state.words(),
        };
        let limit = match (state, ctx.job.resources(ctx.rule).get("runtime")) {
            (SlurmState::Timeout, Some(m)) => {
                format!(" (--time={m} minutes; raise `resources.runtime`)")
            }
            _ => String::new(),
        };
        Failure::Command(format!("SLURM job {id} {what}{limit}{tail}"))
    }
}

/// Calls `probe` until it gives something or `wait` has passed.
fn appear<T>(wait: Duration, mut probe: impl FnMut() -> Option<T>) -> Option<T> {
    let end = Instant::now() + wait;
    loop {
        if let Some(v) = probe() {
            return Some(v);
        }
        if Instant::now() >= end {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A hint for what `sbatch` said, when one helps.
fn hint_for(error: &str) -> &'static str {
    if error.contains("partition") {
        "\nhint: `sinfo -s` lists the partitions; set `resources: #{ slurm_partition: \"...\" }`"
    } else if error.contains("account") {
        "\nhint: set `resources: #{ slurm_account: \"...\" }` to an account you may use"
    } else if error.contains("node configuration is not available") {
        "\nhint: no node has that many CPUs, that much memory or those features"
    } else {
        ""
    }
}

impl Place for Slurm<'_> {
    fn attempt(
        &self,
        ctx: &JobContext<'_>,
        label: &str,
        grace: Duration,
    ) -> Result<Attempt, Failure> {
        if ctx.rule.local {
            return self.local.attempt(ctx, label, grace);
        }
        let resumed = {
            // Taken and followed in one step, so that `stop_all` sees it in one place or the
            // other.
            let mut left = self.resumable.lock().unwrap_or_else(|p| p.into_inner());
            left.remove(label).inspect(|sub| {
                let dir = Path::new(&sub.dir);
                let status = status_path(dir, &sub.job_id);
                self.tracker.follow(&sub.job_id, &sub.run, label, status);
            })
        };
        let (id, dir) = match resumed {
            Some(sub) => (sub.job_id, PathBuf::from(sub.dir)),
            None => {
                let dir = job_dir(&self.dir, ctx.rule, ctx);
                (self.submit(ctx, label, &dir)?, dir)
            }
        };
        let ended = self.tracker.wait(&id);
        let _ = self.store().settled(label);
        self.judge(ctx, &id, &dir, ended).map(|()| Attempt::Ran)
    }

    fn stop_all(&self, grace: Duration) {
        self.local.stop_all(grace);
        let mut closed = self.closed.lock().unwrap_or_else(|p| p.into_inner());
        *closed = true;
        // Jobs of a killed flowrun not reached yet: cancelled too, and forgotten, so the next
        // run makes them afresh. (Held while the followed jobs are read: a job moves from one
        // to the other under this lock.)
        let mut resumable = self.resumable.lock().unwrap_or_else(|p| p.into_inner());
        let mut ids = self.tracker.ids();
        let left: Vec<Submission> = resumable.drain().map(|(_, s)| s).collect();
        drop(resumable);
        for sub in &left {
            ids.push(sub.job_id.clone());
            let _ = self.store().settled(&sub.label);
        }
        drop(closed);
        if ids.is_empty() {
            return;
        }
        match Command::new("scancel").args(&ids).output() {
            Ok(out) if !out.status.success() => crate::diagnostic::warn(&format!(
                "scancel {}: {}",
                ids.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            )),
            Err(e) => crate::diagnostic::warn(&format!("cannot run `scancel`: {e}")),
            Ok(_) => {}
        }
        // Until every cancelled job has left the queue (its processes are gone), so that the
        // outputs cleaned next are not written again.
        if !self.tracker.drain(grace + Duration::from_secs(60)) {
            crate::diagnostic::warn(&format!(
                "SLURM jobs {} were cancelled but have not yet left the queue",
                self.tracker.ids().join(" ")
            ));
        }
    }

    fn cost(&self, rule: &Rule, cores: u32) -> u32 {
        if rule.local {
            cores
        } else {
            1
        }
    }

    fn caps_threads(&self, rule: &Rule) -> bool {
        rule.local
    }

    fn resumes(&self, label: &str) -> bool {
        self.resumable
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(label)
    }
}
