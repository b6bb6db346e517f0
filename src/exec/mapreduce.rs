//! The map/reduce form under every model: make the items, have the model map them, fold the
//! results in item order, call `finish`.

use super::{asynchronous, process, thread, Failure, JobContext};
use crate::rule::{MapReduceDecl, ModelKind};

/// Runs a map/reduce job.
pub fn run(ctx: &JobContext<'_>, key: &str, mr: &MapReduceDecl) -> Result<(), Failure> {
    let runtime = ctx.runtime;
    let spec = ctx.spec();
    let job = runtime.job_value(&spec)?;
    let mut folder = runtime.folder(mr);
    match ctx.model.kind {
        ModelKind::Thread => {
            let items = runtime.items(mr, &job)?;
            thread::map(runtime, mr, &job, items, ctx.model.threads, &mut folder)?;
        }
        ModelKind::Process | ModelKind::Hybrid => {
            let items = runtime.items(mr, &job)?;
            process::map(ctx, key, &spec, items, &mut folder)?;
        }
        ModelKind::Async => {
            let items = runtime.items(mr, &job)?;
            asynchronous::map(runtime, mr, &job, items, ctx.model.concurrency, &mut folder)?;
        }
        other => {
            return Err(Failure::Setup(format!(
                "the `{}` model is not available in this build",
                other.name()
            )))
        }
    }
    runtime.finish(mr, &job, folder.result())?;
    Ok(())
}
