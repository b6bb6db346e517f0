//! Deciding which jobs run, and why.
//!
//! Each job is first judged on its own state (outputs, incomplete marks, the store's record of
//! how its outputs were made); then "an upstream job runs" flows down the graph; then deleted
//! `temp()` outputs are revived only where a running job needs them. A job that runs only
//! because something upstream runs is checked again when its turn comes
//! ([`Checker::own_reasons`]), and skipped if its inputs came out byte-identical: early cutoff.
//!
//! The plan is a pure function of the workflow, the targets, the options, the store and the
//! files on disk.

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use std::path::Path;

use crate::diagnostic::{did_you_mean, Diagnostic};
use crate::graph::dag::{Dag, JobId};
use crate::graph::filestate::{self, FileSig, Stat};
use crate::graph::manifest::Files;
use crate::graph::reason::Reason;
use crate::graph::store::{Record, Snapshot};
use crate::rules::decl::FileKind;
use crate::rules::registry::{Rules, Work};

/// Which kinds of change make a job rerun (`--rerun-triggers`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Triggers {
    pub mtime: bool,
    pub content: bool,
    pub code: bool,
    pub params: bool,
    pub input: bool,
    /// The rule's `env` and `software` (their identity, beside the record).
    pub software: bool,
}

impl Default for Triggers {
    fn default() -> Self {
        Self {
            mtime: false,
            content: true,
            code: true,
            params: true,
            input: true,
            software: true,
        }
    }
}

impl Triggers {
    /// The names accepted by `--rerun-triggers`.
    pub const NAMES: [&'static str; 6] =
        ["mtime", "content", "code", "params", "input", "software"];

    /// Parses a list such as `["mtime"]` or `["content", "code"]`.
    pub fn parse(names: &[String]) -> Result<Self, Diagnostic> {
        let mut t = Self {
            mtime: false,
            content: false,
            code: false,
            params: false,
            input: false,
            software: false,
        };
        for name in names {
            match name.as_str() {
                "mtime" => t.mtime = true,
                "content" => t.content = true,
                "code" => t.code = true,
                "params" => t.params = true,
                "input" => t.input = true,
                "software" => t.software = true,
                other => {
                    let mut d = Diagnostic::new(format!("unknown rerun trigger `{other}`"));
                    d =
                        d.hint(did_you_mean(other, Self::NAMES).unwrap_or_else(|| {
                            format!("the triggers are {}", Self::NAMES.join(", "))
                        }));
                    return Err(d);
                }
            }
        }
        Ok(t)
    }
}

/// What the user asked to override.
#[derive(Debug, Clone, Default)]
pub struct PlanOptions {
    pub triggers: Triggers,
    pub force_all: bool,
    /// `-R`: rule names or output files whose jobs (and everything downstream) rerun.
    pub force: Vec<String>,
    /// `--until`: run only these rules' jobs and what they depend on.
    pub until: Vec<String>,
    /// Labels of the jobs an earlier pass of this run ran (a run with checkpoints plans again
    /// after each): `-F` and `-R` do not force them a second time.
    pub done: HashSet<String>,
    /// Labels of the jobs that failed in an earlier pass of this run (`-k`): not tried again.
    pub failed: HashSet<String>,
}

/// The verdict for one job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Up to date.
    Fresh,
    /// Excluded by `--until`.
    Excluded,
    /// Runs, for these reasons.
    Run(Vec<Reason>),
    /// Waits for the checkpoint job of this label to run: planned in a later pass.
    Pending(String),
}

/// The plan for a whole graph.
#[derive(Debug)]
pub struct Plan {
    pub decisions: Vec<Decision>,
    /// Records to rewrite because an input was touched without changing, or outputs were
    /// adopted; written when the run starts so the next check takes the fast path.
    pub refresh: Vec<(String, Record)>,
}

impl Plan {
    /// The jobs that run, in the graph's order.
    pub fn to_run<'a>(&'a self, dag: &'a Dag) -> impl Iterator<Item = JobId> + 'a {
        dag.order()
            .iter()
            .copied()
            .filter(|id| matches!(self.decisions[id.0 as usize], Decision::Run(_)))
    }

    /// The decision for a job.
    pub fn decision(&self, id: JobId) -> &Decision {
        &self.decisions[id.0 as usize]
    }
}

/// Judges jobs against the store and the file system, caching stats and hashes.
pub struct Checker<'a> {
    rules: &'a Rules,
    dag: &'a Dag,
    snapshot: &'a Snapshot,
    triggers: Triggers,
    /// Keyed by paths borrowed from the graph and the snapshot: no string copies per file.
    stats: HashMap<&'a str, Option<Stat>>,
    hashes: HashMap<&'a str, u128>,
    /// Code and params hashes of each rule, by rule id: computed once, not once per job.
    rule_hashes: Vec<(u128, u128)>,
    /// Paths declared with `directory()`, judged by a manifest of their tree
    /// ([`crate::graph::manifest`]).
    directories: HashSet<&'a str>,
    /// The regular files inside those directories, by directory, stat-ed while their
    /// manifests were taken: a checkpoint's readers name them as inputs, one job per file, and
    /// find them here instead of stat-ing each again.
    inside: HashMap<&'a str, Files>,
}

/// A path's stat (over its whole tree for a `directory()`), with the files found inside it.
type Found = (Option<Stat>, Files);

/// The stat of `path` if a manifest walk of a directory above it saw it.
fn inside(known: &HashMap<&str, Files>, path: &str) -> Option<Stat> {
    if known.is_empty() {
        return None;
    }
    let mut at = path.len();
    while let Some(slash) = path[..at].rfind('/') {
        if let Some(files) = known.get(&path[..slash]) {
            return files.get(&path[slash + 1..]);
        }
        at = slash;
    }
    None
}

/// A manifest walk's result as the checker keeps it.
fn walked(found: Option<(Stat, Files)>) -> Found {
    found.map_or((None, Files::default()), |(st, files)| (Some(st), files))
}

/// Stats `path`: a `directory()` over its whole tree, keeping the stats of the files inside.
fn stat_of(path: &str, directory: bool) -> Found {
    if directory {
        walked(crate::graph::manifest::stat_and_files(Path::new(path)))
    } else {
        (filestate::stat(Path::new(path)), Files::default())
    }
}

fn params_hash(params: &serde_json::Map<String, serde_json::Value>) -> u128 {
    filestate::hash_str(&serde_json::Value::Object(params.clone()).to_string())
}

/// A rule's (code, params) hashes, as the store records them.
pub fn rule_hashes(rule: &crate::rules::registry::Rule) -> (u128, u128) {
    (filestate::hash_str(&rule.code), params_hash(&rule.params))
}

/// A job's (code, params) hashes: its rule's, with the params a params function gave the job.
pub fn job_hashes(
    rule: &crate::rules::registry::Rule,
    job: &crate::graph::dag::Job,
) -> (u128, u128) {
    match job.computed.as_ref().and_then(|c| c.params.as_ref()) {
        Some(own) => (filestate::hash_str(&rule.code), params_hash(own)),
        None => rule_hashes(rule),
    }
}

impl<'a> Checker<'a> {
    /// A checker over a graph and a store snapshot.
    pub fn new(rules: &'a Rules, dag: &'a Dag, snapshot: &'a Snapshot, triggers: Triggers) -> Self {
        Self {
            rules,
            dag,
            snapshot,
            triggers,
            stats: HashMap::default(),
            hashes: HashMap::default(),
            rule_hashes: rules.iter().map(rule_hashes).collect(),
            directories: directories(rules, dag),
            inside: HashMap::default(),
        }
    }

    /// The rule's (code, params) hashes.
    fn rule_hash(&self, rule: crate::rules::registry::RuleId) -> (u128, u128) {
        self.rule_hashes
            .get(rule.0 as usize)
            .copied()
            .unwrap_or_else(|| rule_hashes(self.rules.get(rule)))
    }

    /// The job's (code, params) hashes: its rule's, unless a params function gave the job
    /// params of its own.
    fn job_hash(&self, id: JobId) -> (u128, u128) {
        let job = self.dag.job(id);
        let (code, params) = self.rule_hash(job.rule);
        match job.computed.as_ref().and_then(|c| c.params.as_ref()) {
            Some(own) => (code, params_hash(own)),
            None => (code, params),
        }
    }

    /// Takes stats made moments ago (the graph's check that its sources exist) as known.
    fn know(&mut self, stats: impl Iterator<Item = (&'a str, Stat)>) {
        let directories = &self.directories;
        self.stats.extend(
            stats
                .filter(|(p, _)| !directories.contains(p))
                .map(|(p, st)| (p, Some(st))),
        );
    }

    /// Takes the walks of checkpoint outputs made while the graph was resolved as known, for
    /// the paths judged by their tree.
    fn know_walked(&mut self, walked: Vec<crate::graph::dag::Walked>) {
        for (path, found) in walked {
            if let Some(&path) = self.directories.get(path.as_str()) {
                self.learn(path, self::walked(found));
            }
        }
    }

    /// Forgets what is known about `path` (a job just rewrote it; a directory's files too).
    pub fn invalidate(&mut self, path: &str) {
        self.stats.remove(path);
        self.hashes.remove(path);
        self.inside.clear();
    }

    fn stat(&mut self, path: &'a str) -> Option<Stat> {
        if let Some(st) = self.stats.get(path) {
            return *st;
        }
        let found = match inside(&self.inside, path) {
            Some(st) => (Some(st), Files::default()),
            None => stat_of(path, self.directories.contains(path)),
        };
        let st = found.0;
        self.learn(path, found);
        st
    }

    /// Stats, on every core, the files that judging these jobs will look at first: their
    /// outputs and, where all outputs exist, their inputs. At 100,000 jobs the planner is
    /// mostly waiting for `statx`; one thread at a time would leave the other cores idle.
    fn prefetch(&mut self, jobs: &[JobId]) {
        let dag = self.dag;
        let outputs: Vec<&'a str> = jobs
            .iter()
            .flat_map(|&id| dag.job(id).outputs.iter().map(|f| f.path.as_str()))
            .collect();
        self.stat_all(outputs);
        let inputs: Vec<&'a str> = jobs
            .iter()
            .map(|&id| dag.job(id))
            .filter(|job| {
                job.outputs
                    .iter()
                    .all(|o| self.stats[o.path.as_str()].is_some())
            })
            .flat_map(|job| job.inputs.iter().map(|f| f.path.as_str()))
            .collect();
        self.stat_all(inputs);
    }

    fn stat_all(&mut self, mut paths: Vec<&'a str>) {
        use rayon::prelude::*;
        let (stats, inside) = (&mut self.stats, &mut self.inside);
        paths.retain(|&p| {
            if stats.contains_key(p) {
                return false;
            }
            match self::inside(inside, p) {
                Some(st) => {
                    stats.insert(p, Some(st));
                    false
                }
                None => true,
            }
        });
        let directories = &self.directories;
        let found: Vec<Found> = paths
            .par_iter()
            .map(|p| stat_of(p, directories.contains(p)))
            .collect();
        for (p, found) in paths.into_iter().zip(found) {
            self.learn(p, found);
        }
    }

    /// Keeps the stat of `path`, and the files a manifest walk of it saw.
    fn learn(&mut self, path: &'a str, (st, files): Found) {
        self.stats.insert(path, st);
        if !files.is_empty() {
            self.inside.insert(path, files);
        }
    }

    /// The file's signature now, hashing only when asked to. An output whose modification
    /// time and size still match its record keeps the recorded hash, the same fast path the
    /// staleness check takes: an aggregate over 100,000 outputs is not read back after a
    /// rerun of one of them.
    pub fn sig(&mut self, path: &'a str) -> Option<FileSig> {
        let st = self.stat(path)?;
        let known = self
            .hashes
            .get(path)
            .copied()
            .or_else(|| self.recorded_output_hash(path, st));
        let hash = match known {
            Some(h) => h,
            None => {
                let h = if self.directories.contains(path) {
                    crate::graph::manifest::hash(Path::new(path))
                } else {
                    filestate::hash(Path::new(path))
                }
                .ok()?;
                self.hashes.insert(path, h);
                h
            }
        };
        Some(FileSig {
            mtime_ns: st.mtime_ns,
            size: st.size,
            hash,
        })
    }

    /// The hash the store holds for `path` as a job's output, if the file still has that
    /// output's modification time and size.
    fn recorded_output_hash(&self, path: &str, st: Stat) -> Option<u128> {
        let output = self.snapshot.records.get(path)?.output;
        output.matches(st).then_some(output.hash)
    }

    /// Fixes the signature of each of a job's inputs as the job starts (see
    /// [`Checker::record_for`]). A file whose modification time and size equal a signature
    /// the store holds is not read again, exactly as the fast path of
    /// [`Checker::own_reasons`] trusts an unchanged (mtime, size): this job's last record
    /// (which lists its inputs in the rule's order, so the same index is checked) covers source
    /// files, the producing job's record ([`Checker::recorded_output_hash`]) made ones.
    ///
    /// The hash of `deferred` (an input the job hashes as it reads it) is left out when no
    /// signature is known: its stat now is returned, to go with the job's hash in
    /// [`Checker::adopt`].
    pub fn sign_inputs(&mut self, id: JobId, deferred: Option<&str>) -> Option<Stat> {
        let (dag, snapshot) = (self.dag, self.snapshot);
        let job = dag.job(id);
        let last = job
            .outputs
            .iter()
            .find_map(|o| snapshot.records.get(&o.path));
        let mut left = None;
        for (i, f) in job.inputs.iter().enumerate() {
            let path = f.path.as_str();
            if self.hashes.contains_key(path) {
                continue;
            }
            let Some(st) = self.stat(path) else {
                continue;
            };
            let read_last_time = last
                .and_then(|r| r.inputs.get(i))
                .filter(|(p, sig)| p == path && sig.matches(st))
                .map(|(_, sig)| sig.hash);
            match read_last_time.or_else(|| self.recorded_output_hash(path, st)) {
                Some(hash) => {
                    self.hashes.insert(path, hash);
                }
                None if deferred == Some(path) => left = Some(st),
                None => {
                    self.sig(path);
                }
            }
        }
        left
    }

    /// Takes the hash a job computed of an input it read whole, paired with the input's stat
    /// when the job started (from [`Checker::sign_inputs`]): if the file was written during
    /// the job, its mtime no longer matches, so the next run hashes it again and compares.
    pub fn adopt(&mut self, path: &'a str, stat: Stat, hash: u128) {
        self.stats.insert(path, Some(stat));
        self.hashes.insert(path, hash);
    }

    /// The record a job's outputs would carry if it finished now.
    pub fn record_for(&mut self, id: JobId, output: &'a str) -> Option<Record> {
        let job = self.dag.job(id);
        let rule = self.rules.get(job.rule);
        let mut inputs = Vec::with_capacity(job.inputs.len());
        for f in &job.inputs {
            let sig = self.sig(&f.path)?;
            inputs.push((f.path.clone(), sig));
        }
        let (code, params) = self.job_hash(id);
        Some(Record {
            rule: rule.name.clone(),
            code,
            params,
            inputs,
            output: self.sig(output)?,
            software: rule.software.identity(),
        })
    }

    /// Reasons for a job to run, judged on its own state; also the records worth refreshing.
    pub fn own_reasons(&mut self, id: JobId) -> (Vec<Reason>, Vec<(String, Record)>) {
        let dag = self.dag;
        let snapshot = self.snapshot;
        let job = dag.job(id);
        let rule = self.rules.get(job.rule);
        let mut reasons = Vec::new();
        let mut refresh = Vec::new();
        if job.outputs.is_empty() {
            if !matches!(rule.work, Work::Nothing) {
                reasons.push(Reason::NoOutputs);
            }
            return (reasons, refresh);
        }
        let incomplete: Vec<String> = job
            .outputs
            .iter()
            .filter(|o| self.snapshot.incomplete.contains(&o.path))
            .map(|o| o.path.clone())
            .collect();
        if !incomplete.is_empty() {
            reasons.push(Reason::Incomplete(incomplete));
        }
        let missing: Vec<String> = job
            .outputs
            .iter()
            .filter(|o| self.stat(&o.path).is_none())
            .map(|o| o.path.clone())
            .collect();
        // Recorded temp() outputs deleted after use: the job is still judged on its record,
        // so that a change upstream of a temp file is not hidden by its absence.
        let temp_gone = !missing.is_empty()
            && missing.iter().all(|p| {
                job.outputs
                    .iter()
                    .any(|o| &o.path == p && o.kind == FileKind::Temp)
                    && self.snapshot.records.contains_key(p)
            });
        if !missing.is_empty() {
            reasons.push(Reason::Missing(missing));
            if !temp_gone {
                return (reasons, refresh);
            }
        }
        if !reasons.is_empty() && !temp_gone {
            return (reasons, refresh);
        }
        let oldest_output = job
            .outputs
            .iter()
            .filter_map(|o| {
                self.stat(&o.path).map(|s| s.mtime_ns).or_else(|| {
                    self.snapshot
                        .records
                        .get(&o.path)
                        .map(|r| r.output.mtime_ns)
                })
            })
            .min()
            .unwrap_or(i64::MAX);
        let record = job
            .outputs
            .iter()
            .find_map(|o| snapshot.records.get(&o.path));
        let Some(record) = record else {
            // Outputs made outside flowrun (or before its records): Make's rule decides, and
            // fresh outputs are adopted so content checks apply from now on.
            if let Some(newer) = self.newest_input_after(id, oldest_output) {
                reasons.push(Reason::InputNewer {
                    input: newer,
                    recorded: false,
                });
            } else {
                for o in &job.outputs {
                    if let Some(rec) = self.record_for(id, &o.path) {
                        refresh.push((o.path.clone(), rec));
                    }
                }
            }
            return (reasons, refresh);
        };
        let (code, params) = self.job_hash(id);
        if record.rule != rule.name && self.triggers.code {
            reasons.push(Reason::RuleChanged(record.rule.clone()));
        } else if self.triggers.code && record.code != code {
            reasons.push(Reason::CodeChanged);
        }
        if self.triggers.params && record.params != params {
            reasons.push(Reason::ParamsChanged);
        }
        if self.triggers.software && record.software != rule.software.identity() {
            reasons.push(Reason::SoftwareChanged);
        }
        let same_inputs = job.inputs.len() == record.inputs.len()
            && job
                .inputs
                .iter()
                .zip(&record.inputs)
                .all(|(f, (p, _))| f.path == *p);
        if self.triggers.input && !same_inputs {
            let now: HashSet<&str> = job.inputs.iter().map(|f| f.path.as_str()).collect();
            let then: HashSet<&str> = record.inputs.iter().map(|(p, _)| p.as_str()).collect();
            if now != then {
                let mut added: Vec<String> = now.difference(&then).map(|s| s.to_string()).collect();
                let mut removed: Vec<String> =
                    then.difference(&now).map(|s| s.to_string()).collect();
                added.sort();
                removed.sort();
                reasons.push(Reason::InputSetChanged { added, removed });
            }
        }
        let ancient = |p: &str| {
            job.inputs
                .iter()
                .any(|f| f.path == p && f.kind == FileKind::Ancient)
        };
        if self.triggers.content {
            let mut touched = false;
            for (path, sig) in &record.inputs {
                if ancient(path) {
                    continue;
                }
                let Some(st) = self.stat(path) else {
                    continue; // made by an upstream job (which decides), or a deleted temp file
                };
                if sig.matches(st) {
                    continue;
                }
                match self.sig(path) {
                    Some(now) if now.hash == sig.hash => touched = true,
                    _ => {
                        reasons.push(Reason::InputChanged(path.clone()));
                        break;
                    }
                }
            }
            if touched && reasons.is_empty() {
                for o in &job.outputs {
                    let Some(old) = snapshot.records.get(&o.path) else {
                        continue;
                    };
                    let mut rec = old.clone();
                    for ((p, _), (_, sig)) in old.inputs.iter().zip(rec.inputs.iter_mut()) {
                        if let Some(now) = self.sig(p) {
                            *sig = now;
                        }
                    }
                    refresh.push((o.path.clone(), rec));
                }
            }
        }
        if self.triggers.mtime {
            if let Some(newer) = self.newest_input_after(id, oldest_output) {
                reasons.push(Reason::InputNewer {
                    input: newer,
                    recorded: true,
                });
            }
        }
        (reasons, refresh)
    }

    fn newest_input_after(&mut self, id: JobId, time: i64) -> Option<String> {
        let job = self.dag.job(id);
        job.inputs
            .iter()
            .filter(|f| f.kind != FileKind::Ancient)
            .filter_map(|f| self.stat(&f.path).map(|s| (s.mtime_ns, &f.path)))
            .filter(|(t, _)| *t > time)
            .max()
            .map(|(_, p)| p.clone())
    }

    /// Whether the job's only problem is deleted `temp()` outputs that were recorded.
    fn only_temp_missing(&self, id: JobId, reasons: &[Reason]) -> bool {
        let job = self.dag.job(id);
        match reasons {
            [Reason::Missing(paths)] => paths.iter().all(|p| {
                job.outputs
                    .iter()
                    .any(|o| &o.path == p && o.kind == FileKind::Temp)
                    && self.snapshot.records.contains_key(p)
            }),
            _ => false,
        }
    }
}

/// The paths of the graph declared with `directory()` (as outputs, or as inputs), looked for
/// only among the jobs of rules that declare one or have input functions (which may return
/// one): the jobs reading a checkpoint's files one by one are most of the graph, and none.
fn directories<'a>(rules: &Rules, dag: &'a Dag) -> HashSet<&'a str> {
    let declares: Vec<bool> = rules
        .iter()
        .map(|r| {
            r.inputs.iter().chain(&r.outputs).any(|f| f.directory) || !r.functions.input.is_empty()
        })
        .collect();
    if !declares.contains(&true) {
        return HashSet::default();
    }
    dag.jobs
        .iter()
        .filter(|j| declares.get(j.rule.0 as usize).copied().unwrap_or(true))
        .flat_map(|j| j.inputs.iter().chain(&j.outputs))
        .filter(|f| f.directory)
        .map(|f| f.path.as_str())
        .collect()
}

/// Notes that an upstream job runs: the first one is named, later ones only counted (so the
/// label is made only for the first).
fn add_upstream(reasons: &mut Vec<Reason>, label: impl FnOnce() -> String, forced: bool) {
    if reasons.contains(&Reason::Forced) {
        return;
    }
    let existing = reasons.iter_mut().find_map(|r| match r {
        Reason::Upstream { others, .. } if !forced => Some(others),
        Reason::ForcedUpstream { others, .. } if forced => Some(others),
        _ => None,
    });
    match existing {
        Some(others) => *others += 1,
        None if forced => reasons.push(Reason::ForcedUpstream {
            job: label(),
            others: 0,
        }),
        None => reasons.push(Reason::Upstream {
            job: label(),
            others: 0,
        }),
    }
}

/// Jobs selected by rule names or output files, with an error for unknown names.
fn select(
    rules: &Rules,
    dag: &Dag,
    names: &[String],
    flag: &str,
) -> Result<HashSet<JobId>, Diagnostic> {
    let mut out = HashSet::default();
    for name in names {
        if let Some(rule) = rules.by_name(name) {
            out.extend(
                (0..dag.len() as u32)
                    .map(JobId)
                    .filter(|id| dag.job(*id).rule == rule.id),
            );
        } else if let Some(id) = dag.producer(&crate::rules::pattern::normalize_path(name)) {
            out.insert(id);
        } else if !selected_rules(rules, dag, std::slice::from_ref(name)).is_empty() {
            // Made by a job a checkpoint will tell of: selected in the pass that knows it.
        } else {
            let mut d = Diagnostic::new(format!(
                "`{flag} {name}`: no rule of that name, and no job in this run makes that file"
            ));
            if let Some(h) = did_you_mean(name, rules.iter().map(|r| r.name.as_str())) {
                d = d.hint(h);
            }
            return Err(d);
        }
    }
    Ok(out)
}

/// The rules whose jobs `names` (of `--until` or `-R`) select: rules by name, and for a file
/// no job of the graph makes while jobs wait for checkpoints that have not run, the rules that
/// can make it.
fn selected_rules(
    rules: &Rules,
    dag: &Dag,
    names: &[String],
) -> Vec<crate::rules::registry::RuleId> {
    let waiting = || dag.jobs.iter().any(|j| j.awaits().is_some());
    let mut out = Vec::new();
    for name in names {
        if let Some(rule) = rules.by_name(name) {
            out.push(rule.id);
            continue;
        }
        let path = crate::rules::pattern::normalize_path(name);
        if dag.producer(&path).is_none() && waiting() {
            out.extend(rules.producers(&path).into_iter().map(|(id, _)| id));
        }
    }
    out
}

/// Makes the plan.
pub fn check(
    rules: &Rules,
    dag: &Dag,
    snapshot: &Snapshot,
    opts: &PlanOptions,
) -> Result<Plan, Diagnostic> {
    let forced = select(rules, dag, &opts.force, "--force")?;
    let until = select(rules, dag, &opts.until, "--until")?;
    let n = dag.len();
    let mut allowed = vec![opts.until.is_empty(); n];
    let mut reach = Vec::new();
    if !opts.until.is_empty() {
        // Everything the --until jobs depend on, and the checkpoints that may lead to more.
        reach =
            crate::graph::pending::until_checkpoints(dag, &selected_rules(rules, dag, &opts.until));
        let mut stack: Vec<JobId> = until.into_iter().chain(reach.iter().copied()).collect();
        while let Some(id) = stack.pop() {
            if !std::mem::replace(&mut allowed[id.0 as usize], true) {
                stack.extend(dag.job(id).deps.iter().copied());
            }
        }
    }
    if !opts.failed.is_empty() {
        for (i, ok) in allowed.iter_mut().enumerate() {
            *ok = *ok
                && !opts
                    .failed
                    .contains(&dag.label(rules, JobId(i as u32)).to_string());
        }
    }
    let mut checker = Checker::new(rules, dag, snapshot, opts.triggers);
    checker.know(dag.source_stats());
    checker.know_walked(dag.walked());
    let mut reasons: Vec<Vec<Reason>> = vec![Vec::new(); n];
    let mut refresh = Vec::new();
    let mut temp_only = vec![false; n];
    // Forced jobs an earlier pass of this run already ran: judged on their own now, but what
    // is downstream of them is still forced.
    let mut forced_before = vec![false; n];
    let mut judged = Vec::with_capacity(n);
    for &id in dag.order() {
        let i = id.0 as usize;
        if !allowed[i] {
            continue;
        }
        if opts.force_all || forced.contains(&id) {
            if opts.done.is_empty() || !opts.done.contains(&dag.label(rules, id).to_string()) {
                reasons[i].push(Reason::Forced);
                continue;
            }
            forced_before[i] = true;
        }
        judged.push(id);
    }
    checker.prefetch(&judged);
    for id in judged {
        let i = id.0 as usize;
        let (own, fresh) = checker.own_reasons(id);
        temp_only[i] = checker.only_temp_missing(id, &own);
        reasons[i] = own;
        refresh.extend(fresh);
    }
    // A job without outputs has nothing of its own to judge: it runs after a job it needs
    // ran, which in a run of several passes may have been in an earlier one (or in a graph
    // planned while that pass ran, see `run::schedule::Growth`).
    if !opts.done.is_empty() {
        for &id in dag.order() {
            let i = id.0 as usize;
            let job = dag.job(id);
            if !allowed[i] || !job.outputs.is_empty() || !reasons[i].is_empty() {
                continue;
            }
            let label = |d: &JobId| dag.label(rules, *d).to_string();
            if opts.done.contains(&label(&id)) {
                continue;
            }
            if let Some(d) = job.deps.iter().find(|d| opts.done.contains(&label(d))) {
                add_upstream(&mut reasons[i], || label(d), false);
            }
        }
    }
    // Flow "upstream runs" down the graph (temp-only jobs wait to be asked for).
    for &id in dag.order() {
        let i = id.0 as usize;
        // Under `-F` every job is forced on its own: one that already ran passes nothing on.
        let passes_force = forced_before[i] && !opts.force_all;
        if !allowed[i] || (reasons[i].is_empty() && !passes_force) || temp_only[i] {
            continue;
        }
        let forced_here = (forced_before[i]
            || reasons[i]
                .iter()
                .any(|r| matches!(r, Reason::Forced | Reason::ForcedUpstream { .. })))
            && !opts.force_all;
        for c in dag.consumers(id) {
            let ci = c.0 as usize;
            if !allowed[ci] {
                continue;
            }
            // Forcing reruns a job once per run, not once per pass.
            if forced_here
                && !opts.done.is_empty()
                && opts.done.contains(&dag.label(rules, c).to_string())
            {
                continue;
            }
            add_upstream(
                &mut reasons[ci],
                || dag.label(rules, id).to_string(),
                forced_here,
            );
            // A job whose temp outputs were deleted runs now, and passes it on.
            temp_only[ci] = false;
        }
    }
    // Revive deleted temp outputs that a running job needs, from the bottom up; a deleted temp
    // file that is itself asked for is remade.
    for &id in dag.order().iter().rev() {
        let i = id.0 as usize;
        if !temp_only[i] {
            continue;
        }
        if dag.targets.contains(&id) {
            temp_only[i] = false;
            continue;
        }
        let needer = dag
            .consumers(id)
            .find(|c| !reasons[c.0 as usize].is_empty() && !temp_only[c.0 as usize]);
        match needer {
            Some(c) => {
                reasons[i] = vec![Reason::TempNeeded(dag.label(rules, c).to_string())];
                temp_only[i] = false;
            }
            None => reasons[i].clear(),
        }
    }
    let mut decisions: Vec<Decision> = reasons
        .into_iter()
        .zip(allowed)
        .map(|(r, ok)| match (ok, r.is_empty()) {
            (false, _) => Decision::Excluded,
            (true, true) => Decision::Fresh,
            (true, false) => Decision::Run(r),
        })
        .collect();
    crate::graph::pending::hold(rules, dag, &mut decisions, &reach);
    Ok(Plan { decisions, refresh })
}
