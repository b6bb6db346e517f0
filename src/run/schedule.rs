//! Running the plan: the one owner of run state.
//!
//! The loop here is the only code that changes job states and the store, and the only one that
//! emits job events (to the display, the trace and the report, see [`crate::report::events`]); job
//! threads run work and send back messages. Ready jobs start in a fixed order: priority, then
//! critical path (the longest chain of running jobs behind them), then job id, taking as many
//! of the `-j` cores (and declared `--resources`) as they need.
//!
//! A failed attempt with `retries` left comes back here rather than looping in its thread: its
//! cores and resources are released, a rule whose `threads` or `resources` grow with the attempt
//! (`|w, attempt|`) gets them computed for the next one, and the job waits in the ready set
//! until they fit, like any job. Retries start even after a failure stopped new work: they
//! belong to a job that has started.
//!
//! Do not use `?` inside the loop: a failure is counted, running jobs drain, and `--keep-going`
//! decides whether new work starts.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::Path;
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant};

use crate::exec::{Failure, JobContext, Shell};
use crate::graph::dag::{Dag, Job, JobId, JobLabel, Target};
use crate::graph::filestate::Stat;
use crate::graph::plan::{Checker, Decision, Plan, PlanOptions};
use crate::graph::reason::Reason;
use crate::graph::store::{Past, Record, Snapshot, Store, StoreError};
use crate::report::events::{End, Event, Events, JobRef, Outcome, Planned};
use crate::report::progress::Verbosity;
use crate::rules::decl::{FileKind, Model};
use crate::rules::function::Evaluate;
use crate::rules::pattern::Wildcards;
use crate::rules::registry::{RuleId, Rules, Work};
use crate::run::place::{Attempt, Place};
use crate::script::Runtime;
use crate::usage::Usage;
use rustc_hash::FxHashMap;
use typed_arena::Arena;

/// How to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub cores: u32,
    pub resources: BTreeMap<String, u64>,
    pub keep_going: bool,
    pub keep_incomplete: bool,
    pub verbosity: Verbosity,
    /// How long interrupted commands get between SIGTERM and SIGKILL.
    pub grace: Duration,
}

/// Cores a job reserves: what its model uses, capped by the `-j` budget.
fn cores_of(rules: &Rules, job: &Job, budget: u32) -> u32 {
    job.model(rules.get(job.rule))
        .cores()
        .clamp(1, budget.max(1))
}

/// A job as events name it.
fn job_ref<'a>(rules: &'a Rules, dag: &'a Dag, id: JobId, budget: u32) -> JobRef<'a> {
    let job = dag.job(id);
    JobRef {
        id,
        rule: rules.get(job.rule),
        job,
        cores: cores_of(rules, job, budget),
    }
}

/// The first of `job`'s resources that is more than `--resources` allows: its name, the
/// amount and the limit.
fn too_big<'j>(
    rules: &'j Rules,
    job: &'j Job,
    limits: &BTreeMap<String, u64>,
) -> Option<(&'j str, u64, u64)> {
    job.resources(rules.get(job.rule))
        .iter()
        .find_map(|(k, v)| {
            let cap = *limits.get(k)?;
            (*v > cap).then_some((k.as_str(), *v, cap))
        })
}

/// The jobs `plan` runs, in plan order, with their reasons and how long each took last time,
/// for a `-j` budget of `cores`.
pub fn planned<'a>(
    rules: &'a Rules,
    dag: &'a Dag,
    plan: &'a Plan,
    cores: u32,
    history: &FxHashMap<String, Past>,
) -> Vec<Planned<'a>> {
    plan.to_run(dag)
        .filter_map(|id| match plan.decision(id) {
            Decision::Run(reasons) => {
                let job = job_ref(rules, dag, id, cores);
                let past = history.get(&job.to_string()).map(|p| p.seconds);
                Some(Planned { job, reasons, past })
            }
            _ => None,
        })
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Waiting,
    Ready,
    Running,
    Done,
    Failed,
    Blocked,
    /// Waits for a checkpoint (see [`crate::graph::pending`]).
    Pending,
    /// Was pending, and is now a job of a later layer.
    Moved,
}

/// What a job thread tells the scheduler when an attempt ends.
struct Message {
    id: JobId,
    result: Result<Attempt, Failure>,
    /// Since the job's first attempt started.
    took: Duration,
    /// What the attempt cost.
    usage: Usage,
    /// The first input's hash, when the job was left to compute it and did.
    input_hash: Option<u128>,
}

/// A job that failed and is tried again.
struct Retry {
    /// The attempt that runs next, or runs: 2 for the first retry.
    attempt: u32,
    /// When the first attempt started: the job's time counts from there.
    since: Instant,
    /// The job as this attempt runs it, when its rule's `threads` or `resources` grow with the
    /// attempt.
    grown: Option<Job>,
}

/// Everything the scheduler borrows.
pub struct RunContext<'a> {
    pub rules: &'a Rules,
    pub dag: &'a Dag,
    pub runtime: &'a Runtime,
    pub shell: &'a Shell,
    /// Where jobs run.
    pub place: &'a dyn Place,
    pub store: &'a mut Store,
    /// How to plan the jobs that checkpoints' outputs tell of while the run goes on; `None`
    /// leaves them all to the next pass.
    pub growth: Option<Growth<'a>>,
}

/// What the scheduler needs to plan, while other jobs run, the jobs that waited for a
/// checkpoint that has now run: their graph is resolved from their own outputs (the subgraph
/// that depends on the checkpoint, not the whole one) and planned against what the store holds
/// of its files now. The graphs and store extracts live as long as the run, in the arenas.
pub struct Growth<'a> {
    pub dags: &'a Arena<Dag>,
    pub snapshots: &'a Arena<Snapshot>,
    /// Resolves the graph of these targets; `None` on any error (the next pass, which plans the
    /// whole graph again, reports it).
    pub resolve: &'a dyn Fn(&[Target]) -> Option<Dag>,
    /// What the store held when the pass started.
    pub base: &'a Snapshot,
    /// The run's plan options; the jobs that ran or failed are added as the run goes.
    pub opts: PlanOptions,
    /// How many of the pass's jobs that ran, and that failed, `opts` has taken.
    pub taken: (usize, usize),
}

/// How long the jobs of a finished checkpoint may wait to be planned while every core is busy
/// anyway: checkpoints that finish meanwhile are planned together (one graph, one plan), which
/// at 10,000 checkpoints is what keeps re-planning cheap. A core with nothing to
/// do plans them at once.
const GROW_AFTER: Duration = Duration::from_millis(250);

/// A graph whose jobs the scheduler runs: the pass's own, then one for each batch of jobs that
/// checkpoints told of while the pass ran ([`Growth`]). Ids run across layers: a layer's jobs
/// are numbered after those of the layers before it.
struct Layer<'a> {
    dag: &'a Dag,
    offset: u32,
    checker: Checker<'a>,
    /// Its jobs that run and have not ended; a layer with none is never asked again.
    open: usize,
}

/// The layer of scheduler id `id`, and the job's id within it.
fn locate(layers: &[Layer<'_>], id: JobId) -> (usize, JobId) {
    let l = layers.partition_point(|l| l.offset <= id.0) - 1;
    (l, JobId(id.0 - layers[l].offset))
}

/// Job `id` as its current attempt runs it: grown for a retry, else as planned. (A function
/// of the two fields, so that the scheduler's other fields stay free to change meanwhile.)
fn current<'j>(retries: &'j HashMap<JobId, Retry>, layers: &'j [Layer<'_>], id: JobId) -> &'j Job {
    retries
        .get(&id)
        .and_then(|r| r.grown.as_ref())
        .unwrap_or_else(|| {
            let (l, local) = locate(layers, id);
            layers[l].dag.job(local)
        })
}

struct Scheduler<'a, 'c, 'r> {
    rules: &'a Rules,
    /// Calls the functions of the attempt before a retry.
    eval: &'a dyn Evaluate,
    place: &'a dyn Place,
    layers: Vec<Layer<'a>>,
    growth: Option<Growth<'a>>,
    /// Jobs waiting for a checkpoint, by the checkpoint output they wait for.
    awaiting: HashMap<&'a str, Vec<JobId>>,
    /// Checkpoint jobs that finished with jobs waiting for them, not planned yet; and since when
    /// the first of them waits.
    told: Vec<JobId>,
    told_since: Option<Instant>,
    /// Every job of the layers, by rule and wildcards: its id in the newest layer that has it
    /// (while [`Growth`] may need them).
    known: FxHashMap<(RuleId, &'a Wildcards), JobId>,
    /// The records written in this pass, while [`Growth`] may need them.
    written: FxHashMap<String, Record>,
    store: &'c mut Store,
    opts: &'c RunOptions,
    events: &'c mut Events<'r>,
    reasons: HashMap<JobId, Vec<Reason>>,
    /// Running jobs that hash their first input as they read it: the path and its stat when
    /// the job started.
    hashed_by_job: HashMap<JobId, (&'a str, Stat)>,
    state: Vec<Option<State>>,
    waiting: Vec<usize>,
    critical: Vec<u32>,
    ready: BTreeSet<(Reverse<i64>, Reverse<u32>, JobId)>,
    free_cores: u32,
    free_resources: BTreeMap<String, u64>,
    temp_users: HashMap<String, usize>,
    /// Jobs wait for checkpoints: spent temp files are kept for the pass that plans them.
    keep_temp: bool,
    targets: BTreeSet<String>,
    outcome: Outcome,
    stopping: bool,
    /// What each job that ran cost, until its end is reported.
    usages: HashMap<JobId, Usage>,
    /// The jobs being retried.
    retries: HashMap<JobId, Retry>,
}

/// Removes a file, or a directory with everything inside it.
pub fn remove_file(path: &str) {
    let p = Path::new(path);
    if p.is_dir() {
        let _ = std::fs::remove_dir_all(p);
    } else {
        let _ = std::fs::remove_file(p);
    }
}

/// Makes a protected output read-only: a file, or a directory with everything inside it
/// (innermost first, so each entry can still be changed when its turn comes).
fn protect(path: &Path) {
    let inside = walkdir::WalkDir::new(path).contents_first(true);
    for entry in inside.into_iter().flatten() {
        if entry.path_is_symlink() {
            continue;
        }
        if let Ok(meta) = entry.metadata() {
            let mut perms = meta.permissions();
            perms.set_readonly(true);
            let _ = std::fs::set_permissions(entry.path(), perms);
        }
    }
}

impl<'a> Scheduler<'a, '_, '_> {
    fn label(&self, id: JobId) -> String {
        let job = self.planned(id);
        JobLabel(self.rules.get(job.rule), job).to_string()
    }

    /// The job as its current attempt runs it.
    fn job(&self, id: JobId) -> &Job {
        current(&self.retries, &self.layers, id)
    }

    /// The job as planned.
    fn planned(&self, id: JobId) -> &'a Job {
        let (l, local) = locate(&self.layers, id);
        self.layers[l].dag.job(local)
    }

    /// The jobs that use `id`'s outputs.
    fn consumers(&self, id: JobId) -> Vec<JobId> {
        let (l, local) = locate(&self.layers, id);
        let layer = &self.layers[l];
        layer
            .dag
            .consumers(local)
            .map(|c| JobId(c.0 + layer.offset))
            .collect()
    }

    /// The jobs that make `id`'s inputs.
    fn deps(&self, id: JobId) -> impl Iterator<Item = JobId> + 'a {
        let (l, local) = locate(&self.layers, id);
        let (dag, offset) = (self.layers[l].dag, self.layers[l].offset);
        dag.job(local).deps.iter().map(move |d| JobId(d.0 + offset))
    }

    /// The checker of `id`'s layer, with the job's id there.
    fn checker(&mut self, id: JobId) -> (&mut Checker<'a>, JobId) {
        let (l, local) = locate(&self.layers, id);
        (&mut self.layers[l].checker, local)
    }

    /// Forgets what every layer still in use knew of `path`.
    fn invalidate(&mut self, path: &str) {
        for layer in self.layers.iter_mut().filter(|l| l.open > 0) {
            layer.checker.invalidate(path);
        }
    }

    /// Job `id` has ended, one way or another.
    fn close(&mut self, id: JobId, state: State) {
        self.state[id.0 as usize] = Some(state);
        let (l, _) = locate(&self.layers, id);
        self.layers[l].open -= 1;
    }

    /// The part of the `-j` budget the job takes, as its place counts it.
    fn cores_of(&self, id: JobId) -> u32 {
        let job = self.job(id);
        let cores = cores_of(self.rules, job, self.opts.cores);
        self.place.cost(self.rules.get(job.rule), cores)
    }

    fn job_ref(&self, id: JobId) -> JobRef<'a> {
        let job = self.planned(id);
        JobRef {
            id,
            rule: self.rules.get(job.rule),
            job,
            cores: cores_of(self.rules, self.job(id), self.opts.cores),
        }
    }

    fn emit_end(&mut self, id: JobId, end: End<'_>, took: Duration) {
        let job = self.job_ref(id);
        let usage = self.usages.remove(&id);
        self.events.emit(&Event::JobEnd {
            job,
            end,
            took,
            usage: usage.as_ref(),
        });
    }

    /// The job's model with threads scaled down to the budget, as Snakemake scales threads.
    fn model_of(&self, id: JobId) -> Model {
        let job = self.job(id);
        let rule = self.rules.get(job.rule);
        let mut model = job.model(rule);
        if self.place.caps_threads(rule) {
            model.threads = model.threads.clamp(1, self.opts.cores.max(1));
        }
        model
    }

    fn make_ready(&mut self, id: JobId) {
        let rule = self.rules.get(self.planned(id).rule);
        self.state[id.0 as usize] = Some(State::Ready);
        self.ready.insert((
            Reverse(rule.priority),
            Reverse(self.critical[id.0 as usize]),
            id,
        ));
    }

    /// The best ready job that fits the free cores and resources.
    fn pick(&self) -> Option<(Reverse<i64>, Reverse<u32>, JobId)> {
        // Every job takes at least one core: with none free, nothing fits, and there is no need
        // to look through (possibly tens of thousands of) ready jobs after every event.
        if self.free_cores == 0 {
            return None;
        }
        self.ready.iter().copied().find(|(_, _, id)| {
            if self.stopping && !self.retries.contains_key(id) {
                return false;
            }
            let job = self.job(*id);
            self.cores_of(*id) <= self.free_cores
                && job
                    .resources(self.rules.get(job.rule))
                    .iter()
                    .all(|(k, v)| self.free_resources.get(k).is_none_or(|free| v <= free))
        })
    }

    /// Prepares a job to start: early cutoff, protected outputs, stale outputs, marks.
    /// Returns `false` if the job was settled without running.
    fn prepare(&mut self, id: JobId) -> Result<bool, Failure> {
        let reasons = self.reasons.get(&id).cloned().unwrap_or_default();
        let job = self.planned(id);
        if !job.outputs.is_empty() && !reasons.is_empty() && reasons.iter().all(Reason::is_upstream)
        {
            for f in &job.inputs {
                self.invalidate(&f.path);
            }
            let (checker, local) = self.checker(id);
            let (own, refresh) = checker.own_reasons(local);
            if own.is_empty() {
                let _ = self.record(refresh);
                return Ok(false);
            }
            self.reasons.insert(id, own);
        }
        for o in &job.outputs {
            let p = Path::new(&o.path);
            if o.kind == FileKind::Protected
                && p.exists()
                && std::fs::metadata(p).is_ok_and(|m| m.permissions().readonly())
            {
                return Err(Failure::Setup(format!(
                    "output `{}` is protected; remove it by hand if it really must be remade",
                    o.path
                )));
            }
        }
        // Stale outputs go, and so do old logs: a log tells about this run only (retries
        // append to it). Not those of a job an earlier flowrun left at work elsewhere: it is
        // making them now.
        let resumed = self.place.resumes(&self.label(id));
        for o in job.outputs.iter().chain(&job.logs).chain(&job.benchmark) {
            if resumed {
                continue;
            }
            remove_file(&o.path);
            if let Some(parent) = Path::new(&o.path)
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
            {
                std::fs::create_dir_all(parent).map_err(|e| {
                    Failure::Setup(format!("cannot create `{}`: {e}", parent.display()))
                })?;
            }
        }
        self.store
            .mark_incomplete(job.outputs.iter().map(|o| o.path.as_str()))
            .map_err(|e| Failure::Setup(e.to_string()))?;
        // The record will say what the job read: fix each input's signature now (its stat, and
        // its hash unless the job computes that as it reads the file), so an input edited while
        // the job runs is seen as changed by the next run.
        let rule = self.rules.get(job.rule);
        let deferred = crate::exec::hashed_while_read(rule, job);
        let (checker, local) = self.checker(id);
        if let Some((path, stat)) = deferred.zip(checker.sign_inputs(local, deferred)) {
            self.hashed_by_job.insert(id, (path, stat));
        }
        Ok(true)
    }

    fn release(&mut self, id: JobId) {
        self.free_cores += self.cores_of(id);
        let job = current(&self.retries, &self.layers, id);
        for (k, v) in job.resources(self.rules.get(job.rule)) {
            if let Some(free) = self.free_resources.get_mut(k) {
                *free += v;
            }
        }
    }

    fn reserve(&mut self, id: JobId) {
        self.free_cores -= self.cores_of(id);
        let job = current(&self.retries, &self.layers, id);
        for (k, v) in job.resources(self.rules.get(job.rule)) {
            if let Some(free) = self.free_resources.get_mut(k) {
                *free -= v;
            }
        }
    }

    /// Whether a failed attempt of the job leaves it a retry.
    fn may_retry(&self, id: JobId) -> bool {
        let done = self.retries.get(&id).map_or(1, |r| r.attempt);
        done <= self.rules.get(self.planned(id).rule).retries && !crate::interrupt::requested()
    }

    /// Sets up the next attempt of a job whose attempt failed after `took`: the job waits for
    /// its cores and resources again, computed anew if they grow with the attempt. A retry
    /// that would need more than `--resources` fails the job instead.
    fn retry(&mut self, id: JobId, failure: Failure, took: Duration) {
        let job = self.planned(id);
        let rule = self.rules.get(job.rule);
        let since = self
            .retries
            .get(&id)
            .map_or_else(|| Instant::now() - took, |r| r.since);
        let attempt = self.retries.get(&id).map_or(1, |r| r.attempt) + 1;
        for o in &job.outputs {
            remove_file(&o.path);
        }
        let grown = match job.at_attempt(rule, self.eval, attempt) {
            Some(Ok(grown)) => Some(grown),
            Some(Err(d)) => {
                let at = d.origin.map(|o| format!(" (at {o})")).unwrap_or_default();
                let message = format!("{failure}\nno retry: {}{at}", d.message);
                return self.fail(id, &Failure::Setup(message), took);
            }
            None => None,
        };
        self.retries.insert(
            id,
            Retry {
                attempt,
                since,
                grown,
            },
        );
        if let Some((k, v, cap)) = too_big(self.rules, self.job(id), &self.opts.resources) {
            let message = format!(
                "{failure}\nno retry: attempt {attempt} needs {k}={v}, more than --resources \
                 {k}={cap}"
            );
            return self.fail(id, &Failure::Setup(message), took);
        }
        let text = format!(
            "{} ({}/{}) after: {failure}{}",
            self.label(id),
            attempt - 1,
            rule.retries,
            self.sizes(id)
        );
        self.events.emit(&Event::Note {
            verb: "Retrying",
            job: Some(self.job_ref(id)),
            text: &text,
        });
        self.make_ready(id);
    }

    /// What a retry's threads and resources grew to, for its `Retrying` line.
    fn sizes(&self, id: JobId) -> String {
        let Some(retry) = self.retries.get(&id) else {
            return String::new();
        };
        let Some(job) = &retry.grown else {
            return String::new();
        };
        let rule = self.rules.get(job.rule);
        let mut sizes = vec![format!("threads={}", self.model_of(id).threads)];
        sizes.extend(job.resources(rule).iter().map(|(k, v)| format!("{k}={v}")));
        format!("; attempt {} takes {}", retry.attempt, sizes.join(", "))
    }

    /// A job is settled well (ran, or was cut off): wake consumers, drop spent temp files.
    fn settle(&mut self, id: JobId) {
        self.close(id, State::Done);
        for c in self.consumers(id) {
            let ci = c.0 as usize;
            if self.state[ci] == Some(State::Waiting) {
                self.waiting[ci] -= 1;
                if self.waiting[ci] == 0 {
                    self.make_ready(c);
                }
            }
        }
        for f in &self.planned(id).inputs {
            if let Some(n) = self.temp_users.get_mut(&f.path) {
                *n -= 1;
                if *n == 0 && !self.targets.contains(&f.path) {
                    if self.keep_temp {
                        self.outcome.kept_temp.push(f.path.clone());
                    } else {
                        remove_file(&f.path);
                        self.invalidate(&f.path);
                    }
                }
            }
        }
    }

    fn succeed(
        &mut self,
        id: JobId,
        took: Duration,
        input_hash: Option<u128>,
        attempt: Attempt,
    ) -> Result<(), Failure> {
        if let Some((path, stat)) = self.hashed_by_job.remove(&id) {
            // Without the job's hash, `record_for` hashes the file now.
            if let Some(hash) = input_hash {
                self.checker(id).0.adopt(path, stat, hash);
            }
        }
        let job = self.planned(id);
        for o in job.outputs.iter().filter(|o| o.kind == FileKind::Touch) {
            touch(&o.path)
                .map_err(|e| Failure::Setup(format!("cannot touch output `{}`: {e}", o.path)))?;
        }
        let mut records = Vec::new();
        for o in &job.outputs {
            self.invalidate(&o.path);
            let (checker, local) = self.checker(id);
            let Some(rec) = checker.record_for(local, &o.path) else {
                return Err(Failure::Setup(format!(
                    "the job finished but did not create output `{}`",
                    o.path
                )));
            };
            records.push((o.path.clone(), rec));
        }
        if let (Some(file), Some(usage)) = (job.benchmark.first(), self.usages.get(&id)) {
            crate::report::benchmark::write(Path::new(&file.path), took, usage).map_err(|e| {
                Failure::Setup(format!("cannot write benchmark `{}`: {e}", file.path))
            })?;
        }
        self.record(records)
            .map_err(|e| Failure::Setup(e.to_string()))?;
        for o in job.outputs.iter().filter(|o| o.kind == FileKind::Protected) {
            protect(Path::new(&o.path));
        }
        let label = self.label(id);
        if attempt == Attempt::Restored {
            self.outcome.restored += 1;
            if self.opts.verbosity == Verbosity::Verbose {
                self.events.emit(&Event::Note {
                    verb: "Restored",
                    job: Some(self.job_ref(id)),
                    text: &format!("{label} from the cache"),
                });
            }
        } else {
            self.outcome.ran += 1;
        }
        let past = Past {
            rule: self.rules.get(job.rule).name.clone(),
            finished: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64),
            seconds: took.as_secs_f64(),
        };
        // Durations only feed the ETA and `--summary -v`: losing one is no reason to fail.
        let _ = self.store.remember(&label, &past);
        self.outcome.ran_jobs.push(label);
        self.emit_end(id, End::Ok, took);
        self.settle(id);
        self.told_of(id);
        Ok(())
    }

    fn clean_failed(&mut self, id: JobId) {
        let job = self.planned(id);
        if self.opts.keep_incomplete {
            return;
        }
        for o in &job.outputs {
            remove_file(&o.path);
            self.invalidate(&o.path);
        }
        let _ = self
            .store
            .clear_incomplete(job.outputs.iter().map(|o| o.path.as_str()));
    }

    fn fail(&mut self, id: JobId, failure: &Failure, took: Duration) {
        self.fail_as(id, failure, true, took);
    }

    /// Fails a job; `started` says whether its outputs were touched. A job refused before it
    /// started (a protected output, a job too big for `--resources`) keeps its outputs.
    fn fail_as(&mut self, id: JobId, failure: &Failure, started: bool, took: Duration) {
        if started {
            self.clean_failed(id);
        }
        self.close(id, State::Failed);
        self.outcome.failed += 1;
        let label = self.label(id);
        self.outcome.failed_jobs.push(label);
        let job = self.planned(id);
        let mut message = failure.to_string();
        if let Some(log) = job.logs.first() {
            message.push_str(&format!("\nlog: {}", log.path));
        }
        if started && !self.opts.keep_incomplete && !job.outputs.is_empty() {
            message.push_str("\nits outputs were removed (use --keep-incomplete to keep them)");
        }
        self.emit_end(id, End::Failed(&message), took);
        // Everything downstream can no longer run.
        let mut stack: Vec<JobId> = self.consumers(id);
        while let Some(c) = stack.pop() {
            let ci = c.0 as usize;
            if matches!(self.state[ci], Some(State::Waiting | State::Ready)) {
                self.ready.retain(|(_, _, j)| *j != c);
                self.close(c, State::Blocked);
                self.outcome.blocked += 1;
                self.emit_end(c, End::Blocked, Duration::ZERO);
                stack.extend(self.consumers(c));
            }
        }
        if !self.opts.keep_going {
            self.stopping = true;
        }
    }
}

impl<'a> Scheduler<'a, '_, '_> {
    /// Takes a graph and its plan in, as a new layer: its jobs that run wait for their
    /// inputs' jobs (those ready go to the ready set), and its jobs that wait for a checkpoint
    /// are noted by the output they wait for.
    fn admit(&mut self, dag: &'a Dag, mut plan: Plan, checker: Checker<'a>) {
        let _ = self.record(std::mem::take(&mut plan.refresh));
        let offset = self.state.len() as u32;
        let global = |id: JobId| JobId(id.0 + offset);
        let runs: Vec<bool> = plan
            .decisions
            .iter()
            .map(|d| matches!(d, Decision::Run(_)))
            .collect();
        for id in plan.to_run(dag) {
            for f in &dag.job(id).inputs {
                let producer = dag.producer(&f.path);
                let is_temp = producer.is_some_and(|p| {
                    dag.job(p)
                        .outputs
                        .iter()
                        .any(|o| o.path == f.path && o.kind == FileKind::Temp)
                });
                if is_temp {
                    *self.temp_users.entry(f.path.clone()).or_default() += 1;
                }
            }
        }
        self.state.resize(self.state.len() + dag.len(), None);
        self.waiting.resize(self.state.len(), 0);
        self.critical.extend(critical_paths(dag, &runs));
        let open = runs.iter().filter(|r| **r).count();
        for (i, d) in plan.decisions.into_iter().enumerate() {
            let local = JobId(i as u32);
            match d {
                Decision::Run(r) => {
                    self.reasons.insert(global(local), r);
                }
                Decision::Pending(_) => {
                    self.state[global(local).0 as usize] = Some(State::Pending);
                    self.outcome.pending += 1;
                    // Through the output its functions wait for, or through the outputs they
                    // read of a checkpoint that runs again now.
                    let job = dag.job(local);
                    let through = job.awaits().into_iter().chain(
                        job.consulted()
                            .iter()
                            .map(String::as_str)
                            .filter(|p| dag.producer(p).is_some_and(|cp| runs[cp.0 as usize])),
                    );
                    for path in through {
                        self.awaiting.entry(path).or_default().push(global(local));
                    }
                }
                Decision::Fresh | Decision::Excluded => {}
            }
        }
        if self.growth.is_some() {
            self.known.extend(
                dag.jobs
                    .iter()
                    .enumerate()
                    .map(|(i, j)| ((j.rule, &j.wildcards), global(JobId(i as u32)))),
            );
        }
        self.layers.push(Layer {
            dag,
            offset,
            checker,
            open,
        });
        for id in dag.order().iter().copied().filter(|id| runs[id.0 as usize]) {
            let i = global(id).0 as usize;
            self.waiting[i] = dag
                .job(id)
                .deps
                .iter()
                .filter(|d| runs[d.0 as usize])
                .count();
            self.state[i] = Some(State::Waiting);
            if self.waiting[i] == 0 {
                self.make_ready(global(id));
            }
        }
        // Jobs that can never fit the declared resources fail up front, with the reason.
        let mut too_big: Vec<(JobId, String)> = (0..dag.len() as u32)
            .map(JobId)
            .filter(|id| runs[id.0 as usize])
            .filter_map(|id| {
                let (k, v, cap) = too_big(self.rules, dag.job(id), &self.opts.resources)?;
                let msg = format!("the job needs {k}={v}, more than --resources {k}={cap}");
                Some((global(id), msg))
            })
            .collect();
        too_big.sort();
        for (id, msg) in too_big {
            self.ready.retain(|(_, _, j)| *j != id);
            self.fail_as(id, &Failure::Setup(msg), false, Duration::ZERO);
        }
    }

    /// Writes records to the store; while jobs may still be planned in this pass, they are
    /// kept too, for what [`Scheduler::plan_batch`] judges against.
    fn record(&mut self, records: Vec<(String, Record)>) -> Result<(), StoreError> {
        self.store
            .record(records.iter().map(|(p, r)| (p.as_str(), r)))?;
        if self.growth.is_some() {
            self.written.extend(records);
        }
        Ok(())
    }

    /// Notes a checkpoint job that finished: if jobs wait for its outputs, they are planned
    /// soon ([`Scheduler::grow`]).
    fn told_of(&mut self, id: JobId) {
        let job = self.planned(id);
        if !self.rules.get(job.rule).checkpoint || self.growth.is_none() {
            return;
        }
        if job
            .outputs
            .iter()
            .any(|o| self.awaiting.contains_key(o.path.as_str()))
        {
            self.told.push(id);
            self.told_since.get_or_insert_with(Instant::now);
        }
    }

    /// At the end of the pass: the pending jobs without outputs whose own functions read no
    /// checkpoint (an `all` gathering every sample) waited only for jobs that have now been
    /// planned and settled; they are judged as the next pass would judge them (they run if a
    /// job they need ran, or if forced), saving that pass. Returns whether any was woken to
    /// run.
    fn wake(&mut self) -> bool {
        let Some(growth) = self.growth.as_ref().filter(|_| !self.stopping) else {
            return false;
        };
        let started = Instant::now();
        let sleepers: Vec<JobId> = (0..self.state.len() as u32)
            .map(JobId)
            .filter(|id| self.state[id.0 as usize] == Some(State::Pending))
            .filter(|id| {
                let job = self.planned(*id);
                job.outputs.is_empty() && job.consulted().is_empty() && job.awaits().is_none()
            })
            .collect();
        let mut woken: Vec<(JobId, Vec<Reason>)> = Vec::new();
        for id in sleepers {
            // Each job it needs, as the newest layer that has it settled it.
            let mut ran = None;
            let settled = self.deps(id).all(|d| {
                let dep = self.planned(d);
                let newest = self.known.get(&(dep.rule, &dep.wildcards)).copied();
                match newest.and_then(|g| self.state[g.0 as usize]) {
                    Some(State::Done) => {
                        ran = ran.or(newest);
                        true
                    }
                    None => true,
                    _ => false,
                }
            });
            if !settled {
                continue;
            }
            let job = self.planned(id);
            let rule = self.rules.get(job.rule);
            let label = self.label(id);
            let forced = (growth.opts.force_all || growth.opts.force.contains(&rule.name))
                && !growth.opts.done.contains(&label)
                && !self.outcome.ran_jobs.contains(&label);
            let reasons = match ran {
                _ if forced => vec![Reason::Forced],
                Some(d) => vec![Reason::Upstream {
                    job: self.label(d),
                    others: 0,
                }],
                None => Vec::new(),
            };
            self.outcome.pending -= 1;
            // One woken to run is not settled yet for the jobs after it.
            if reasons.is_empty() {
                self.state[id.0 as usize] = None;
            } else {
                self.state[id.0 as usize] = Some(State::Waiting);
                woken.push((id, reasons));
            }
        }
        if woken.is_empty() {
            return false;
        }
        let planned: Vec<Planned<'_>> = woken
            .iter()
            .map(|(id, reasons)| Planned {
                job: self.job_ref(*id),
                reasons,
                past: None,
            })
            .collect();
        let text = format!(
            "{} more job(s) that waited for the jobs the checkpoints told of, in {:.0?}",
            planned.len(),
            started.elapsed()
        );
        self.events.emit(&Event::Grown {
            jobs: &planned,
            text: &text,
            took: started.elapsed(),
        });
        drop(planned);
        for (id, reasons) in woken {
            let (l, _) = locate(&self.layers, id);
            self.layers[l].open += 1;
            self.reasons.insert(id, reasons);
            self.make_ready(id);
        }
        true
    }

    /// Whether to plan the jobs of the checkpoints that finished now: when a core would
    /// otherwise have nothing to do, or when they have waited long enough.
    fn growth_due(&self) -> bool {
        let Some(since) = self.told_since else {
            return false;
        };
        !self.stopping
            && (since.elapsed() >= GROW_AFTER || (self.free_cores > 0 && self.pick().is_none()))
    }

    /// Plans the jobs that waited for the checkpoints that finished, and what follows them
    /// that waited for nothing else, as a new layer, while the other jobs keep running. Their
    /// graph is resolved from their outputs, so it holds what depends on the checkpoints and
    /// what that needs, and it is planned against the store as the run has left it so far.
    /// Where that graph meets a job of this run that is still to end (or one this run judged
    /// otherwise), they stay pending: the next pass plans the whole graph again.
    fn grow(&mut self) {
        let started = Instant::now();
        self.told_since = None;
        let mut batch: Vec<JobId> = Vec::new();
        let mut in_batch: HashSet<JobId> = HashSet::new();
        let told = std::mem::take(&mut self.told);
        let checkpoints = told.len();
        for cp in told {
            for o in &self.planned(cp).outputs {
                for r in self.awaiting.remove(o.path.as_str()).unwrap_or_default() {
                    if self.state[r.0 as usize] == Some(State::Pending) && in_batch.insert(r) {
                        batch.push(r);
                    }
                }
            }
        }
        // What waited only through them (a per-sample report after a per-sample gather); not an
        // aggregate that waits for other checkpoints too, nor a job without outputs to ask for.
        let mut i = 0;
        while i < batch.len() {
            for c in self.consumers(batch[i]) {
                let follows = self.state[c.0 as usize] == Some(State::Pending)
                    && !in_batch.contains(&c)
                    && !self.planned(c).outputs.is_empty()
                    && self.deps(c).all(|d| {
                        self.state[d.0 as usize] != Some(State::Pending) || in_batch.contains(&d)
                    });
                if follows {
                    in_batch.insert(c);
                    batch.push(c);
                }
            }
            i += 1;
        }
        let Some(layer) = self.plan_batch(&batch) else {
            return;
        };
        let (dag, plan, checker, moved) = layer;
        for g in moved {
            self.state[g.0 as usize] = Some(State::Moved);
            self.outcome.pending -= 1;
        }
        let offset = self.state.len() as u32;
        let planned: Vec<Planned<'_>> = plan
            .to_run(dag)
            .filter_map(|id| match plan.decision(id) {
                Decision::Run(reasons) => {
                    let job = dag.job(id);
                    let job = JobRef {
                        id: JobId(id.0 + offset),
                        rule: self.rules.get(job.rule),
                        job,
                        cores: cores_of(self.rules, job, self.opts.cores),
                    };
                    Some(Planned {
                        job,
                        reasons: reasons.as_slice(),
                        past: None,
                    })
                }
                _ => None,
            })
            .collect();
        let text = format!(
            "{} more job(s) that {checkpoints} checkpoint job(s) told of, in {:.0?}",
            planned.len(),
            started.elapsed()
        );
        // Jobs that were all up to date (a checkpoint remade its outputs identical) settle
        // without a word, as in a plan before the run.
        if !planned.is_empty() {
            self.events.emit(&Event::Grown {
                jobs: &planned,
                text: &text,
                took: started.elapsed(),
            });
        }
        drop(planned);
        self.admit(dag, plan, checker);
    }

    /// The graph of the jobs `batch`, its plan and checker, and the pending jobs it takes
    /// over; `None` when they must wait for the next pass.
    #[allow(clippy::type_complexity)]
    fn plan_batch(&mut self, batch: &[JobId]) -> Option<(&'a Dag, Plan, Checker<'a>, Vec<JobId>)> {
        let (dags, resolve) = self.growth.as_ref().map(|g| (g.dags, g.resolve))?;
        let targets: Vec<Target> = batch
            .iter()
            .filter_map(|id| self.planned(*id).outputs.first())
            .map(|o| Target::File(o.path.clone()))
            .collect();
        let dag: &'a Dag = dags.alloc(resolve(&targets)?);
        // A rule chosen otherwise for an output would make another job.
        let same = batch.iter().all(|id| {
            let job = self.planned(*id);
            dag.find(job.rule, &job.wildcards).is_some()
        });
        if !same {
            return None;
        }
        let growth = self.growth.as_mut()?;
        let paths = dag
            .jobs
            .iter()
            .flat_map(|j| j.inputs.iter().chain(&j.outputs))
            .map(|f| f.path.as_str());
        // The store as the run has left it: what the pass started with, and what it wrote since
        // (kept in memory: looking each file up in the store cost more than the rest of the
        // planning together).
        let mut snapshot = Snapshot::default();
        for p in paths {
            let written = self.written.get(p);
            if let Some(r) = written.or_else(|| growth.base.records.get(p)) {
                snapshot.records.insert(p.to_string(), r.clone());
            }
            if written.is_none() && growth.base.incomplete.contains(p) {
                snapshot.incomplete.insert(p.to_string());
            }
        }
        let snapshot: &'a Snapshot = growth.snapshots.alloc(snapshot);
        if crate::graph::dropped::may_drop(self.rules, dag, snapshot) {
            return None;
        }
        // What ran or failed since the last time: `-R` and `-F` force a job once per run, and
        // `-k` does not try a failed one again.
        let (ran, failed) = growth.taken;
        growth.taken = (self.outcome.ran_jobs.len(), self.outcome.failed_jobs.len());
        growth
            .opts
            .done
            .extend(self.outcome.ran_jobs[ran..].iter().cloned());
        growth
            .opts
            .failed
            .extend(self.outcome.failed_jobs[failed..].iter().cloned());
        let plan = crate::graph::plan::check(self.rules, dag, snapshot, &growth.opts).ok()?;
        let mut moved = Vec::new();
        for (i, job) in dag.jobs.iter().enumerate() {
            let settled = matches!(plan.decisions[i], Decision::Fresh | Decision::Excluded);
            let Some(&g) = self.known.get(&(job.rule, &job.wildcards)) else {
                continue;
            };
            match self.state[g.0 as usize] {
                Some(State::Pending) => moved.push(g),
                None | Some(State::Done) if settled => {}
                _ => return None,
            }
        }
        let checker = Checker::new(self.rules, dag, snapshot, growth.opts.triggers);
        Some((dag, plan, checker, moved))
    }
}

/// Critical path length of every running job: 1 + the longest chain of running consumers.
fn critical_paths(dag: &Dag, runs: &[bool]) -> Vec<u32> {
    let mut cp = vec![0u32; dag.len()];
    for &id in dag.order().iter().rev() {
        if !runs[id.0 as usize] {
            continue;
        }
        let below = dag
            .consumers(id)
            .map(|c| cp[c.0 as usize])
            .max()
            .unwrap_or(0);
        cp[id.0 as usize] = below + 1;
    }
    cp
}

/// Runs every job the plan says must run, and those that the checkpoints it runs tell of,
/// emitting job events (the caller emits the run's start and end).
pub fn run<'a>(
    ctx: RunContext<'a>,
    plan: Plan,
    checker: Checker<'a>,
    opts: &RunOptions,
    events: &mut Events<'_>,
) -> Outcome {
    let RunContext {
        rules,
        dag,
        runtime,
        shell,
        place,
        store,
        growth,
    } = ctx;
    // While jobs wait for a checkpoint, a temporary file may be needed by them, or by jobs
    // that only the checkpoint's outputs will tell of: spent ones are kept for the passes
    // that plan them (`session` removes them after the last).
    let keep_temp = plan
        .decisions
        .iter()
        .any(|d| matches!(d, Decision::Pending(_)));
    // What the user asked for: a target job's outputs, or, for a target without outputs (an
    // `all`), its inputs, which Snakemake too keeps even when they are `temp()`.
    let targets = dag
        .targets
        .iter()
        .flat_map(|t| {
            let job = dag.job(*t);
            let asked = if job.outputs.is_empty() {
                &job.inputs
            } else {
                &job.outputs
            };
            asked.iter().map(|f| f.path.clone())
        })
        .collect();
    let mut s = Scheduler {
        rules,
        eval: runtime,
        place,
        layers: Vec::new(),
        growth: growth.filter(|_| keep_temp),
        awaiting: HashMap::new(),
        told: Vec::new(),
        told_since: None,
        written: FxHashMap::default(),
        known: FxHashMap::default(),
        store,
        opts,
        events,
        reasons: HashMap::new(),
        hashed_by_job: HashMap::new(),
        state: Vec::new(),
        waiting: Vec::new(),
        critical: Vec::new(),
        ready: BTreeSet::new(),
        free_cores: opts.cores.max(1),
        free_resources: opts.resources.clone(),
        temp_users: HashMap::new(),
        keep_temp,
        targets,
        outcome: Outcome::default(),
        stopping: false,
        usages: HashMap::new(),
        retries: HashMap::new(),
    };
    s.admit(dag, plan, checker);

    let (tx, rx) = mpsc::channel::<Message>();
    let mut running = 0usize;
    std::thread::scope(|scope| {
        loop {
            if crate::interrupt::requested() {
                break;
            }
            if s.growth_due() {
                s.grow();
            }
            // After a failure without --keep-going, only retries start (`pick`).
            while let Some(entry) = s.pick() {
                s.ready.remove(&entry);
                let id = entry.2;
                let retry = s.retries.get(&id);
                let (attempt, since) = retry.map_or((1, Instant::now()), |r| (r.attempt, r.since));
                // A retry's job was prepared and announced for its first attempt.
                if retry.is_none() {
                    match s.prepare(id) {
                        Ok(false) => {
                            s.outcome.cutoff += 1;
                            s.emit_end(id, End::Skipped, Duration::ZERO);
                            s.settle(id);
                            s.told_of(id);
                            continue;
                        }
                        Err(f) => {
                            s.fail_as(id, &f, false, Duration::ZERO);
                            continue;
                        }
                        Ok(true) => {}
                    }
                }
                s.reserve(id);
                s.state[id.0 as usize] = Some(State::Running);
                running += 1;
                if attempt == 1 {
                    let reasons = s.reasons.get(&id).map_or(&[][..], Vec::as_slice);
                    s.events.emit(&Event::JobStart {
                        job: s.job_ref(id),
                        reasons,
                    });
                }
                let job = s.planned(id);
                let rule = rules.get(job.rule);
                if matches!(rule.work, Work::Nothing) {
                    // A rule without work (a target gathering inputs) is done at once: no thread
                    // to start and wait for at the very end of most runs.
                    let _ = tx.send(Message {
                        id,
                        result: Ok(Attempt::Ran),
                        took: Duration::ZERO,
                        usage: Usage::default(),
                        input_hash: None,
                    });
                    continue;
                }
                let grown = s.retries.get(&id).and_then(|r| r.grown.clone());
                let label = s.label(id);
                let model = s.model_of(id);
                let verbose = opts.verbosity == Verbosity::Verbose;
                let input_hash = s.hashed_by_job.contains_key(&id).then(|| Mutex::new(None));
                let tx = tx.clone();
                scope.spawn(move || {
                    let ctx = JobContext {
                        rule,
                        job: grown.as_ref().unwrap_or(job),
                        model,
                        runtime,
                        shell,
                        verbose,
                        input_hash,
                        attempt,
                        usage: Default::default(),
                    };
                    let result = place.attempt(&ctx, &label, opts.grace);
                    let input_hash = ctx
                        .input_hash
                        .and_then(|slot| slot.into_inner().ok().flatten());
                    let _ = tx.send(Message {
                        id,
                        result,
                        took: since.elapsed(),
                        usage: ctx.usage.total(),
                        input_hash,
                    });
                });
            }
            if running == 0 && !s.wake() {
                break;
            }
            let message = rx.recv_timeout(Duration::from_millis(50));
            s.events.tick();
            let Ok(Message {
                id,
                result,
                took,
                usage,
                input_hash,
            }) = message
            else {
                continue;
            };
            running -= 1;
            if !matches!(rules.get(s.planned(id).rule).work, Work::Nothing) {
                s.usages.insert(id, usage);
            }
            s.release(id);
            let result = match result {
                Err(failure) if s.may_retry(id) => {
                    s.retry(id, failure, took);
                    continue;
                }
                result => result,
            };
            let result = result.and_then(|attempt| {
                if crate::interrupt::requested() {
                    Err(Failure::Setup("interrupted".into()))
                } else {
                    s.succeed(id, took, input_hash, attempt)
                }
            });
            if let Err(f) = result {
                if crate::interrupt::requested() {
                    s.clean_failed(id);
                    s.close(id, State::Failed);
                    s.emit_end(id, End::Interrupted, took);
                } else {
                    s.fail(id, &f, took);
                }
            }
        }
        if crate::interrupt::requested() {
            s.outcome.interrupted = true;
            if running > 0 {
                s.events.emit(&Event::Note {
                    verb: "Stopping",
                    job: None,
                    text: &format!("{running} running job(s)"),
                });
            }
            place.stop_all(opts.grace);
            while running > 0 {
                let Ok(Message {
                    id, took, usage, ..
                }) = rx.recv()
                else {
                    break;
                };
                running -= 1;
                s.usages.insert(id, usage);
                s.clean_failed(id);
                s.emit_end(id, End::Interrupted, took);
            }
            // Jobs between two attempts end here too.
            let between: Vec<(JobId, Duration)> = s
                .retries
                .iter()
                .filter(|(id, _)| s.state[id.0 as usize] == Some(State::Ready))
                .map(|(id, r)| (*id, r.since.elapsed()))
                .collect();
            for (id, took) in between {
                s.clean_failed(id);
                s.close(id, State::Failed);
                s.emit_end(id, End::Interrupted, took);
            }
        }
    });
    s.outcome
}

/// Creates `path` (and its directory) or sets its modification time to now: a `touch()`
/// output after its job succeeded.
fn touch(path: &str) -> std::io::Result<()> {
    let p = std::path::Path::new(path);
    if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(p)?
        .set_modified(std::time::SystemTime::now())
}
