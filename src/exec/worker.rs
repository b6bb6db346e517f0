//! Worker processes for the `process` and `hybrid` models: the flowrun binary re-executed as
//! `flowrun __worker`, talking to its parent over stdin/stdout in length-prefixed frames.
//!
//! A worker evaluates the same workflow with the same config (so it has the same closures),
//! then maps the batches of items it is sent, on `threads` threads, until its stdin closes. A
//! parent that dies closes the pipe too, so workers never outlive it for long.
//!
//! Frames: `u64` length (little-endian) of what follows, a tag byte, the payload.
//! - parent → worker: `H` hello (JSON: load options, rule name, job, threads);
//!   `B` batch (`u64` count, then per item `u64` index, `u64` length, encoded value).
//! - worker → parent: `K` ready; `R` results (same layout as a batch); `E` error (UTF-8 text).

use std::io::{self, BufReader, BufWriter, Read, Write};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::rules::decl::{MapReduceDecl, WorkDecl};
use crate::sandbox;
use crate::script::{self, JobSpec, LoadOptions, Runtime, Value};

/// The argument that starts worker mode.
pub const WORKER_ARG: &str = "__worker";

pub const HELLO: u8 = b'H';
pub const BATCH: u8 = b'B';
pub const READY: u8 = b'K';
pub const RESULTS: u8 = b'R';
pub const ERROR: u8 = b'E';

/// What a worker is told first.
#[derive(Debug, Serialize, Deserialize)]
pub struct Hello {
    pub options: LoadOptions,
    pub rule: String,
    pub job: JobSpec,
    pub threads: u32,
}

/// Writes one frame.
pub fn write_frame(w: &mut impl Write, tag: u8, payload: &[u8]) -> io::Result<()> {
    w.write_all(&((payload.len() + 1) as u64).to_le_bytes())?;
    w.write_all(&[tag])?;
    w.write_all(payload)?;
    w.flush()
}

/// Reads one frame; `None` at a clean end of stream.
pub fn read_frame(r: &mut impl Read) -> io::Result<Option<(u8, Vec<u8>)>> {
    let mut len = [0u8; 8];
    match r.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u64::from_le_bytes(len) as usize;
    if len == 0 {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "empty frame"));
    }
    let mut tag = [0u8; 1];
    r.read_exact(&mut tag)?;
    let mut buf = vec![0u8; len - 1];
    r.read_exact(&mut buf)?;
    Ok(Some((tag[0], buf)))
}

/// A batch or results payload built one item at a time, so a sender can stop adding items
/// once the payload is large enough.
pub struct Payload {
    buf: Vec<u8>,
    count: u64,
}

impl Default for Payload {
    fn default() -> Self {
        Self {
            buf: vec![0; 8],
            count: 0,
        }
    }
}

impl Payload {
    /// Appends one `(index, value)` pair.
    pub fn push(&mut self, index: u64, value: &Value) -> Result<(), String> {
        self.buf.extend_from_slice(&index.to_le_bytes());
        let at = self.buf.len();
        self.buf.extend_from_slice(&[0; 8]);
        value.encode(&mut self.buf).map_err(|e| e.to_string())?;
        let len = (self.buf.len() - at - 8) as u64;
        self.buf[at..at + 8].copy_from_slice(&len.to_le_bytes());
        self.count += 1;
        Ok(())
    }

    /// Items pushed so far.
    pub fn count(&self) -> usize {
        self.count as usize
    }

    /// Bytes encoded so far.
    pub fn bytes(&self) -> usize {
        self.buf.len()
    }

    /// The finished payload.
    pub fn into_bytes(mut self) -> Vec<u8> {
        self.buf[..8].copy_from_slice(&self.count.to_le_bytes());
        self.buf
    }
}

/// Encodes `(index, value)` pairs as a batch or results payload.
pub fn encode_items<'a>(
    items: impl ExactSizeIterator<Item = (u64, &'a Value)>,
) -> Result<Vec<u8>, String> {
    let mut out = Payload::default();
    for (i, v) in items {
        out.push(i, v)?;
    }
    Ok(out.into_bytes())
}

/// Decodes a batch or results payload.
pub fn decode_items(payload: &[u8]) -> Result<Vec<(u64, Value)>, String> {
    let bad = || "malformed batch".to_string();
    let mut rest = payload;
    let mut take = |n: usize| -> Result<&[u8], String> {
        if rest.len() < n {
            return Err(bad());
        }
        let (h, t) = rest.split_at(n);
        rest = t;
        Ok(h)
    };
    let u64_of = |b: &[u8]| u64::from_le_bytes(b.try_into().unwrap_or([0; 8]));
    let count = u64_of(take(8)?) as usize;
    let mut out = Vec::with_capacity(count.min(1 << 20));
    for _ in 0..count {
        let index = u64_of(take(8)?);
        let len = u64_of(take(8)?) as usize;
        let value = Value::decode(take(len)?).map_err(|e| e.to_string())?;
        out.push((index, value));
    }
    Ok(out)
}

fn fail(out: &mut impl Write, message: &str) -> u8 {
    let _ = write_frame(out, ERROR, message.as_bytes());
    crate::exit::JOB_FAILED
}

/// The map/reduce form of rule `name`, as this process's evaluation of the workflow has it.
pub(crate) fn find_map_reduce(
    rules: &[crate::rules::decl::RuleDecl],
    name: &str,
) -> Option<MapReduceDecl> {
    rules
        .iter()
        .find(|r| r.name == name)
        .and_then(|r| match &r.work {
            WorkDecl::MapReduce(mr) => Some(mr.clone()),
            _ => None,
        })
}

/// Maps a batch on the worker's threads; with one thread, on this thread (handing every batch
/// to a pool thread and back would cost two thread switches per batch).
fn map_batch(
    runtime: &Runtime,
    mr: &MapReduceDecl,
    job: &Value,
    pool: Option<&rayon::ThreadPool>,
    batch: Vec<(u64, Value)>,
) -> Result<Vec<(u64, Value)>, String> {
    let one = |(i, item): (u64, Value)| {
        super::mapreduce::map_item(runtime, mr, job, i as usize, item)
            .map(|v| (i, v))
            .map_err(|f| f.to_string())
    };
    match pool {
        Some(pool) => pool.install(|| batch.into_par_iter().map(one).collect()),
        None => batch.into_iter().map(one).collect(),
    }
}

static IN_WORKER: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether this process is a worker. Subprocesses a worker starts stay in its process group, so
/// the parent ends them with the worker (see `asynchronous::run_command`).
pub fn in_worker() -> bool {
    IN_WORKER.load(std::sync::atomic::Ordering::Relaxed)
}

/// Worker mode's main loop; returns the process exit code.
pub fn main() -> u8 {
    IN_WORKER.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut input = BufReader::with_capacity(1 << 16, io::stdin().lock());
    let mut output = BufWriter::with_capacity(1 << 16, io::stdout().lock());
    let hello: Hello = match read_frame(&mut input) {
        Ok(Some((HELLO, payload))) => match serde_json::from_slice(&payload) {
            Ok(h) => h,
            Err(e) => return fail(&mut output, &format!("bad hello: {e}")),
        },
        _ => return fail(&mut output, "expected a hello frame"),
    };
    let workflow = match script::load(&hello.options) {
        Ok(w) => w,
        Err(d) => return fail(&mut output, d.render().trim_end()),
    };
    let Some(mr) = find_map_reduce(&workflow.rules, &hello.rule) else {
        return fail(
            &mut output,
            &format!(
                "rule `{}` is not a map/reduce rule in the worker",
                hello.rule
            ),
        );
    };
    sandbox::set_phase(sandbox::Phase::Run);
    let runtime = workflow.runtime;
    let job = match runtime.job_value(&hello.job) {
        Ok(j) => j,
        Err(d) => return fail(&mut output, d.render().trim_end()),
    };
    let pool = if hello.threads > 1 {
        match rayon::ThreadPoolBuilder::new()
            .num_threads(hello.threads as usize)
            .build()
        {
            Ok(p) => Some(p),
            Err(e) => return fail(&mut output, &e.to_string()),
        }
    } else {
        None
    };
    if write_frame(&mut output, READY, &[]).is_err() {
        return crate::exit::JOB_FAILED;
    }
    loop {
        let batch = match read_frame(&mut input) {
            Ok(Some((BATCH, payload))) => match decode_items(&payload) {
                Ok(b) => b,
                Err(e) => return fail(&mut output, &e),
            },
            Ok(None) => return crate::exit::SUCCESS,
            Ok(Some((tag, _))) => {
                return fail(&mut output, &format!("unexpected frame `{}`", tag as char))
            }
            Err(e) => return fail(&mut output, &e.to_string()),
        };
        let results = map_batch(&runtime, &mr, &job, pool.as_ref(), batch);
        let payload = match results.and_then(|r| encode_items(r.iter().map(|(i, v)| (*i, v)))) {
            Ok(p) => p,
            Err(e) => return fail(&mut output, &e),
        };
        if write_frame(&mut output, RESULTS, &payload).is_err() {
            return crate::exit::JOB_FAILED;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_and_frames_round_trip() {
        let values: Vec<Value> = (0..3)
            .map(|i| Value::from_dynamic(rhai::Dynamic::from(format!("item {i}"))))
            .collect();
        let payload = encode_items(values.iter().enumerate().map(|(i, v)| (10 + i as u64, v)))
            .expect("encodes");
        let mut framed = Vec::new();
        write_frame(&mut framed, BATCH, &payload).expect("writes");
        let (tag, back) = read_frame(&mut framed.as_slice())
            .expect("reads")
            .expect("one frame");
        assert_eq!(tag, BATCH);
        let items = decode_items(&back).expect("decodes");
        let got: Vec<(u64, String)> = items
            .into_iter()
            .map(|(i, v)| (i, v.into_dynamic().to_string()))
            .collect();
        assert_eq!(
            got,
            [(10, "item 0"), (11, "item 1"), (12, "item 2")].map(|(i, s)| (i, s.to_string()))
        );
    }
}
