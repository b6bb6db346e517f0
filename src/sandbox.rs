//! The definition-time sandbox.
//!
//! Evaluating a workflow file (for a run, `--dry-run`, `--list`, `--dag`) may read files but must
//! never write files or run commands: only rule bodies, at run time, have effects. Native
//! functions with effects call [`check_effect`] first; the engine flips the phase to
//! [`Phase::Run`] once the workflow has been declared and jobs start.

use std::sync::atomic::{AtomicBool, Ordering};

use rhai::{EvalAltResult, Position};

static RUNNING: AtomicBool = AtomicBool::new(false);

/// Which half of a workflow's life the process is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// The workflow file is being evaluated: reads only.
    Definition,
    /// Jobs are running: rule bodies may write files and run commands.
    Run,
}

/// Switches the process-wide phase.
pub fn set_phase(phase: Phase) {
    RUNNING.store(phase == Phase::Run, Ordering::SeqCst);
}

/// The current phase.
pub fn phase() -> Phase {
    if RUNNING.load(Ordering::SeqCst) {
        Phase::Run
    } else {
        Phase::Definition
    }
}

/// Refuses an effect (`op` names the function) while the workflow is being defined.
pub fn check_effect(op: &str) -> Result<(), Box<EvalAltResult>> {
    match phase() {
        Phase::Run => Ok(()),
        Phase::Definition => Err(Box::new(EvalAltResult::ErrorRuntime(
            format!(
                "`{op}` is not allowed while the workflow is being defined: only rule bodies \
                 (`shell`, `run`, `map`, `finish`) may write files or run commands"
            )
            .into(),
            Position::NONE,
        ))),
    }
}
