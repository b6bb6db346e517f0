//! Executing one job's work: a shell command or a Rhai closure. The scheduler decides *when*;
//! this module only knows *how*, and reports back an [`Outcome`].

mod shell;

use std::collections::BTreeMap;

pub use shell::{ChildRegistry, Shell};

use crate::dag::Job;
use crate::diagnostic::Diagnostic;
use crate::rules::{Rule, Work};
use crate::script::{JobView, Runtime};
use crate::template::Values;

/// How a job's work ended.
#[derive(Debug)]
pub enum Failure {
    /// The command exited non-zero or was killed.
    Command(String),
    /// A Rhai error in the rule's closure.
    Script(Diagnostic),
    /// flowrun could not start the work.
    Setup(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Command(m) | Failure::Setup(m) => f.write_str(m),
            Failure::Script(d) => f.write_str(d.render().trim_end()),
        }
    }
}

/// Everything needed to run a job, borrowed from the scheduler.
pub struct JobContext<'a> {
    pub rule: &'a Rule,
    pub job: &'a Job,
    pub threads: u32,
    pub runtime: &'a Runtime,
    pub shell: &'a Shell,
    pub verbose: bool,
}

fn files(list: &[crate::dag::JobFile]) -> Vec<(Option<&str>, &str)> {
    list.iter()
        .map(|f| (f.name.as_deref(), f.path.as_str()))
        .collect()
}

impl JobContext<'_> {
    /// The shell command this job would run, if it is a shell job.
    pub fn command(&self) -> Option<String> {
        let Work::Shell(t) = &self.rule.work else {
            return None;
        };
        Some(t.render(&Values {
            input: files(&self.job.inputs),
            output: files(&self.job.outputs),
            log: files(&self.job.logs),
            params: &self.rule.params,
            wildcards: &self.job.wildcards,
            threads: self.threads,
            resources: &self.rule.resources,
        }))
    }

    /// Runs the work once.
    pub fn execute(&self, key: &str) -> Result<(), Failure> {
        match &self.rule.work {
            Work::Nothing => Ok(()),
            Work::Shell(_) => {
                let cmd = self.command().unwrap_or_default();
                if self.verbose {
                    eprintln!("    {cmd}");
                }
                let log = self.job.logs.first().map(|l| l.path.as_str());
                self.shell.run(key, &cmd, log, self.threads)
            }
            Work::Run(closure) => {
                let empty = BTreeMap::new();
                let view = JobView {
                    rule: &self.rule.name,
                    input: files(&self.job.inputs),
                    output: files(&self.job.outputs),
                    log: files(&self.job.logs),
                    wildcards: &self.job.wildcards,
                    params: &self.rule.params,
                    threads: self.threads,
                    resources: if self.rule.resources.is_empty() {
                        &empty
                    } else {
                        &self.rule.resources
                    },
                };
                self.runtime
                    .call_run(*closure, &view)
                    .map_err(Failure::Script)
            }
        }
    }
}
