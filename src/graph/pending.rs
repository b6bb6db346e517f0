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
use crate::rules::registry::Rules;

/// Turns the decisions of the jobs waiting for a checkpoint into [`Decision::Pending`].
pub fn hold(rules: &Rules, dag: &Dag, decisions: &mut [Decision]) {
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
    for (i, wait) in waits.into_iter().enumerate() {
        if let Some(cp) = wait {
            if !matches!(decisions[i], Decision::Excluded) {
                decisions[i] = Decision::Pending(dag.label(rules, cp).to_string());
            }
        }
    }
}
