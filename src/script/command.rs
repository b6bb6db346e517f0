//! `shell("...")` inside a `run` closure: Snakemake's `run:` blocks call `shell()` all the
//! time, so a ported rule can too.
//!
//! The command is a template like a rule's `shell` (`{input}`, `{output.x}`, `{params.p}`,
//! `{wildcards}`, `{rule}`, `{threads}`...), filled in from the job whose closure is running,
//! then run by the same executor as shell rules: strict bash, output appended to the job's log,
//! its process group recorded so Ctrl-C and the job's `timeout` reach it. The executor lives in
//! `exec`, which this module must not import; it hands over a [`CommandRunner`] for the
//! duration of the closure call instead, kept in a thread-local because Rhai calls native
//! functions without a way to pass it through.
//!
//! At definition time `shell()` is refused like every other effect: the sandbox stays.

use std::cell::RefCell;
use std::sync::Arc;

use rhai::{Engine, EvalAltResult, NativeCallContext};

use super::JobSpec;
use crate::rules::template::{Names, Template, Values};

/// Runs one filled-in command for the job whose closure is running; `Err` says how it failed.
pub type CommandRunner = Arc<dyn Fn(&str) -> Result<(), String> + Send + Sync>;

thread_local! {
    /// The job whose `run` closure this thread is calling, and how to run its commands.
    static CURRENT: RefCell<Option<(Arc<JobSpec>, CommandRunner)>> = const { RefCell::new(None) };
}

/// Clears the thread's job when the closure call ends, however it ends.
struct Current;

impl Drop for Current {
    fn drop(&mut self) {
        CURRENT.with(|c| c.borrow_mut().take());
    }
}

/// Calls `f` with `job` and `runner` available to `shell()`.
pub(super) fn with_job<R>(job: &JobSpec, runner: CommandRunner, f: impl FnOnce() -> R) -> R {
    CURRENT.with(|c| *c.borrow_mut() = Some((Arc::new(job.clone()), runner)));
    let _current = Current;
    f()
}

fn named(files: &[(Option<String>, String)]) -> Vec<(Option<&str>, &str)> {
    files
        .iter()
        .map(|(n, p)| (n.as_deref(), p.as_str()))
        .collect()
}

/// The command `text` filled in for `job`, or why it cannot be.
fn render(text: &str, job: &JobSpec) -> Result<String, String> {
    let template = Template::parse(text)?;
    fn names(files: &[(Option<String>, String)]) -> Vec<Option<&str>> {
        files.iter().map(|(n, _)| n.as_deref()).collect()
    }
    template.check(&Names {
        input: names(&job.input),
        output: names(&job.output),
        log: names(&job.log),
        params: job.params.keys().map(String::as_str).collect(),
        wildcards: job.wildcards.iter().map(|(k, _)| k.as_str()).collect(),
        resources: job.resources.keys().map(String::as_str).collect(),
        per_job: Vec::new(),
    })?;
    Ok(template.render(&Values {
        rule: &job.rule,
        input: named(&job.input),
        output: named(&job.output),
        log: named(&job.log),
        params: &job.params,
        wildcards: &job.wildcards,
        threads: job.threads,
        resources: &job.resources,
    }))
}

fn shell(ctx: NativeCallContext, text: &str) -> Result<(), Box<EvalAltResult>> {
    let fail = |msg: String| -> Box<EvalAltResult> {
        Box::new(EvalAltResult::ErrorRuntime(
            format!("shell: {msg}").into(),
            ctx.call_position(),
        ))
    };
    crate::sandbox::check_effect("shell")?;
    let current = CURRENT.with(|c| c.borrow().clone());
    let Some((job, runner)) = current else {
        return Err(fail(
            "runs commands only inside a rule's `run` closure (give a rule `shell: \"...\"` otherwise)"
                .into(),
        ));
    };
    let command = render(text, &job).map_err(fail)?;
    runner(&command).map_err(fail)
}

/// Registers `shell(command)`.
pub fn register(engine: &mut Engine) {
    engine.register_fn("shell", shell);
}
