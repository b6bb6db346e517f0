//! How long the rest of a run will take, for the live status line.
//!
//! Each rule's mean job duration, times the cores each waiting job takes, divided by the `-j`
//! budget; running jobs count for what is left of their rule's mean. The mean is this run's
//! once a job of the rule finished; before that, the mean of the durations the store kept
//! from earlier runs of the planned jobs (so a second run has an estimate from its first
//! second); a rule with neither borrows the mean of every job finished in this run. With none
//! of these there is no estimate.

use std::time::{Duration, Instant};

use rustc_hash::FxHashMap;

use crate::graph::dag::JobId;
use crate::rules::registry::RuleId;

#[derive(Debug, Default, Clone, Copy)]
struct RuleStats {
    /// Core-weighted count of planned jobs that have not started.
    waiting_cores: u64,
    finished: u32,
    finished_secs: f64,
    /// Earlier runs' durations of this run's planned jobs.
    past: u32,
    past_secs: f64,
}

/// The running estimate of what is left.
#[derive(Debug)]
pub struct Eta {
    budget: u32,
    rules: FxHashMap<RuleId, RuleStats>,
    running: FxHashMap<JobId, (RuleId, u32, Instant)>,
    finished: u32,
    finished_secs: f64,
}

impl Eta {
    /// An estimate for a run with `budget` cores.
    pub fn new(budget: u32) -> Self {
        Self {
            budget: budget.max(1),
            rules: FxHashMap::default(),
            running: FxHashMap::default(),
            finished: 0,
            finished_secs: 0.0,
        }
    }

    /// A job of `rule` taking `cores` is planned; `past` is how long it took last time, in
    /// seconds, if the store remembers.
    pub fn planned(&mut self, rule: RuleId, cores: u32, past: Option<f64>) {
        let stats = self.rules.entry(rule).or_default();
        stats.waiting_cores += u64::from(cores);
        if let Some(secs) = past {
            stats.past += 1;
            stats.past_secs += secs;
        }
    }

    /// A planned job starts.
    pub fn started(&mut self, id: JobId, rule: RuleId, cores: u32, at: Instant) {
        self.unplan(rule, cores);
        self.running.insert(id, (rule, cores, at));
    }

    /// A job ended: a started one counts towards its rule's mean when it ran to completion
    /// (`took` is `Some`); one that never started leaves the plan.
    pub fn ended(&mut self, id: JobId, rule: RuleId, cores: u32, took: Option<Duration>) {
        if self.running.remove(&id).is_none() {
            self.unplan(rule, cores);
        }
        if let Some(took) = took {
            let stats = self.rules.entry(rule).or_default();
            stats.finished += 1;
            stats.finished_secs += took.as_secs_f64();
            self.finished += 1;
            self.finished_secs += took.as_secs_f64();
        }
    }

    fn unplan(&mut self, rule: RuleId, cores: u32) {
        if let Some(stats) = self.rules.get_mut(&rule) {
            stats.waiting_cores = stats.waiting_cores.saturating_sub(u64::from(cores));
        }
    }

    /// The mean duration of a job of `rule`: this run's, else earlier runs', else this run's
    /// over every rule.
    fn mean(&self, rule: RuleId) -> Option<f64> {
        match self.rules.get(&rule) {
            Some(s) if s.finished > 0 => Some(s.finished_secs / f64::from(s.finished)),
            Some(s) if s.past > 0 => Some(s.past_secs / f64::from(s.past)),
            _ if self.finished > 0 => Some(self.finished_secs / f64::from(self.finished)),
            _ => None,
        }
    }

    /// Time left at `now`, or `None` while some waiting or running job has no mean to go by.
    pub fn remaining(&self, now: Instant) -> Option<Duration> {
        if self.finished == 0 && self.rules.values().all(|s| s.past == 0) {
            return None;
        }
        let mut core_secs = 0.0;
        for (rule, stats) in &self.rules {
            if stats.waiting_cores > 0 {
                core_secs += self.mean(*rule)? * stats.waiting_cores as f64;
            }
        }
        for (rule, cores, at) in self.running.values() {
            let left = self.mean(*rule)? - now.saturating_duration_since(*at).as_secs_f64();
            core_secs += left.max(0.0) * f64::from(*cores);
        }
        Some(Duration::from_secs_f64(core_secs / f64::from(self.budget)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: RuleId = RuleId(0);
    const B: RuleId = RuleId(1);

    fn secs(d: Option<Duration>) -> Option<f64> {
        d.map(|d| (d.as_secs_f64() * 1000.0).round() / 1000.0)
    }

    #[test]
    fn unknown_until_a_job_finishes() {
        let t0 = Instant::now();
        let mut eta = Eta::new(2);
        eta.planned(A, 1, None);
        eta.planned(A, 1, None);
        assert_eq!(eta.remaining(t0), None);
        eta.started(JobId(0), A, 1, t0);
        assert_eq!(eta.remaining(t0), None);
    }

    #[test]
    fn earlier_runs_give_an_estimate_before_any_job_finishes() {
        let t0 = Instant::now();
        let mut eta = Eta::new(2);
        eta.planned(A, 1, Some(3.0));
        eta.planned(A, 1, Some(5.0));
        // Two jobs of 4 s (their mean) on 2 cores.
        assert_eq!(secs(eta.remaining(t0)), Some(4.0));
        // Once one finishes, this run's mean wins.
        eta.started(JobId(0), A, 1, t0);
        eta.ended(JobId(0), A, 1, Some(Duration::from_secs(1)));
        assert_eq!(secs(eta.remaining(t0)), Some(0.5));
    }

    #[test]
    fn waiting_jobs_use_their_rule_mean_over_the_core_budget() {
        let t0 = Instant::now();
        let mut eta = Eta::new(2);
        for _ in 0..5 {
            eta.planned(A, 1, None);
        }
        eta.started(JobId(0), A, 1, t0);
        eta.ended(JobId(0), A, 1, Some(Duration::from_secs(4)));
        // Four jobs of 4 s on 2 cores.
        assert_eq!(secs(eta.remaining(t0)), Some(8.0));
    }

    #[test]
    fn running_jobs_count_for_what_is_left_and_wide_jobs_take_more_cores() {
        let t0 = Instant::now();
        let mut eta = Eta::new(4);
        eta.planned(A, 1, None);
        eta.planned(A, 1, None);
        eta.planned(B, 4, None);
        eta.started(JobId(0), A, 1, t0);
        eta.ended(JobId(0), A, 1, Some(Duration::from_secs(2)));
        eta.started(JobId(1), A, 1, t0);
        let later = t0 + Duration::from_millis(500);
        // A's running job: 1.5 s left on 1 core; B borrows the overall mean, 2 s on 4 cores.
        assert_eq!(secs(eta.remaining(later)), Some((1.5 + 8.0) / 4.0));
        // A job past its rule's mean counts as nearly done, never negative.
        assert_eq!(secs(eta.remaining(t0 + Duration::from_secs(10))), Some(2.0));
    }

    #[test]
    fn jobs_that_never_start_leave_the_plan() {
        let t0 = Instant::now();
        let mut eta = Eta::new(1);
        eta.planned(A, 1, None);
        eta.planned(A, 1, None);
        eta.planned(A, 1, None);
        eta.started(JobId(0), A, 1, t0);
        eta.ended(JobId(0), A, 1, Some(Duration::from_secs(3)));
        // One is skipped by early cutoff, one blocked: nothing left.
        eta.ended(JobId(1), A, 1, None);
        eta.ended(JobId(2), A, 1, None);
        assert_eq!(secs(eta.remaining(t0)), Some(0.0));
    }
}
