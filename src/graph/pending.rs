//! Jobs that wait for a checkpoint: planned once it has run.
//!
//! A job whose function of the wildcards asked for a checkpoint's output before that output
//! was made cannot know its inputs; neither can one that read an output its checkpoint is about
//! to make again. Such a job is *pending* on the checkpoint's job, and so is everything
//! downstream of it, and everything it alone needed: those jobs were found from what the
//! functions returned before, which may no longer hold. Pending jobs do not run in this pass;
//! once the checkpoint has run, the graph is resolved again and they are planned like any job
//! (see `session`).

use crate::graph::dag::{Dag, JobId};
use crate::graph::plan::Decision;
use crate::rules::registry::{RuleId, Rules};

/// Turns the decisions of the jobs waiting for a checkpoint into [`Decision::Pending`]. A job
/// `--until` excluded is pending too when it waits for one of the checkpoints `until` runs to
/// learn what follows them ([`until_checkpoints`]): the run then takes another pass.
pub fn hold(rules: &Rules, dag: &Dag, decisions: &mut [Decision], until: &[JobId]) {
    if !rules.iter().any(|r| r.checkpoint) {
        return;
    }
    let n = dag.len();
    let mut waits: Vec<Option<JobId>> = vec![None; n];
    // The jobs whose own functions wait (not those downstream of one).
    let mut seeds = vec![false; n];
    let mut any = false;
    for (i, wait) in waits.iter_mut().enumerate() {
        let job = dag.job(JobId(i as u32));
        *wait = match job.awaits() {
            Some(path) => dag.producer(path),
            None => job
                .consulted()
                .iter()
                .filter_map(|p| dag.producer(p))
                .find(|cp| matches!(decisions[cp.0 as usize], Decision::Run(_))),
        };
        seeds[i] = wait.is_some();
        any |= wait.is_some();
    }
    if !any {
        return;
    }
    // Downstream of a pending job, in dependency order.
    for &id in dag.order() {
        let Some(cp) = waits[id.0 as usize] else {
            continue;
        };
        for c in dag.consumers(id) {
            let w = &mut waits[c.0 as usize];
            if w.is_none() && !matches!(decisions[c.0 as usize], Decision::Excluded) {
                *w = Some(cp);
            }
        }
    }
    // What the targets still need: through a job whose functions wait, only its checkpoint.
    let mut needed = vec![false; n];
    let mut stack: Vec<JobId> = dag.targets.clone();
    while let Some(id) = stack.pop() {
        let i = id.0 as usize;
        if std::mem::replace(&mut needed[i], true) {
            continue;
        }
        match waits[i] {
            Some(cp) if seeds[i] => stack.push(cp),
            _ => stack.extend(dag.job(id).deps.iter().copied()),
        }
    }
    // What only pending jobs needed waits with them.
    for &id in dag.order().iter().rev() {
        let Some(cp) = waits[id.0 as usize] else {
            continue;
        };
        for &d in &dag.job(id).deps {
            let i = d.0 as usize;
            if !needed[i] && waits[i].is_none() && matches!(decisions[i], Decision::Run(_)) {
                waits[i] = Some(cp);
            }
        }
    }
    let mut reach = vec![false; if until.is_empty() { 0 } else { n }];
    for cp in until {
        reach[cp.0 as usize] = true;
    }
    let reached = |cp: JobId| reach.get(cp.0 as usize).copied().unwrap_or(false);
    for (i, wait) in waits.into_iter().enumerate() {
        if let Some(cp) = wait {
            if !matches!(decisions[i], Decision::Excluded) || (seeds[i] && reached(cp)) {
                decisions[i] = Decision::Pending(dag.label(rules, cp).to_string());
            }
        }
    }
}

/// `--until R` where R's jobs may be known only once checkpoints have run: the checkpoint jobs
/// that jobs wait for (or read) and that no job of R precedes. What follows such a checkpoint
/// may be R's jobs, which need it as a static graph's `--until R` needs everything upstream:
/// it runs now, and R's jobs are planned in a later pass. A checkpoint after one of R's jobs
/// cannot lead to R and stays excluded.
pub fn until_checkpoints(dag: &Dag, until: &[RuleId]) -> Vec<JobId> {
    // Whether each job is one of R's or comes after one, in dependency order.
    let mut preceded = vec![false; dag.len()];
    for &id in dag.order() {
        let job = dag.job(id);
        preceded[id.0 as usize] =
            until.contains(&job.rule) || job.deps.iter().any(|d| preceded[d.0 as usize]);
    }
    let mut out: Vec<JobId> = Vec::new();
    for i in 0..dag.len() as u32 {
        let job = dag.job(JobId(i));
        let read = job
            .awaits()
            .into_iter()
            .chain(job.consulted().iter().map(String::as_str));
        for cp in read.filter_map(|p| dag.producer(p)) {
            // Marked as preceded once taken, so each is taken once.
            if !std::mem::replace(&mut preceded[cp.0 as usize], true) {
                out.push(cp);
            }
        }
    }
    out
}
