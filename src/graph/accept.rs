//! `--accept` and `--list-changes`: the store's records judged against the present, without
//! running anything.
//!
//! `--accept` is Snakemake's `--touch` done with content rather than timestamps: each job whose
//! outputs exist but were made under other code, params or inputs gets its records rewritten
//! to the present (the current code and params hashes, the inputs' current signatures), so the
//! next run finds it up to date. Jobs with a missing or incomplete output are refused: there
//! is nothing to vouch for. `--list-changes` prints the outputs whose record disagrees with
//! the present on one trigger, as Snakemake's option of that name does. Both judge with the
//! default triggers (every one that compares a record with the present), whatever
//! `--rerun-triggers` says.

use crate::graph::dag::{Dag, JobId};
use crate::graph::plan::{Checker, Triggers};
use crate::graph::reason::Reason;
use crate::graph::store::{Record, Snapshot};
use crate::rules::registry::Rules;

/// The kinds `--list-changes` accepts.
pub const KINDS: [&str; 5] = ["code", "params", "input", "content", "software"];

/// One job `--accept` looked at.
#[derive(Debug)]
pub enum Verdict {
    /// Its records are rewritten; the reasons it would have rerun for.
    Accepted(Vec<Reason>),
    /// It cannot be accepted, for this reason.
    Refused(String),
}

/// What `--accept` decided: each job that was not up to date, in graph order, and the records
/// to write.
pub struct Acceptance {
    pub jobs: Vec<(JobId, Verdict)>,
    pub records: Vec<(String, Record)>,
}

/// Judges every job of `dag` and prepares records that make the accepted ones up to date.
pub fn accept(rules: &Rules, dag: &Dag, snapshot: &Snapshot) -> Acceptance {
    let mut checker = Checker::new(rules, dag, snapshot, Triggers::default());
    let mut out = Acceptance {
        jobs: Vec::new(),
        records: Vec::new(),
    };
    for &id in dag.order() {
        let (reasons, refresh) = checker.own_reasons(id);
        out.records.extend(refresh);
        if reasons.is_empty() || dag.job(id).outputs.is_empty() {
            continue;
        }
        if let Some(r) = reasons.iter().find(|r| r.trigger().is_none()) {
            out.jobs.push((id, Verdict::Refused(r.to_string())));
            continue;
        }
        let mut records = Vec::new();
        for o in &dag.job(id).outputs {
            match checker.record_for(id, &o.path) {
                Some(rec) => records.push((o.path.clone(), rec)),
                None => break,
            }
        }
        if records.len() < dag.job(id).outputs.len() {
            let verdict =
                Verdict::Refused("an input is missing, so the job cannot be vouched for".into());
            out.jobs.push((id, verdict));
            continue;
        }
        out.records.extend(records);
        out.jobs.push((id, Verdict::Accepted(reasons)));
    }
    out
}

/// The outputs whose record disagrees with the present on `kind` (one of [`KINDS`]), in graph
/// order.
pub fn list_changes(rules: &Rules, dag: &Dag, snapshot: &Snapshot, kind: &str) -> Vec<String> {
    let mut checker = Checker::new(rules, dag, snapshot, Triggers::default());
    let mut out = Vec::new();
    for &id in dag.order() {
        let (reasons, _) = checker.own_reasons(id);
        if reasons.iter().any(|r| r.trigger() == Some(kind)) {
            out.extend(dag.job(id).outputs.iter().map(|o| o.path.clone()));
        }
    }
    out
}
