//! Outputs a checkpoint no longer leads to: found from the store, before each pass.
//!
//! When a checkpoint runs again and makes less (one chunk fewer), the jobs its readers found
//! from the old outputs are no longer in the graph. Snakemake and Nextflow leave their files
//! where they are, unsaid, and a later glob over them picks up results of data that is gone.
//! flowrun names them and removes the outputs it recorded for them (see `session`), so that
//! the files equal a clean run's.
//!
//! A reader of checkpoint outputs (an aggregate) whose functions have answered from the
//! checkpoints' outputs as they are now (it waits for none), with the code it was last made
//! with, is compared with its record: a recorded input it no longer takes, that no job of the
//! graph makes, is dropped, with the other outputs of its job (its rule's outputs for the
//! wildcards that give it). So is, in turn, what only dropped outputs were made from (a file,
//! or the recorded directory holding it), as long as no job of the graph makes it.
//!
//! A reader whose code changed may take less because of the edit, not of the data: as for a
//! static workflow, what it no longer takes is left alone. A reader that still waits (its
//! checkpoint failed, or has not run) drops nothing: the checkpoint has said nothing new.
//! Working from the records, not from the graph a run started with, finds the same outputs
//! after flowrun was killed between the checkpoint and its reader.

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use std::path::Path;

use crate::graph::dag::{Dag, JobId};
use crate::graph::filestate;
use crate::graph::store::Snapshot;
use crate::rules::registry::Rules;

/// A recorded output no job of the graph makes any more.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dropped {
    pub path: String,
    /// The label of the job that made it (its rule's name, if no rule's pattern gives it now).
    pub job: String,
    /// The reader that no longer leads to it.
    pub reader: JobId,
}

/// The label of the job that made the recorded `path`, and that job's outputs.
fn job_of(rules: &Rules, snapshot: &Snapshot, path: &str) -> (String, Vec<String>) {
    let made_by = &snapshot.records[path].rule;
    match rules
        .producers(path)
        .into_iter()
        .find(|(id, _)| rules.get(*id).name == *made_by)
    {
        Some((id, w)) => (
            crate::graph::dag::label(made_by, &w),
            rules
                .get(id)
                .outputs
                .iter()
                .filter_map(|f| f.pattern.format(&w).ok())
                .collect(),
        ),
        None => (made_by.clone(), vec![path.to_string()]),
    }
}

/// The recorded inputs that the readers of checkpoints in `dag` no longer take and that no job
/// of the graph makes, with the reader, for readers that answered from the checkpoints' outputs
/// as they are now with the code their outputs were made with.
fn lost<'d>(
    rules: &'d Rules,
    dag: &'d Dag,
    snapshot: &'d Snapshot,
) -> impl Iterator<Item = (JobId, &'d str)> + 'd {
    let mut code: HashMap<u32, u128> = HashMap::default();
    let readers = (0..dag.len() as u32).map(JobId).filter(move |id| {
        let job = dag.job(*id);
        !job.consulted().is_empty() && job.awaits().is_none()
    });
    readers.flat_map(move |id| {
        let job = dag.job(id);
        let record = job
            .outputs
            .first()
            .and_then(|o| snapshot.records.get(&o.path))
            .filter(|record| {
                let now = *code
                    .entry(job.rule.0)
                    .or_insert_with(|| filestate::hash_str(&rules.get(job.rule).code));
                record.code == now
            });
        let now: HashSet<&str> = match record {
            Some(_) => job.inputs.iter().map(|f| f.path.as_str()).collect(),
            None => HashSet::default(),
        };
        record
            .into_iter()
            .flat_map(|r| &r.inputs)
            .map(|(path, _)| path.as_str())
            .filter(move |p| !now.contains(p) && dag.producer(p).is_none())
            .map(move |p| (id, p))
    })
}

/// Whether the readers in `dag` may drop outputs (by their records in `snapshot`, which need
/// not hold the records of what they took): a graph planned while a run goes on leaves those
/// readers to the next pass, which sees every record.
pub fn may_drop(rules: &Rules, dag: &Dag, snapshot: &Snapshot) -> bool {
    lost(rules, dag, snapshot).next().is_some()
}

/// The outputs of `snapshot` that the readers of checkpoints in `dag` dropped, readers' lost
/// inputs first, then what only they were made from.
pub fn dropped(rules: &Rules, dag: &Dag, snapshot: &Snapshot) -> Vec<Dropped> {
    let mut out: Vec<Dropped> = Vec::new();
    let mut seen: HashSet<String> = HashSet::default();
    let unmade = |p: &str| dag.producer(p).is_none() && snapshot.records.contains_key(p);
    for (id, path) in lost(rules, dag, snapshot) {
        if snapshot.records.contains_key(path) && seen.insert(path.to_string()) {
            out.push(Dropped {
                path: path.to_string(),
                job: String::new(),
                reader: id,
            });
        }
    }
    if out.is_empty() {
        return out;
    }
    // What each recorded output was made from, by the recorded path holding each input.
    let holder = |input: &str| -> Option<String> {
        if snapshot.records.contains_key(input) {
            return Some(input.to_string());
        }
        Path::new(input)
            .ancestors()
            .skip(1)
            .filter_map(|d| d.to_str())
            .find(|d| snapshot.records.contains_key(*d))
            .map(String::from)
    };
    let mut consumers: HashMap<String, Vec<&str>> = HashMap::default();
    for (path, record) in &snapshot.records {
        for (input, _) in &record.inputs {
            if let Some(h) = holder(input) {
                consumers.entry(h).or_default().push(path);
            }
        }
    }
    let mut next = 0;
    while next < out.len() {
        let (job, outputs) = job_of(rules, snapshot, &out[next].path);
        out[next].job = job.clone();
        let Dropped { path, reader, .. } = out[next].clone();
        next += 1;
        for sibling in outputs {
            if unmade(&sibling) && seen.insert(sibling.clone()) {
                out.push(Dropped {
                    path: sibling,
                    job: job.clone(),
                    reader,
                });
            }
        }
        for (input, _) in &snapshot.records[&path].inputs {
            let Some(h) = holder(input) else { continue };
            let only_dropped = consumers
                .get(&h)
                .is_some_and(|c| c.iter().all(|p| seen.contains(*p)));
            if only_dropped && unmade(&h) && seen.insert(h.clone()) {
                out.push(Dropped {
                    path: h,
                    job: String::new(),
                    reader,
                });
            }
        }
    }
    out
}
