//! The job graph: rules bound to wildcard values, resolved backward from the targets.
//!
//! Like Snakemake, we start from the wanted files and ask which rule can make each one; the
//! matching output pattern binds the wildcards, which fix the job's inputs, which are resolved
//! in turn. Job ids are assigned in discovery order, which depends only on the targets and the
//! rules, so the graph (and everything printed from it) is the same on every run.

use std::cmp::Reverse;
use std::collections::BTreeMap;
use std::collections::{BinaryHeap, VecDeque};
use std::fmt;
use std::path::Path;

use hashbrown::HashTable;
use petgraph::graph::{DiGraph, NodeIndex};
use rayon::prelude::*;
use rustc_hash::{FxBuildHasher, FxHashMap as HashMap, FxHashSet as HashSet};
use std::hash::BuildHasher;

use crate::diagnostic::{did_you_mean, Diagnostic};
use crate::graph::filestate::{self, Stat};
use crate::graph::manifest::Files;
use crate::rules::decl::{FileDecl, FileKind, Model};
use crate::rules::function::{BindError, Bound, Computed, Evaluate, Statics};
use crate::rules::pattern::Wildcards;
use crate::rules::registry::{File, Rule, RuleId, Rules, Work};
use crate::rules::template::Names;

mod choose;

/// Index of a job in the graph (equal to its node index).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobId(pub u32);

impl JobId {
    fn node(self) -> NodeIndex {
        NodeIndex::new(self.0 as usize)
    }
}

/// A concrete file of a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobFile {
    pub name: Option<String>,
    pub path: String,
    pub kind: FileKind,
    /// `rules("b").output` as an input: the rule that must make it.
    pub from_rule: Option<RuleId>,
    /// Declared with `directory()`: its signature is a manifest of what is inside.
    pub directory: bool,
}

/// A rule bound to wildcard values.
#[derive(Debug, Clone)]
pub struct Job {
    pub rule: RuleId,
    pub wildcards: Wildcards,
    pub inputs: Vec<JobFile>,
    pub outputs: Vec<JobFile>,
    pub logs: Vec<JobFile>,
    /// The job's `benchmark` file, if its rule has one.
    pub benchmark: Vec<JobFile>,
    /// Jobs making this job's inputs, without repeats, in input order.
    pub deps: Vec<JobId>,
    /// What the rule's functions of the wildcards gave this job beyond its files (params,
    /// threads, resources); `None` for the jobs of rules without such functions.
    pub computed: Option<Box<Computed>>,
}

impl Job {
    /// The checkpoint output this job waits for before its functions can tell its inputs.
    pub fn awaits(&self) -> Option<&str> {
        self.computed.as_ref().and_then(|c| c.awaits.as_deref())
    }

    /// The checkpoint outputs this job's functions read.
    pub fn consulted(&self) -> &[String] {
        self.computed.as_ref().map_or(&[], |c| &c.consulted)
    }

    /// The job's params: its rule's, or what a params function gave.
    pub fn params<'a>(&'a self, rule: &'a Rule) -> &'a serde_json::Map<String, serde_json::Value> {
        self.computed
            .as_ref()
            .and_then(|c| c.params.as_ref())
            .unwrap_or(&rule.params)
    }

    /// The job's declared resources.
    pub fn resources<'a>(&'a self, rule: &'a Rule) -> &'a BTreeMap<String, u64> {
        self.computed
            .as_ref()
            .and_then(|c| c.resources.as_ref())
            .unwrap_or(&rule.resources)
    }

    /// The rule's model with the job's `threads`.
    pub fn model(&self, rule: &Rule) -> Model {
        let mut model = rule.model;
        if let Some(threads) = self.computed.as_ref().and_then(|c| c.threads) {
            model.threads = threads;
        }
        model
    }

    /// The job as its attempt `attempt` runs (2 for the first retry), when `rule` has
    /// `threads` or `resources` functions of the attempt (`|w, attempt|`): those computed
    /// again, and the rule's templates checked against the resources they gave. `None` when
    /// the rule has none, so every attempt is the same.
    pub fn at_attempt(
        &self,
        rule: &Rule,
        eval: &dyn Evaluate,
        attempt: u32,
    ) -> Option<Result<Job, Diagnostic>> {
        if rule.functions.by_attempt.is_empty() {
            return None;
        }
        let sizes = rule.functions.sizes_at(
            eval,
            (&rule.name, &JobLabel(rule, self)),
            &self.wildcards,
            &rule.resources,
            attempt,
        );
        Some(sizes.and_then(|sizes| {
            let mut job = self.clone();
            let computed = job.computed.get_or_insert_with(Default::default);
            computed.threads = sizes.threads;
            computed.resources = sizes.resources;
            check_templates(rule, &job)?;
            Ok(job)
        }))
    }
}

/// What the user asked for on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Rule(String),
    File(String),
}

impl Target {
    /// A rule name if a rule has that name, else a file.
    pub fn parse(word: &str, rules: &Rules) -> Self {
        if rules.by_name(word).is_some() {
            Target::Rule(word.to_string())
        } else {
            Target::File(crate::rules::pattern::normalize_path(word))
        }
    }
}

/// The resolved graph.
pub struct Dag {
    pub jobs: Vec<Job>,
    pub graph: DiGraph<(), ()>,
    pub targets: Vec<JobId>,
    /// Every path the resolution asked about, with the job making it (`None`: a source).
    producer: HashMap<String, Option<JobId>>,
    order: Vec<JobId>,
    /// The inputs no rule makes, as (job, input index), with what the existence check found.
    sources: Vec<(JobId, usize, Stat)>,
    /// The checkpoint outputs functions read, walked for the planner meanwhile.
    walks: Walks,
    /// Jobs by (rule, wildcards), as the resolution found them (see [`Dag::find`]).
    by_key: HashTable<JobId>,
}

/// What a walk of a checkpoint's output found: its stat (over the whole tree for a
/// directory) with the files inside, `None` if it does not exist.
pub type Walked = (String, Option<(Stat, Files)>);

/// The checkpoint outputs that functions read, walked on a thread of their own while the
/// graph is still being resolved. The planner needs each one's stat over its whole tree (a
/// `directory()` output is judged by its manifest), and the rest of the resolution is one
/// thread's work: at 10,000 checkpoints, walking their directories on the idle core took a
/// tenth of a no-op off its wall time. Stats taken moments before planning, as the sources'
/// are.
#[derive(Default)]
struct Walks(std::sync::Mutex<Vec<std::thread::JoinHandle<Vec<Walked>>>>);

impl Walks {
    /// Starts walking `paths` (a batch of them: a thread is worth it for many).
    fn start(&mut self, mut paths: Vec<String>) {
        paths.sort_unstable();
        paths.dedup();
        if paths.len() < PARALLEL_BINDS {
            return;
        }
        let walk = move || {
            paths
                .into_iter()
                .map(|p| {
                    let found = crate::graph::manifest::stat_and_files(Path::new(&p));
                    (p, found)
                })
                .collect()
        };
        if let Ok(handle) = std::thread::Builder::new().name("walks".into()).spawn(walk) {
            self.0
                .get_mut()
                .unwrap_or_else(|e| e.into_inner())
                .push(handle);
        }
    }

    /// What the walks found, once they end (each is waited for only once).
    fn take(&self) -> Vec<Walked> {
        let handles = std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()));
        handles
            .into_iter()
            .filter_map(|h| h.join().ok())
            .flatten()
            .collect()
    }
}

/// A label for a job: `rule` or `rule[a=1,b=x]`.
pub struct JobLabel<'a>(pub &'a Rule, pub &'a Job);

impl fmt::Display for JobLabel<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_label(f, &self.0.name, &self.1.wildcards)
    }
}

/// The label of rule `name`'s job for `wildcards` (for a job that is not in a graph).
pub fn label(name: &str, wildcards: &Wildcards) -> String {
    let mut out = String::new();
    let _ = write_label(&mut out, name, wildcards);
    out
}

fn write_label(f: &mut impl fmt::Write, name: &str, wildcards: &Wildcards) -> fmt::Result {
    f.write_str(name)?;
    if !wildcards.is_empty() {
        f.write_str("[")?;
        for (i, (k, v)) in wildcards.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{k}={v}")?;
        }
        f.write_str("]")?;
    }
    Ok(())
}

/// How deep a chain of wildcard jobs may go before we call it a runaway recursion.
const MAX_DEPTH: usize = 10_000;

/// Longest path a job may want (Linux's `PATH_MAX`): a wildcard chain that grows its paths
/// hits this long before `MAX_DEPTH`, while memory and time are still small.
const MAX_PATH_LEN: usize = 4096;

fn job_files(decls: Vec<FileDecl>) -> Vec<JobFile> {
    decls
        .into_iter()
        .map(|d| JobFile {
            name: d.name,
            path: d.path,
            kind: d.kind,
            directory: d.directory,
            // A path a function gave: no `rules("b").output` promise travels with it.
            from_rule: None,
        })
        .collect()
}

fn as_decls(files: Vec<JobFile>) -> Vec<FileDecl> {
    files
        .into_iter()
        .map(|f| FileDecl {
            name: f.name,
            path: f.path,
            kind: f.kind,
            directory: f.directory,
            from_rule: None,
            report: None,
        })
        .collect()
}

fn bind(files: &[File], w: &Wildcards) -> Vec<JobFile> {
    files
        .iter()
        .map(|f| JobFile {
            name: f.name.clone(),
            // Patterns were checked against the output wildcards when the rules were built.
            path: f
                .pattern
                .format(w)
                .unwrap_or_else(|_| f.pattern.as_str().to_string()),
            kind: f.kind,
            from_rule: f.from_rule,
            directory: f.directory,
        })
        .collect()
}

/// Checks the rule's shell command and message against the names and counts of files, params
/// and resources its functions gave this job, which loading could not check: `{input.reads[1]}`
/// of a job given one read is an error naming the job, not an empty word in its command.
fn check_templates(rule: &Rule, job: &Job) -> Result<(), Diagnostic> {
    if rule.functions.per_job_sections().is_empty() {
        return Ok(());
    }
    fn files(files: &[JobFile]) -> Vec<Option<&str>> {
        files.iter().map(|f| f.name.as_deref()).collect()
    }
    let names = Names {
        input: files(&job.inputs),
        output: files(&job.outputs),
        log: files(&job.logs),
        params: job.params(rule).keys().map(String::as_str).collect(),
        wildcards: job.wildcards.iter().map(|(k, _)| k.as_str()).collect(),
        resources: job.resources(rule).keys().map(String::as_str).collect(),
        per_job: Vec::new(),
    };
    let shell = match &rule.work {
        Work::Shell(t) => Some(("shell", t)),
        _ => None,
    };
    for (what, t) in shell
        .into_iter()
        .chain(rule.message.as_ref().map(|m| ("message", m)))
    {
        t.check(&names).map_err(|e| {
            Diagnostic::new(format!(
                "rule `{}`, job {}: {what}: {e}",
                rule.name,
                JobLabel(rule, job)
            ))
            .at(rule.origin.clone())
        })?;
    }
    Ok(())
}

/// An input of a job: (job, index among its inputs).
type InputAt = (JobId, usize);

/// Whether a checkpoint output has been made and may be read; asked from every core.
type Available<'a> = &'a (dyn Fn(&str) -> bool + Sync);

/// From how many jobs at once their functions are called on every core: below it, handing
/// the calls to the thread pool costs more than it gains.
const PARALLEL_BINDS: usize = 32;

/// A job's files as written, which its functions add to: (job, inputs, logs).
type Unbound = (JobId, Vec<FileDecl>, Vec<FileDecl>);

struct Builder<'a> {
    rules: &'a Rules,
    eval: &'a dyn Evaluate,
    /// Whether a checkpoint output has been made (see [`Dag::resolve`]).
    available: Available<'a>,
    /// Whether any rule has a `directory()` output.
    directories: bool,
    jobs: Vec<Job>,
    depth: Vec<usize>,
    /// Jobs by (rule, wildcards), holding ids only: the key lives in the job itself.
    by_key: HashTable<JobId>,
    producer: HashMap<String, Option<JobId>>,
    /// Inputs no rule makes, as (job, input index): checked on disk once resolution ends.
    sources: Vec<(JobId, usize)>,
    queue: VecDeque<JobId>,
    /// Jobs whose functions of the wildcards have not run yet (see [`Builder::call_functions`]).
    unbound: Vec<JobId>,
    errors: Vec<Diagnostic>,
    /// What the look-ahead of [`choose`] learnt: whether a rule bound to wildcards can run.
    feasible: HashMap<(RuleId, Wildcards), bool>,
    walks: Walks,
}

fn key_hash(rule: RuleId, w: &Wildcards) -> u64 {
    FxBuildHasher.hash_one((rule, w))
}

impl Builder<'_> {
    fn job(&mut self, rule: RuleId, w: Wildcards, depth: usize) -> JobId {
        let hash = key_hash(rule, &w);
        let jobs = &self.jobs;
        let same = |id: &JobId| {
            let j = &jobs[id.0 as usize];
            j.rule == rule && j.wildcards == w
        };
        if let Some(id) = self.by_key.find(hash, same) {
            return *id;
        }
        let r = self.rules.get(rule);
        let id = JobId(self.jobs.len() as u32);
        let job = Job {
            rule,
            inputs: bind(&r.inputs, &w),
            outputs: bind(&r.outputs, &w),
            logs: bind(&r.logs, &w),
            benchmark: bind(&r.benchmark, &w),
            wildcards: w,
            deps: Vec::new(),
            computed: None,
        };
        let (functions, log_functions) = (!r.functions.is_empty(), !r.functions.log.is_empty());
        self.jobs.push(job);
        self.depth.push(depth);
        self.index(hash, id);
        if log_functions {
            // Its logs are known only from its functions, and may be what other jobs ask for.
            self.call_functions(vec![id]);
        } else if functions {
            self.unbound.push(id);
        }
        let job = &self.jobs[id.0 as usize];
        for o in job.outputs.iter().chain(&job.logs) {
            self.producer.insert(o.path.clone(), Some(id));
        }
        self.check_paths(id, depth);
        self.queue.push_back(id);
        id
    }

    /// Files job `id` (whose key hashes to `hash`) in the index by rule and wildcards.
    fn index(&mut self, hash: u64, id: JobId) {
        let jobs = &self.jobs;
        self.by_key.insert_unique(hash, id, |id| {
            let j = &jobs[id.0 as usize];
            key_hash(j.rule, &j.wildcards)
        });
    }

    /// Runs the functions of the wildcards of jobs `ids`, once each: a job is bound once per
    /// graph. A job's functions run when it is created only where they give its logs (which
    /// other jobs may ask for); otherwise they wait until the next job is taken from the
    /// queue, so that the functions of all the jobs one job asked for (a gather per sample, each
    /// listing its checkpoint's directory) run together, on every core (each thread with its own
    /// copy of what the functions captured). The results are taken in job order: errors come
    /// in the same order on every run. A failing function is reported and leaves the job with
    /// its written files only.
    fn call_functions(&mut self, ids: Vec<JobId>) {
        let (rules, eval, available) = (self.rules, self.eval, self.available);
        let unbound: Vec<Unbound> = ids
            .into_iter()
            .map(|id| {
                let job = &mut self.jobs[id.0 as usize];
                let inputs = as_decls(std::mem::take(&mut job.inputs));
                (id, inputs, as_decls(std::mem::take(&mut job.logs)))
            })
            .collect();
        let jobs = &self.jobs;
        let call = |(id, inputs, logs): &Unbound| {
            let job = &jobs[id.0 as usize];
            let rule = rules.get(job.rule);
            let statics = Statics {
                inputs: inputs.clone(),
                logs: logs.clone(),
                params: &rule.params,
                resources: &rule.resources,
                outputs: if rule.functions.with_files.is_empty() {
                    Vec::new()
                } else {
                    job.outputs
                        .iter()
                        .map(|f| (f.name.clone(), f.path.clone()))
                        .collect()
                },
                available,
            };
            let label = JobLabel(rule, job);
            rule.functions
                .bind(eval, (&rule.name, &label), &job.wildcards, statics)
        };
        let results: Vec<_> = if unbound.len() >= PARALLEL_BINDS {
            unbound.par_iter().map(call).collect()
        } else {
            unbound.iter().map(call).collect()
        };
        let consulted: Vec<String> = results
            .iter()
            .filter_map(|r| r.as_ref().ok())
            .flat_map(|b| b.consulted.iter().cloned())
            .collect();
        self.walks.start(consulted);
        for ((id, inputs, logs), result) in unbound.into_iter().zip(results) {
            self.take_bound(id, (inputs, logs), result);
        }
    }

    /// Gives job `id` what its functions returned (`written`: its inputs and logs as written).
    fn take_bound(
        &mut self,
        id: JobId,
        (inputs, logs): (Vec<FileDecl>, Vec<FileDecl>),
        result: Result<Bound, BindError>,
    ) {
        let rule = self.rules.get(self.jobs[id.0 as usize].rule);
        let job = &mut self.jobs[id.0 as usize];
        match result {
            Ok(bound) => {
                job.inputs = job_files(bound.inputs.unwrap_or(inputs));
                job.logs = job_files(bound.logs.unwrap_or(logs));
                job.computed = bound.computed;
                if !bound.consulted.is_empty() {
                    job.computed.get_or_insert_with(Default::default).consulted = bound.consulted;
                }
                if let Err(d) = check_templates(rule, job) {
                    self.errors.push(d);
                }
            }
            Err(BindError::Pending(path)) => {
                // It waits for the checkpoint job: that output is its input until then.
                job.inputs = job_files(inputs);
                job.inputs.push(JobFile {
                    name: None,
                    path: path.clone(),
                    kind: FileKind::Plain,
                    directory: false,
                    from_rule: None,
                });
                job.logs = job_files(logs);
                job.computed = Some(Box::new(Computed {
                    awaits: Some(path),
                    ..Default::default()
                }));
            }
            Err(BindError::Failed(mut d)) => {
                job.inputs = job_files(inputs);
                job.logs = job_files(logs);
                if d.origin.is_none() {
                    d.origin = rule.origin.clone();
                }
                self.errors.push(d);
            }
        }
    }

    /// Refuses a job whose outputs or logs, with its wildcard values, would lie outside the
    /// working directory (unless its rule allows it) or be too long for the file system.
    fn check_paths(&mut self, id: JobId, depth: usize) {
        let job = &self.jobs[id.0 as usize];
        let rule = self.rules.get(job.rule);
        for f in job.outputs.iter().chain(&job.logs).chain(&job.benchmark) {
            let label = JobLabel(rule, job);
            let problem = match crate::rules::pattern::outside_workdir(&f.path) {
                Some(how) if !rule.allow_outside => Some(format!(
                    "{label} would write `{}`, which {how}; flowrun writes only inside the working directory",
                    crate::rules::pattern::shorten(&f.path)
                )),
                // Deeper down, a path that grows too long is a runaway recursion, reported
                // as such by `producer_of`.
                _ if depth > 1 => None,
                _ => crate::rules::pattern::path_too_long(&f.path).map(|m| format!("{label}: {m}")),
            };
            if let Some(problem) = problem {
                self.errors.push(
                    Diagnostic::new(problem)
                    .at(rule.origin.clone())
                    .hint("constrain the wildcards with `wildcard_constraints` (e.g. `[^/]+`), or give the rule `allow_outside: true` to write outside on purpose"),
                );
                return;
            }
        }
    }

    /// The job whose `directory()` output holds `path`, if the graph has one: a file inside a
    /// directory is made by the directory's job.
    fn inside_directory(&self, path: &str) -> Option<JobId> {
        if !self.directories {
            return None;
        }
        let mut at = Path::new(path).parent();
        while let Some(dir) = at.filter(|d| !d.as_os_str().is_empty()) {
            let key = dir.to_str()?;
            if let Some(Some(id)) = self.producer.get(key) {
                let job = &self.jobs[id.0 as usize];
                if job.outputs.iter().any(|o| o.directory && o.path == key) {
                    return Some(*id);
                }
            }
            at = dir.parent();
        }
        None
    }

    /// The job that makes `path`, if a rule can (only rule `from_rule`, when given); an error
    /// if several rules tie. `requester` is the job that needs it.
    fn producer_of(
        &mut self,
        path: &str,
        depth: usize,
        from_rule: Option<RuleId>,
        requester: Option<JobId>,
    ) -> Result<Option<JobId>, Diagnostic> {
        if let Some(p) = self.producer.get(path) {
            return Ok(*p);
        }
        if let Some(p) = self.inside_directory(path) {
            return Ok(Some(p));
        }
        let mut candidates = match requester {
            Some(id) => self
                .rules
                .producers_for(path, &self.jobs[id.0 as usize].wildcards),
            None => self.rules.producers(path),
        };
        if let Some(from) = from_rule {
            candidates.retain(|(id, _)| *id == from);
            if candidates.is_empty() {
                let rule = self.rules.get(from);
                return Err(Diagnostic::new(format!(
                    "`{path}` is taken from `rules(\"{}\").output`, but rule `{}` does not make it",
                    rule.name, rule.name
                ))
                .at(rule.origin.clone()));
            }
        }
        if candidates.is_empty() {
            self.producer.insert(path.to_string(), None);
            return Ok(None);
        }
        if candidates.len() > 1 {
            match self.choose(path, candidates, requester)? {
                choose::Choice::Source => {
                    self.producer.insert(path.to_string(), None);
                    return Ok(None);
                }
                choose::Choice::Rule(rule, w) => candidates = vec![(rule, w)],
            }
        }
        if crate::rules::pattern::outside_workdir(path).is_some() {
            // Only rules that say so write outside the working directory; an existing file
            // there is a source, never overwritten by a catch-all pattern.
            let refused: Vec<(RuleId, Wildcards)> = candidates
                .iter()
                .filter(|(id, _)| !self.rules.get(*id).allow_outside)
                .cloned()
                .collect();
            candidates.retain(|(id, _)| self.rules.get(*id).allow_outside);
            if candidates.is_empty() {
                if Path::new(path).exists() {
                    self.producer.insert(path.to_string(), None);
                    return Ok(None);
                }
                let (id, w) = &refused[0];
                let rule = self.rules.get(*id);
                let values: Vec<String> = w.iter().map(|(k, v)| format!("{k}={v}")).collect();
                return Err(Diagnostic::new(format!(
                    "`{}` is outside the working directory: rule `{}` would make it{}, but a rule writes only inside the working directory",
                    crate::rules::pattern::shorten(path),
                    rule.name,
                    if values.is_empty() {
                        String::new()
                    } else {
                        format!(" with {}", values.join(", "))
                    }
                ))
                .at(rule.origin.clone())
                .hint("a wildcard value with `..` or a leading `/` would escape; constrain the wildcard with `wildcard_constraints`, or give the rule `allow_outside: true`"));
            }
        }
        let (rule, w) = candidates.remove(0);
        if depth <= 1 {
            if let Some(msg) = crate::rules::pattern::path_too_long(path) {
                return Err(Diagnostic::new(format!(
                    "rule `{}` cannot make it: {msg}",
                    self.rules.get(rule).name
                ))
                .at(self.rules.get(rule).origin.clone()));
            }
        }
        if depth > MAX_DEPTH || path.len() > MAX_PATH_LEN {
            // The path has grown with every level: show its start only.
            let shown = match path.char_indices().nth(80) {
                Some((i, _)) => format!("{}…", &path[..i]),
                None => path.to_string(),
            };
            return Err(Diagnostic::new(format!(
                "rule `{}` keeps needing its own outputs through wildcards ({depth} levels deep at `{shown}`, {} bytes long)",
                self.rules.get(rule).name,
                path.len()
            ))
            .at(self.rules.get(rule).origin.clone())
            .hint("constrain the wildcard with `wildcard_constraints` so the rule cannot match its own inputs"));
        }
        Ok(Some(self.job(rule, w, depth)))
    }

    fn run(&mut self) {
        while let Some(id) = self.queue.pop_front() {
            if !self.unbound.is_empty() {
                let unbound = std::mem::take(&mut self.unbound);
                self.call_functions(unbound);
            }
            let depth = self.depth[id.0 as usize] + 1;
            // Taken out while its paths are looked up (which adds jobs), then put back: no copy
            // of each path. Nothing reads another job's inputs meanwhile.
            let inputs = std::mem::take(&mut self.jobs[id.0 as usize].inputs);
            let mut deps = Vec::new();
            let mut seen = HashSet::default();
            // The checkpoint outputs the job's functions read come first: their jobs are
            // dependencies (not inputs), and the files inside them that the inputs name are
            // found to be theirs.
            let consulted = self.jobs[id.0 as usize].consulted().to_vec();
            for path in consulted {
                match self.producer_of(&path, depth, None, Some(id)) {
                    Ok(Some(p)) if seen.insert(p) => deps.push(p),
                    Ok(_) => {}
                    Err(d) => self.errors.push(d),
                }
            }
            for (i, f) in inputs.iter().enumerate() {
                match self.producer_of(&f.path, depth, f.from_rule, Some(id)) {
                    Ok(Some(p)) => {
                        if seen.insert(p) {
                            deps.push(p);
                        }
                    }
                    Ok(None) => self.sources.push((id, i)),
                    Err(d) => self.errors.push(d),
                }
            }
            let job = &mut self.jobs[id.0 as usize];
            job.inputs = inputs;
            job.deps = deps;
        }
    }

    /// Stats the sources: those found, with their stats, and those that do not exist. There
    /// is one per input of a large fan-out, so they are looked up on every core at once, and
    /// kept in the order they were met. The stats found are kept for the planner, which would
    /// otherwise stat every source a second time.
    fn check_sources(&self) -> (Vec<(JobId, usize, Stat)>, Vec<InputAt>) {
        let jobs = &self.jobs;
        let found: Vec<Option<Stat>> = self
            .sources
            .par_iter()
            .map(|&(id, i)| filestate::stat(Path::new(&jobs[id.0 as usize].inputs[i].path)))
            .collect();
        let mut stats = Vec::with_capacity(found.len());
        let mut missing = Vec::new();
        for (&(id, i), st) in self.sources.iter().zip(found) {
            match st {
                Some(st) => stats.push((id, i, st)),
                None => missing.push((id, i)),
            }
        }
        (stats, missing)
    }

    /// Reports inputs that do not exist and that no rule makes.
    fn report_missing(&mut self, missing: &[(JobId, usize)]) {
        for &(id, i) in missing {
            let job = &self.jobs[id.0 as usize];
            let rule = self.rules.get(job.rule);
            self.errors.push(
                Diagnostic::new(format!(
                    "missing input `{}`, needed by {}, and no rule makes it",
                    job.inputs[i].path,
                    JobLabel(rule, job)
                ))
                .at(rule.origin.clone()),
            );
        }
    }
}

/// The graph of jobs, an edge from each job to the jobs using its outputs.
fn job_graph(jobs: &[Job]) -> DiGraph<(), ()> {
    let mut graph = DiGraph::with_capacity(jobs.len(), jobs.len());
    for _ in jobs {
        graph.add_node(());
    }
    for (i, job) in jobs.iter().enumerate() {
        for d in &job.deps {
            graph.add_edge(d.node(), JobId(i as u32).node(), ());
        }
    }
    graph
}

/// Kahn's algorithm with the smallest job id first among ready jobs: the same order on every
/// run. On a cycle, returns the jobs that could not be ordered.
fn topological(jobs: &[Job], graph: &DiGraph<(), ()>) -> Result<Vec<JobId>, Vec<JobId>> {
    let n = jobs.len();
    let mut indegree: Vec<usize> = jobs.iter().map(|j| j.deps.len()).collect();
    let mut ready: BinaryHeap<Reverse<JobId>> = (0..n)
        .filter(|&i| indegree[i] == 0)
        .map(|i| Reverse(JobId(i as u32)))
        .collect();
    let mut order = Vec::with_capacity(n);
    while let Some(Reverse(id)) = ready.pop() {
        order.push(id);
        for next in graph.neighbors(id.node()) {
            indegree[next.index()] -= 1;
            if indegree[next.index()] == 0 {
                ready.push(Reverse(JobId(next.index() as u32)));
            }
        }
    }
    if order.len() == n {
        Ok(order)
    } else {
        Err((0..n)
            .filter(|&i| indegree[i] > 0)
            .map(|i| JobId(i as u32))
            .collect())
    }
}

impl Dag {
    /// Resolves the targets into a graph of jobs, calling the rules' functions of the
    /// wildcards through `eval`. A function that asks for a checkpoint output that is not
    /// `available` makes its job pending: the job then waits for the checkpoint's job.
    pub fn resolve(
        rules: &Rules,
        eval: &dyn Evaluate,
        available: Available<'_>,
        targets: &[Target],
    ) -> Result<Self, Vec<Diagnostic>> {
        let mut b = Builder {
            rules,
            eval,
            available,
            directories: rules.iter().any(|r| r.outputs.iter().any(|o| o.directory)),
            jobs: Vec::new(),
            depth: Vec::new(),
            by_key: HashTable::new(),
            producer: HashMap::default(),
            sources: Vec::new(),
            queue: VecDeque::new(),
            unbound: Vec::new(),
            errors: Vec::new(),
            feasible: HashMap::default(),
            walks: Walks::default(),
        };
        let mut target_ids = Vec::new();
        for target in targets {
            match target {
                Target::Rule(name) => {
                    let Some(rule) = rules.by_name(name) else {
                        continue;
                    };
                    if rule.has_wildcards() {
                        b.errors.push(
                            Diagnostic::new(format!(
                                "rule `{name}` has wildcards in its outputs, so it cannot be a target by name"
                            ))
                            .hint(format!("ask for a file it makes instead, e.g. `{}`", rule.outputs[0].pattern)),
                        );
                        continue;
                    }
                    target_ids.push(b.job(rule.id, Wildcards::new(), 0));
                }
                Target::File(path) => match b.producer_of(path, 0, None, None) {
                    Ok(Some(id)) => target_ids.push(id),
                    Ok(None) if Path::new(path).exists() => {}
                    Ok(None) => {
                        let rule_names: Vec<&str> = rules.iter().map(|r| r.name.as_str()).collect();
                        let mut d = Diagnostic::new(format!(
                            "no rule makes `{path}`, and it is not a rule name or an existing file"
                        ));
                        if let Some(h) = did_you_mean(path, rule_names) {
                            d = d.hint(h);
                        }
                        b.errors.push(d);
                    }
                    Err(d) => b.errors.push(d),
                },
            }
            b.run();
        }
        // Jobs that miss an input or sit in a cycle give way to the existing files they were
        // asked to make (see `choose`); then what is left is checked again.
        let (sources, graph, order) = loop {
            let (sources, missing) = b.check_sources();
            let graph = job_graph(&b.jobs);
            let order = topological(&b.jobs, &graph);
            let stuck = order.as_ref().err().map_or(&[][..], Vec::as_slice);
            let broken = !missing.is_empty() || !stuck.is_empty();
            if broken && b.repair(&missing, stuck, &mut target_ids) {
                continue;
            }
            b.report_missing(&missing);
            if !b.errors.is_empty() {
                return Err(b.errors);
            }
            match order {
                Ok(order) => break (sources, graph, order),
                Err(stuck) => {
                    let cycle = choose::cycle_in(&b.jobs, &stuck).unwrap_or(stuck);
                    return Err(vec![choose::cycle_error(&b, &cycle)]);
                }
            }
        };
        Ok(Dag {
            jobs: b.jobs,
            graph,
            targets: target_ids,
            producer: b.producer,
            order,
            sources,
            walks: b.walks,
            by_key: b.by_key,
        })
    }

    /// Jobs in a dependency-respecting, reproducible order.
    pub fn order(&self) -> &[JobId] {
        &self.order
    }

    /// The job of `rule` for `wildcards`, if the graph has it: the same job in another graph
    /// of the same run.
    pub fn find(&self, rule: RuleId, wildcards: &Wildcards) -> Option<JobId> {
        let same = |id: &JobId| {
            let j = self.job(*id);
            j.rule == rule && &j.wildcards == wildcards
        };
        self.by_key.find(key_hash(rule, wildcards), same).copied()
    }

    /// A job by id.
    pub fn job(&self, id: JobId) -> &Job {
        &self.jobs[id.0 as usize]
    }

    /// Jobs that consume an output of `id`.
    pub fn consumers(&self, id: JobId) -> impl Iterator<Item = JobId> + '_ {
        self.graph
            .neighbors(id.node())
            .map(|n| JobId(n.index() as u32))
    }

    /// The job making `path`, if it is in the graph.
    pub fn producer(&self, path: &str) -> Option<JobId> {
        self.producer.get(path).copied().flatten()
    }

    /// What the walks of the checkpoint outputs functions read found (see [`Walks`]); each
    /// walk is handed over once.
    pub fn walked(&self) -> Vec<Walked> {
        self.walks.take()
    }

    /// The inputs no rule makes, with their modification time and size when the graph was
    /// resolved (each was stat-ed to prove it exists).
    pub fn source_stats(&self) -> impl Iterator<Item = (&str, Stat)> + '_ {
        self.sources
            .iter()
            .map(|&(id, i, st)| (self.job(id).inputs[i].path.as_str(), st))
    }

    /// A printable label.
    pub fn label<'a>(&'a self, rules: &'a Rules, id: JobId) -> JobLabel<'a> {
        let job = self.job(id);
        JobLabel(rules.get(job.rule), job)
    }

    /// How many jobs.
    pub fn len(&self) -> usize {
        self.jobs.len()
    }

    /// Whether the graph has no job.
    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }
}
