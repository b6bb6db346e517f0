//! The `chunked` model: the rule's first input read in blocks of `chunk` rows, each block
//! mapped as a `Matrix` on `threads` threads, results folded in block order.
//!
//! Each of the `threads` workers claims the next block, reads it itself and maps it: with
//! binary inputs the reads are positioned (`pread`) and run in parallel, because one thread
//! copying from the page cache is slower than the cores can sum (a single reader thread was
//! the bottleneck: 2 threads took as long as 1). CSV has to be parsed in order, so its workers
//! take turns at the reader.
//!
//! Every worker reads into one buffer of its own, reused from block to block: no allocation,
//! page faults or zeroing per block. The block goes to `map` as a shared value and is taken
//! back afterwards; if the script kept it, the worker gets a copy and the script keeps its own.
//!
//! When the scheduler leaves the input's content hash to the job (its first run: no recorded
//! signature to trust, see docs/staleness.md), the blocks of a binary input are also fed, in
//! file order, to one streaming hasher after the header: the file is then read once, not once
//! to hash and once to compute. A worker waits for the blocks before its own to be hashed,
//! which costs little since hashing runs several times faster than reading.
//!
//! Memory stays bounded whatever the input size: a worker needs one of `2 × threads + 1`
//! tokens to claim a block, and a token comes back only when that block's result has been
//! folded, so at most `2 × threads + 1` blocks are claimed and not yet folded at any moment
//! (results waiting in the reorder buffer included, even when one slow block holds up the
//! fold), and only `threads` block buffers exist.
//!
//! The input format follows the file name: `.npy` (NumPy), `.csv`, anything else raw
//! little-endian f64 with `params.cols` columns.

use std::collections::BTreeMap;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Mutex, RwLock};

use super::{Failure, JobContext};
use crate::graph::filestate::OrderedHasher;
use crate::native::blocks::format_for;
use crate::native::matrix::Matrix;
use crate::native::rows::{RowFormat, RowReader};
use crate::rules::decl::MapReduceDecl;
use crate::rules::registry::Rule;
use crate::script::{Folder, Value};
use crate::usage::ThreadMark;

fn format_of(rule: &Rule, path: &str) -> Result<RowFormat, String> {
    let cols = rule.params.get("cols").and_then(serde_json::Value::as_u64);
    format_for(path, cols.map(|c| c as usize))
}

/// Whether reading `path` (the first input) yields its content hash: binary formats are read
/// whole, and on a little-endian machine the rows in memory are the file's bytes.
pub(super) fn hashes_while_reading(rule: &Rule, path: &str) -> bool {
    cfg!(target_endian = "little")
        && matches!(
            format_of(rule, path),
            Ok(RowFormat::Npy | RowFormat::Raw { .. })
        )
}

/// Streams the first input in chunks, maps them in parallel and folds in order.
pub fn map(
    ctx: &JobContext<'_>,
    mr: &MapReduceDecl,
    job: &Value,
    folder: &mut Folder<'_>,
) -> Result<(), Failure> {
    let path = &ctx.job.inputs[0].path;
    let format = format_of(ctx.rule, path)
        .map_err(|e| Failure::Setup(format!("{e} with `params: #{{ cols: N }}`")))?;
    let reader = RowReader::open(path, format).map_err(|e| Failure::Setup(e.to_string()))?;
    let cols = reader.cols();
    let chunk = usize::try_from(ctx.model.chunk)
        .unwrap_or(usize::MAX)
        .max(1);
    // The scheduler asks for the hash only where `hashes_while_reading` said it can be had.
    let digest = match &ctx.input_hash {
        Some(_) => Some(Digest::new(&reader).map_err(|e| Failure::Setup(e.to_string()))?),
        None => None,
    };
    let blocks = Blocks::new(reader, chunk, digest);
    let threads = ctx.model.threads.max(1) as usize;
    let runtime = ctx.runtime;

    let window = 2 * threads + 1;
    let (token_tx, token_rx) = mpsc::sync_channel::<()>(window);
    for _ in 0..window {
        let _ = token_tx.send(());
    }
    let mut tokens = Some(token_tx);
    let token_rx = Mutex::new(token_rx);
    let (result_tx, result_rx) = mpsc::channel::<(usize, Result<Value, Failure>)>();
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let (stop, blocks, token_rx, usage) = (&stop, &blocks, &token_rx, &ctx.usage);
        let deadline = crate::interrupt::deadline();
        for _ in 0..threads {
            let tx = result_tx.clone();
            scope.spawn(move || {
                let mut buf = Vec::new();
                loop {
                    let token = token_rx.lock().ok().and_then(|r| r.recv().ok());
                    if token.is_none()
                        || stop.load(Ordering::Relaxed)
                        || crate::interrupt::requested()
                    {
                        break;
                    }
                    let (i, read) = blocks.next(&mut buf);
                    let block = match read {
                        Ok(0) => break,
                        Ok(n) => Matrix::from_vec(n, cols, std::mem::take(&mut buf))
                            .map_err(|e| Failure::Setup(e.to_string())),
                        Err(e) => Err(Failure::Setup(e.to_string())),
                    };
                    let r = block.and_then(|m| {
                        let item = Value::shared_matrix(m);
                        let r = crate::interrupt::with_deadline(deadline, || {
                            super::mapreduce::map_item(runtime, mr, job, i, item.clone())
                        });
                        buf = item.into_matrix().map(Matrix::into_vec).unwrap_or_default();
                        r
                    });
                    let failed = r.is_err();
                    if tx.send((i, r)).is_err() || failed {
                        break;
                    }
                }
                // Started for this job: all this thread did is its work.
                usage.add(ThreadMark::whole_thread());
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
                            stop.store(true, Ordering::Relaxed);
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
                    stop.store(true, Ordering::Relaxed);
                    tokens = None;
                }
            }
        }
        if outcome.is_ok() && crate::interrupt::requested() {
            outcome = Err(Failure::Setup("interrupted".into()));
        }
        outcome
    })?;
    if let (Some(slot), Some(digest)) = (&ctx.input_hash, blocks.digest) {
        if let Ok(mut slot) = slot.lock() {
            *slot = digest.hasher.finish(digest.len);
        }
    }
    Ok(())
}

/// The content hash of the input, taken from the blocks as they are read.
struct Digest {
    hasher: OrderedHasher,
    /// The file's length: header and rows.
    len: u64,
}

impl Digest {
    fn new(reader: &RowReader) -> io::Result<Self> {
        let header = reader.header()?;
        let rows = reader.rows().unwrap_or(0) as u64;
        Ok(Self {
            hasher: OrderedHasher::new(&header),
            len: header.len() as u64 + rows * reader.cols() as u64 * 8,
        })
    }
}

/// The blocks of one input, claimed in turn by the workers.
struct Blocks {
    reader: RwLock<RowReader>,
    /// Binary formats are read at any position, in parallel; CSV only in order.
    random_access: bool,
    chunk: usize,
    next: AtomicUsize,
    /// Binary formats only.
    digest: Option<Digest>,
}

impl Blocks {
    fn new(reader: RowReader, chunk: usize, digest: Option<Digest>) -> Self {
        Self {
            random_access: reader.rows().is_some(),
            reader: RwLock::new(reader),
            chunk,
            next: AtomicUsize::new(0),
            digest,
        }
    }

    /// Claims the next block and reads it into `buf`: its index, and how many rows it has
    /// (0 past the end).
    fn next(&self, buf: &mut Vec<f64>) -> (usize, io::Result<usize>) {
        let poisoned = || io::Error::other("a reader thread panicked");
        if self.random_access {
            let i = self.next.fetch_add(1, Ordering::Relaxed);
            let read = self
                .reader
                .read()
                .map_err(|_| poisoned())
                .and_then(|r| r.read_block(i.saturating_mul(self.chunk), self.chunk, buf));
            if let Some(digest) = &self.digest {
                match read {
                    Ok(0) => {}
                    Ok(_) => digest.hasher.add(i, Some(bytemuck::cast_slice(buf))),
                    Err(_) => digest.hasher.add(i, None),
                }
            }
            (i, read)
        } else {
            let mut reader = self.reader.write();
            let i = self.next.fetch_add(1, Ordering::Relaxed);
            let read = match reader.as_deref_mut() {
                Ok(r) => r.next_block(self.chunk, buf),
                Err(_) => Err(poisoned()),
            };
            (i, read)
        }
    }
}
