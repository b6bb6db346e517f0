//! The `chunked` model: the rule's first input streamed in blocks of `chunk` rows, each block
//! mapped as a `Matrix` on `threads` threads, results folded in block order.
//!
//! Memory stays bounded whatever the input size: one reader thread reads blocks with large
//! sequential reads into a channel holding at most `threads` blocks, and each of the `threads`
//! mappers holds one block. The reader also needs one of `2 × threads + 1` tokens to read a
//! block, and a token comes back only when that block's result has been folded, so at most
//! `2 × threads + 1` blocks (each `chunk × columns × 8` bytes) are read and not yet folded at
//! any moment: blocks in memory and results waiting in the reorder buffer together, even when
//! one slow block holds up the fold.
//!
//! The input format follows the file name: `.npy` (NumPy), `.csv`, anything else raw
//! little-endian f64 with `params.cols` columns.

use std::collections::BTreeMap;
use std::sync::{mpsc, Arc, Mutex};

use super::{Failure, JobContext};
use crate::native::blocks::format_for;
use crate::native::matrix::Matrix;
use crate::native::rows::{RowFormat, RowReader};
use crate::rule::MapReduceDecl;
use crate::script::{Folder, Value};

fn format_of(ctx: &JobContext<'_>, path: &str) -> Result<RowFormat, Failure> {
    let cols = ctx
        .rule
        .params
        .get("cols")
        .and_then(serde_json::Value::as_u64);
    format_for(path, cols.map(|c| c as usize))
        .map_err(|e| Failure::Setup(format!("{e} with `params: #{{ cols: N }}`")))
}

/// Streams the first input in chunks, maps them in parallel and folds in order.
pub fn map(
    ctx: &JobContext<'_>,
    mr: &MapReduceDecl,
    job: &Value,
    folder: &mut Folder<'_>,
) -> Result<(), Failure> {
    let path = &ctx.job.inputs[0].path;
    let format = format_of(ctx, path)?;
    let mut reader = RowReader::open(path, format).map_err(|e| Failure::Setup(e.to_string()))?;
    let cols = reader.cols();
    let chunk = usize::try_from(ctx.model.chunk)
        .unwrap_or(usize::MAX)
        .max(1);
    let threads = ctx.model.threads.max(1) as usize;
    let runtime = ctx.runtime;

    let window = 2 * threads + 1;
    let (token_tx, token_rx) = mpsc::sync_channel::<()>(window);
    for _ in 0..window {
        let _ = token_tx.send(());
    }
    let mut tokens = Some(token_tx);
    let (block_tx, block_rx) = mpsc::sync_channel::<(usize, Matrix)>(threads);
    let block_rx = Arc::new(Mutex::new(block_rx));
    let (result_tx, result_rx) = mpsc::channel::<(usize, Result<Value, Failure>)>();
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        let stop = &stop;
        let reader_tx = result_tx.clone();
        scope.spawn(move || {
            let mut index = 0;
            loop {
                if token_rx.recv().is_err()
                    || stop.load(std::sync::atomic::Ordering::Relaxed)
                    || crate::interrupt::requested()
                {
                    break;
                }
                let mut buf = Vec::new();
                match reader.next_block(chunk, &mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        let m = match Matrix::from_vec(n, cols, buf) {
                            Ok(m) => m,
                            Err(e) => {
                                let _ = reader_tx.send((index, Err(Failure::Setup(e.to_string()))));
                                break;
                            }
                        };
                        if block_tx.send((index, m)).is_err() {
                            break;
                        }
                        index += 1;
                    }
                    Err(e) => {
                        let _ = reader_tx.send((index, Err(Failure::Setup(e.to_string()))));
                        break;
                    }
                }
            }
        });
        let deadline = crate::interrupt::deadline();
        for _ in 0..threads {
            let rx = Arc::clone(&block_rx);
            let tx = result_tx.clone();
            scope.spawn(move || loop {
                let next = rx.lock().ok().and_then(|r| r.recv().ok());
                let Some((i, m)) = next else { break };
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    continue;
                }
                let r = crate::interrupt::with_deadline(deadline, || {
                    super::mapreduce::map_item(runtime, mr, job, i, Value::matrix(m))
                });
                if tx.send((i, r)).is_err() {
                    break;
                }
            });
        }
        drop(result_tx);
        let mut pending: BTreeMap<usize, Value> = BTreeMap::new();
        let mut next = 0usize;
        let mut outcome = Ok(());
        for (i, r) in result_rx {
            match r {
                Ok(v) if outcome.is_ok() => {
                    pending.insert(i, v);
                    while let Some(v) = pending.remove(&next) {
                        if let Err(d) = folder.push(v) {
                            outcome = Err(Failure::Script(d));
                            stop.store(true, std::sync::atomic::Ordering::Relaxed);
                            tokens = None;
                            break;
                        }
                        next += 1;
                        if let Some(t) = &tokens {
                            let _ = t.send(());
                        }
                    }
                }
                Ok(_) => {}
                Err(f) => {
                    if outcome.is_ok() {
                        outcome = Err(f);
                    }
                    stop.store(true, std::sync::atomic::Ordering::Relaxed);
                    tokens = None;
                }
            }
        }
        if outcome.is_ok() && crate::interrupt::requested() {
            outcome = Err(Failure::Setup("interrupted".into()));
        }
        outcome
    })
}
