//! The `thread` model: `map` runs on a rayon pool of `threads` threads inside flowrun, all
//! calling into the same Rhai engine and AST; results are collected by item index and folded
//! in order, so the thread count never changes the result.

use rayon::prelude::*;

use super::Failure;
use crate::rules::decl::MapReduceDecl;
use crate::script::{Folder, Runtime, Value};
use crate::usage::{Meter, ThreadMark};

/// Maps `items` on `threads` threads and folds the results in item order.
pub fn map(
    runtime: &Runtime,
    mr: &MapReduceDecl,
    job: &Value,
    items: Vec<Value>,
    threads: u32,
    folder: &mut Folder<'_>,
    usage: &Meter,
) -> Result<(), Failure> {
    // Pool threads stop at the job's `timeout` like the job's own thread.
    let deadline = crate::interrupt::deadline();
    let map_one = |(i, it): (usize, Value)| {
        crate::interrupt::with_deadline(deadline, || {
            super::mapreduce::map_item(runtime, mr, job, i, it)
        })
    };
    let results: Result<Vec<Value>, Failure> = if threads <= 1 {
        items.into_iter().enumerate().map(map_one).collect()
    } else {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads as usize)
            .build()
            .map_err(|e| Failure::Setup(format!("cannot start {threads} threads: {e}")))?;
        let results = pool.install(|| items.into_par_iter().enumerate().map(map_one).collect());
        // The pool's threads were started for this job: all they did is its work.
        for spent in pool.broadcast(|_| ThreadMark::whole_thread()) {
            usage.add(spent);
        }
        results
    };
    for r in results? {
        folder.push(r)?;
    }
    Ok(())
}
