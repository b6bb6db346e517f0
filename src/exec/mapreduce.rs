//! The map/reduce form under every model: make the items, have the model map them, fold the
//! results in item order, call `finish`.

use super::{chunked, mpi, process, thread, Failure, JobContext};
use crate::rule::{MapReduceDecl, ModelKind};

/// Runs a map/reduce job.
pub fn run(ctx: &JobContext<'_>, key: &str, mr: &MapReduceDecl) -> Result<(), Failure> {
    if ctx.model.kind == ModelKind::Mpi {
        // The ranks do it all: items on rank 0, map everywhere, fold and `finish` on rank 0.
        return mpi::run(ctx, key);
    }
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
        ModelKind::Chunked => chunked::map(ctx, mr, &job, &mut folder)?,
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
