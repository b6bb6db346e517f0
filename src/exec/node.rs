//! A cluster job's side: `flowrun __job SPEC`, started on the compute node by the batch script
//! the SLURM executor submits.
//!
//! It evaluates the same workflow with the same config, binds the one job the spec names (the
//! graph is resolved backward from one of its outputs, so only that job's upstream is bound),
//! and runs it exactly as a local run would: `shell`, a `run` closure, or the map/reduce form
//! under any execution model, `mpi` with `srun` as the launcher inside the allocation. Then it
//! writes an exit-status file beside the job's log. That file is what the submitting flowrun
//! trusts when the cluster has forgotten the job, and it is written last, after the outputs, so
//! its presence means the work is over.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::mpi::Launcher;
use super::{ChildRegistry, JobContext, Shell};
use crate::graph::dag::{Dag, JobId, Target};
use crate::native::atomic::write_atomic;
use crate::rules::registry::Rules;
use crate::script::{self, LoadOptions};
use crate::usage::{Meter, Usage};
use crate::{exit, sandbox, STATE_DIR};

/// The argument that starts a cluster job.
pub const NODE_ARG: &str = "__job";

/// What the submitting flowrun tells the job (a JSON file beside its log).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeJob {
    /// The workflow, with the config files and overrides of the run (absolute paths).
    pub options: LoadOptions,
    /// The run's working directory.
    pub dir: PathBuf,
    /// A file the job makes, or the rule's name for a job without outputs: the target the graph
    /// is resolved from.
    pub target: String,
    /// The job's label, e.g. `count[s=a]`.
    pub label: String,
    /// Where the exit-status file goes (`<dir>/<job id>.exit`).
    pub status_dir: PathBuf,
    /// The MPI launcher inside the allocation.
    pub launcher: String,
    pub launcher_args: Vec<String>,
    /// Seconds work stopped by a rule's `timeout` gets between SIGTERM and SIGKILL.
    pub grace: f64,
    /// Which attempt of the job this is (`job.attempt`): 1, then one more per retry.
    pub attempt: u32,
}

/// How the job ended, as the job itself saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitStatus {
    /// The process exit code: [`exit::SUCCESS`], or why not.
    pub code: u8,
    /// What went wrong, when something did.
    pub message: Option<String>,
    /// What the job cost, measured on the node as a local run measures it (absent in the files
    /// of a flowrun from before it was sent back).
    #[serde(default)]
    pub usage: Option<Usage>,
}

/// The exit-status file of cluster job `job_id`.
pub fn status_path(status_dir: &Path, job_id: &str) -> PathBuf {
    status_dir.join(format!("{job_id}.exit"))
}

/// Reads an exit-status file; `None` while it does not exist (or is not whole yet).
pub fn read_status(path: &Path) -> Option<ExitStatus> {
    let text = std::fs::read(path).ok()?;
    serde_json::from_slice(&text).ok()
}

/// `flowrun __job SPEC`: runs one job; returns the process exit code.
pub fn main() -> u8 {
    let Some(spec_path) = std::env::args().nth(2) else {
        eprintln!("error: usage: flowrun {NODE_ARG} SPEC (started by the SLURM executor)");
        return exit::WORKFLOW_ERROR;
    };
    let spec: NodeJob = match std::fs::read(&spec_path)
        .map_err(|e| e.to_string())
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
    {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: cannot read the job spec `{spec_path}`: {e}");
            return exit::WORKFLOW_ERROR;
        }
    };
    if let Err(e) = crate::interrupt::install() {
        eprintln!("warning: cannot install signal handlers: {e}");
    }
    let usage = Arc::new(Meter::default());
    let (code, message) = match run(&spec, &usage) {
        Ok(()) => (exit::SUCCESS, None),
        Err((code, message)) => {
            eprintln!("error: {message}");
            (code, Some(message))
        }
    };
    let status = ExitStatus {
        code,
        message,
        usage: Some(usage.total()),
    };
    let job_id = std::env::var("SLURM_JOB_ID").unwrap_or_else(|_| "local".into());
    let path = status_path(&spec.status_dir, &job_id);
    let bytes = serde_json::to_vec(&status).unwrap_or_default();
    if let Err(e) = write_atomic(&path, &bytes) {
        eprintln!("error: cannot write `{}`: {e}", path.display());
        return exit::JOB_FAILED;
    }
    status.code
}

/// Loads the workflow, binds the job and runs it.
fn run(spec: &NodeJob, usage: &Arc<Meter>) -> Result<(), (u8, String)> {
    let broken = |m: String| (exit::WORKFLOW_ERROR, m);
    std::env::set_current_dir(&spec.dir)
        .map_err(|e| broken(format!("cannot change to `{}`: {e}", spec.dir.display())))?;
    let mut workflow = script::load(&spec.options).map_err(|d| broken(d.render()))?;
    let decls = std::mem::take(&mut workflow.rules);
    let all = |ds: Vec<crate::diagnostic::Diagnostic>| {
        broken(ds.iter().map(|d| d.render()).collect::<String>())
    };
    let rules = Rules::build(decls, &workflow.constraints).map_err(all)?;
    // The job's functions of the wildcards run here again; any checkpoint they read has run.
    let exists = |path: &str| Path::new(path).exists();
    let targets = [Target::parse(&spec.target, &rules)];
    let dag = Dag::resolve(&rules, &workflow.runtime, &exists, &targets).map_err(all)?;
    let id = (0..dag.len() as u32)
        .map(JobId)
        .find(|id| dag.label(&rules, *id).to_string() == spec.label)
        .ok_or_else(|| {
            broken(format!(
                "the workflow as loaded on this node has no job `{}` making `{}`; was it edited \
                 after the run started?",
                spec.label, spec.target
            ))
        })?;
    let job = dag.job(id);
    let rule = rules.get(job.rule);
    // A retry whose threads or resources grow with the attempt runs with what it was given.
    let grown = job
        .at_attempt(rule, &workflow.runtime, spec.attempt)
        .transpose()
        .map_err(|d| broken(d.render()))?;
    let job = grown.as_ref().unwrap_or(job);
    sandbox::set_phase(sandbox::Phase::Run);
    let shell = Shell {
        registry: ChildRegistry::default(),
        scripts_dir: Path::new(STATE_DIR).join("scripts"),
        mpi: Launcher {
            program: spec.launcher.clone(),
            args: spec.launcher_args.clone(),
        },
    };
    let ctx = JobContext {
        rule,
        job,
        model: job.model(rule),
        runtime: &workflow.runtime,
        shell: &shell,
        verbose: false,
        input_hash: None,
        attempt: spec.attempt,
        usage: Arc::clone(usage),
    };
    let grace = Duration::from_secs_f64(spec.grace.max(0.0));
    ctx.execute_within(&spec.label, grace).map_err(|f| {
        let code = if crate::interrupt::requested() {
            exit::INTERRUPTED
        } else {
            exit::JOB_FAILED
        };
        (code, f.to_string())
    })
}
