//! Jobs a checkpoint no longer leads to: found by comparing the graph a run started with to the
//! graph its last pass resolved.
//!
//! When a checkpoint runs again and makes less (one chunk fewer), the jobs the functions found
//! from its old outputs are not in the new graph. Snakemake and Nextflow leave their files where
//! they are, unsaid, and a later glob over them picks up results of data that is gone. flowrun
//! names them and removes the outputs it recorded for them (see `session`), so that the files
//! equal a clean run's.
//!
//! A job is dropped when a job that read checkpoint outputs (an aggregate) needed it at the
//! start, is in the last graph with every checkpoint it asked for made (its functions have
//! answered from the new outputs), and no longer needs it: nothing in the last graph makes the
//! job's outputs. What only dropped jobs needed is dropped with them. A job whose aggregate
//! still waits (its checkpoint failed, or the run stopped) is never dropped: its checkpoint has
//! not said anything new.

use crate::graph::dag::{Dag, JobId};

/// A job of the first graph that the last one lost, with the checkpoint job of the last graph
/// whose new outputs dropped it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dropped {
    pub job: JobId,
    pub checkpoint: Option<JobId>,
}

/// The jobs of `first` that `last` dropped, in `first`'s dependency order.
pub fn dropped(first: &Dag, last: &Dag) -> Vec<Dropped> {
    // The same job in the last graph, by its first output; jobs without outputs are targets,
    // which no function can drop.
    let in_last = |id: JobId| {
        let job = first.job(id);
        job.outputs.first().and_then(|o| last.producer(&o.path))
    };
    let lost = |id: JobId| {
        let job = first.job(id);
        !job.outputs.is_empty() && job.outputs.iter().all(|o| last.producer(&o.path).is_none())
    };
    let mut found: Vec<Option<JobId>> = vec![None; first.len()];
    let mut is_dropped = vec![false; first.len()];
    for &id in first.order() {
        if first.job(id).consulted().is_empty() {
            continue;
        }
        let Some(now) = in_last(id).map(|n| last.job(n)) else {
            continue;
        };
        if now.awaits().is_some() {
            continue;
        }
        let checkpoint = now.consulted().iter().find_map(|p| last.producer(p));
        let mut stack: Vec<JobId> = first.job(id).deps.clone();
        while let Some(d) = stack.pop() {
            let i = d.0 as usize;
            if is_dropped[i] || !lost(d) {
                continue;
            }
            is_dropped[i] = true;
            found[i] = checkpoint;
            stack.extend(first.job(d).deps.iter().copied());
        }
    }
    first
        .order()
        .iter()
        .filter(|id| is_dropped[id.0 as usize])
        .map(|&job| Dropped {
            job,
            checkpoint: found[job.0 as usize],
        })
        .collect()
}
