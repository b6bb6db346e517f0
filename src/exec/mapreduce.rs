//! The map/reduce form under every model: make the items, have the model map them, fold the
//! results in item order, call `finish`.

use super::{asynchronous, chunked, mpi, process, thread, Failure, JobContext};
use crate::rules::decl::{MapReduceDecl, ModelKind};
use crate::script::{Runtime, Value};

/// Runs a map/reduce job.
pub fn run(ctx: &JobContext<'_>, key: &str, mr: &MapReduceDecl) -> Result<(), Failure> {
    let runtime = ctx.runtime;
    let spec = ctx.spec();
    let job = runtime.job_value(&spec)?;
    let mut folder = runtime.folder(mr);
    match ctx.model.kind {
        // The ranks do it all: items on rank 0, map everywhere, fold and `finish` on rank 0.
        ModelKind::Mpi => return mpi::run(ctx, key),
        ModelKind::Thread => {
            let items = runtime.items(mr, &job)?;
            thread::map(
                runtime,
                mr,
                &job,
                items,
                ctx.model.threads,
                &mut folder,
                &ctx.usage,
            )?;
        }
        ModelKind::Process | ModelKind::Hybrid => {
            let items = runtime.items(mr, &job)?;
            process::map(ctx, key, &spec, items, &mut folder)?;
        }
        ModelKind::Chunked => chunked::map(ctx, mr, &job, &mut folder)?,
        ModelKind::Async => {
            let items = runtime.items(mr, &job)?;
            asynchronous::map(runtime, mr, &job, items, ctx.model.concurrency, &mut folder)?;
        }
    }
    runtime.finish(mr, &job, folder.result())?;
    Ok(())
}

/// Maps one item; a request `map` returns (`http_get`...) is performed right here, blocking the
/// mapping thread, so a workflow gives the same results under every model (the `async` model
/// instead keeps many requests in flight). `index` is the item's, for messages.
pub(crate) fn map_item(
    runtime: &Runtime,
    mr: &MapReduceDecl,
    job: &Value,
    index: usize,
    item: Value,
) -> Result<Value, Failure> {
    let v = runtime.map(mr, job, item)?;
    super::asynchronous::resolve_blocking(v, index).map_err(Failure::Command)
}
