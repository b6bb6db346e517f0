//! Where a job's work runs.
//!
//! The scheduler decides *when* a job runs and is the only owner of its state; a [`Place`]
//! decides *where*. [`Local`] runs the work on this machine, from a scheduler thread (shell
//! commands, worker processes and MPI launchers are flowrun's children, registered so that an
//! interrupt reaches them). A cluster executor is a second `Place`: it submits the job, waits
//! for its end, and answers with the same `Result`, so planning, retries, early cutoff, the
//! store and every report stay as they are.

use std::time::Duration;

use crate::exec::{Failure, JobContext, Shell};
use crate::rules::registry::Rule;

/// How a successful attempt made the job's outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// The work ran.
    Ran,
    /// The outputs were restored from the result cache ([`crate::run::cache`]).
    Restored,
}

/// Something that can run one attempt of a job and stop everything it runs.
pub trait Place: Sync {
    /// Runs one attempt of `job`'s work to its end; `label` names it (process registry, logs),
    /// `grace` is how long interrupted work gets between SIGTERM and SIGKILL.
    fn attempt(
        &self,
        job: &JobContext<'_>,
        label: &str,
        grace: Duration,
    ) -> Result<Attempt, Failure>;

    /// After an interrupt: stops all work still running here, waiting at most `grace`.
    fn stop_all(&self, grace: Duration);

    /// How much of the `-j` budget a job of `rule` takes when its model uses `cores` of it.
    /// Here: its cores. A cluster counts jobs, whatever their size.
    fn cost(&self, _rule: &Rule, cores: u32) -> u32 {
        cores
    }

    /// Whether the `-j` budget also caps the threads of `rule`'s model (as Snakemake scales
    /// threads down to `--cores`). A cluster job gets the cores it asks for from the cluster.
    fn caps_threads(&self, _rule: &Rule) -> bool {
        true
    }

    /// Whether job `label` is still at work from an earlier flowrun (which was killed), so
    /// that its outputs must be left alone: the next attempt follows it instead of starting
    /// it again.
    fn resumes(&self, _label: &str) -> bool {
        false
    }
}

/// This machine.
pub struct Local<'a>(pub &'a Shell);

impl Place for Local<'_> {
    fn attempt(
        &self,
        job: &JobContext<'_>,
        label: &str,
        grace: Duration,
    ) -> Result<Attempt, Failure> {
        job.execute_within(label, grace).map(|()| Attempt::Ran)
    }

    fn stop_all(&self, grace: Duration) {
        self.0.registry.terminate_all(grace);
    }
}
