//! What the HTML report shows, gathered from a run's events: every planned job with its status,
//! start, duration and the lane it ran in; and, from the whole graph, its rule graph and the
//! outputs marked for the report.
//!
//! Lanes are slots of concurrently running jobs: a starting job takes the lowest free lane, so
//! the chart has as many lanes as the run ever had jobs running at once (at most `-j`).

use std::time::{Duration, SystemTime};

use rustc_hash::FxHashMap;

use crate::graph::dag::JobId;
use crate::graph::rulegraph::RuleGraph;
use crate::report::events::{End, Event, Planned, Stamp};
use crate::report::results;
use crate::usage::Usage;

/// One planned job.
#[derive(Debug, Clone)]
pub struct Row {
    pub label: String,
    pub rule: String,
    pub wildcards: String,
    pub reasons: Vec<String>,
    /// `ok`, `failed`, `skipped`, `interrupted`, `blocked`, or `not started`.
    pub status: &'static str,
    pub message: Option<String>,
    /// Seconds from the run's start; `None` if it never started.
    pub start: Option<f64>,
    pub duration: f64,
    pub lane: Option<u32>,
    /// What the job cost, if it ran.
    pub usage: Option<Usage>,
}

/// How the run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    pub exit_code: u8,
    pub ran: usize,
    pub skipped: usize,
    pub failed: usize,
    pub blocked: usize,
    pub interrupted: bool,
}

/// The report's data for the latest run (in watch mode, the latest pass).
#[derive(Debug, Default)]
pub struct Timeline {
    pub workflow: String,
    pub targets: Vec<String>,
    pub cores: u32,
    pub started_utc: String,
    pub pass: u32,
    pub rows: Vec<Row>,
    /// Seconds from start to end, once the run ended.
    pub wall: Option<f64>,
    pub totals: Option<Totals>,
    /// Lanes the chart needs.
    pub lanes: u32,
    /// Which rule feeds which in the whole graph, and the names of its rules, in its order.
    pub rule_graph: RuleGraph,
    pub rule_names: Vec<String>,
    /// The outputs marked with `report()` of every job in the graph.
    pub results: Vec<results::Entry>,
    pub(crate) begun: Duration,
    pub(crate) index: FxHashMap<JobId, usize>,
    pub(crate) busy: Vec<bool>,
}

impl Timeline {
    fn since_start(&self, stamp: Stamp) -> f64 {
        stamp.t.saturating_sub(self.begun).as_secs_f64()
    }

    /// Rows for jobs about to run.
    fn add_rows(&mut self, jobs: &[Planned<'_>]) {
        for p in jobs {
            self.index.insert(p.job.id, self.rows.len());
            self.rows.push(Row {
                label: p.job.to_string(),
                rule: p.job.rule.name.clone(),
                wildcards: p
                    .job
                    .job
                    .wildcards
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                reasons: p.reasons.iter().map(ToString::to_string).collect(),
                status: "not started",
                message: None,
                start: None,
                duration: 0.0,
                lane: None,
                usage: None,
            });
        }
    }

    /// Takes one event into account.
    pub fn take(&mut self, event: &Event<'_>, stamp: Stamp, origin_utc: SystemTime) {
        match event {
            Event::RunStart {
                workflow,
                targets,
                cores,
                jobs,
                dag,
                rules,
            } => {
                let rule_graph = RuleGraph::of(dag);
                *self = Timeline {
                    workflow: workflow.display().to_string(),
                    targets: targets.to_vec(),
                    cores: *cores,
                    started_utc: crate::report::trace::utc(origin_utc + stamp.t),
                    pass: stamp.pass,
                    rule_names: rule_graph
                        .rules
                        .iter()
                        .map(|n| rules.get(n.rule).name.clone())
                        .collect(),
                    rule_graph,
                    results: results::collect(rules, dag),
                    begun: stamp.t,
                    ..Timeline::default()
                };
                self.add_rows(jobs);
            }
            Event::Grown { jobs, .. } => self.add_rows(jobs),
            Event::JobStart { job, .. } => {
                let lane = match self.busy.iter().position(|b| !b) {
                    Some(free) => free,
                    None => {
                        self.busy.push(false);
                        self.busy.len() - 1
                    }
                };
                self.busy[lane] = true;
                self.lanes = self.lanes.max(lane as u32 + 1);
                let start = self.since_start(stamp);
                if let Some(row) = self.row(job.id) {
                    row.start = Some(start);
                    row.lane = Some(lane as u32);
                }
            }
            Event::JobEnd {
                job,
                end,
                took,
                usage,
            } => {
                let now = self.since_start(stamp);
                let Some(row) = self.row(job.id) else { return };
                row.status = end.status();
                row.usage = usage.copied();
                if let End::Failed(message) = end {
                    row.message = Some(message.to_string());
                }
                row.duration = took.as_secs_f64();
                row.start.get_or_insert(now);
                if let Some(lane) = row.lane {
                    self.busy[lane as usize] = false;
                }
            }
            Event::Note { .. } => {}
            Event::RunEnd { exit_code, outcome } => {
                self.wall = Some(self.since_start(stamp));
                self.totals = Some(Totals {
                    exit_code: *exit_code,
                    ran: outcome.ran,
                    skipped: outcome.cutoff,
                    failed: outcome.failed,
                    blocked: outcome.blocked,
                    interrupted: outcome.interrupted,
                });
            }
        }
    }

    fn row(&mut self, id: JobId) -> Option<&mut Row> {
        let i = *self.index.get(&id)?;
        self.rows.get_mut(i)
    }
}
