//! The `process` and `hybrid` models, parent side: a pool of `procs` worker processes (see
//! [`super::worker`]), fed batches of items dynamically (each worker keeps two batches queued
//! so it never waits for the parent), results folded in item order as they become contiguous.
//!
//! Batches adapt to the items' cost ([`Batcher`]): they start at one item (`process`) or
//! `threads` items (`hybrid`, whose workers map a batch on `threads` threads) and grow while a
//! batch takes a worker less than [`BATCH_FAST`], so trivial items cost a frame each only at the
//! start, while slow items keep being handed out one at a time. A worker that dies, or reports
//! an error, fails the job at once: the other workers are killed and nothing waits forever.

use std::collections::VecDeque;
use std::io::{BufReader, BufWriter, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::worker::{self, Hello};
use super::{Failure, JobContext};
use crate::rules::decl::ModelKind;
use crate::script::{Folder, JobSpec, Value};
use crate::usage::Meter;
use nix::unistd::Pid;

/// Batches each worker has queued at most.
const IN_FLIGHT: usize = 2;

/// A batch that took a worker less than this doubles the worker's batch size.
const BATCH_FAST: Duration = Duration::from_millis(1);

/// A batch that took a worker more than this halves the worker's batch size.
const BATCH_SLOW: Duration = Duration::from_millis(8);

/// A batch stops growing once its items take this many encoded bytes.
const BATCH_BYTES: usize = 1 << 20;

/// Per-worker batch sizes that follow how long the worker's batches take.
///
/// The time a batch took is measured by the parent: from when the worker could start it (the
/// batch was sent and the worker's previous result, or its ready message, had arrived) to when
/// its results arrived. Batch sizes never exceed a `1 / (2 × procs)` share of the items not yet
/// handed out, so the end of a run stays balanced.
struct Batcher {
    min: usize,
    size: Vec<usize>,
    sent: Vec<VecDeque<Instant>>,
    free_since: Vec<Option<Instant>>,
}

impl Batcher {
    fn new(procs: usize, min: usize) -> Self {
        Self {
            min,
            size: vec![min; procs],
            sent: vec![VecDeque::new(); procs],
            free_since: vec![None; procs],
        }
    }

    fn ready(&mut self, w: usize) {
        self.free_since[w] = Some(Instant::now());
    }

    /// Items for worker `w`'s next batch, out of `left` not yet handed out.
    fn next(&mut self, w: usize, left: usize) -> usize {
        self.sent[w].push_back(Instant::now());
        let share = left.div_ceil(2 * self.size.len()).max(self.min);
        self.size[w].min(share)
    }

    /// Worker `w` returned its oldest batch.
    fn returned(&mut self, w: usize) {
        let now = Instant::now();
        let sent = self.sent[w].pop_front().unwrap_or(now);
        let start = self.free_since[w].map_or(sent, |f| f.max(sent));
        self.free_since[w] = Some(now);
        let took = now - start;
        if took < BATCH_FAST {
            self.size[w] = self.size[w].saturating_mul(2);
        } else if took > BATCH_SLOW {
            self.size[w] = (self.size[w] / 2).max(self.min);
        }
    }
}

enum Msg {
    Ready,
    Results(Vec<(u64, Value)>),
    Error(String),
    Gone,
}

struct Pool<'m> {
    children: Vec<Child>,
    /// Workers already reaped: their pids may be reused, so they are never signalled again.
    reaped: Vec<bool>,
    stdins: Vec<Option<BufWriter<ChildStdin>>>,
    key: String,
    registry: super::ChildRegistry,
    /// The job's meter, which every reaped worker adds its cost to.
    usage: &'m Meter,
}

impl Pool<'_> {
    /// Kills every worker with its process group (and so the subprocesses it started).
    fn kill(&mut self) {
        for (c, reaped) in self.children.iter_mut().zip(&self.reaped) {
            if !reaped {
                kill_group(c);
            }
        }
    }

    fn pid(&self, w: usize) -> Pid {
        Pid::from_raw(self.children[w].id() as i32)
    }

    /// Reaps worker `w` once it has ended (with `wait`, waiting for it), adding its cost.
    fn reap(&mut self, w: usize, wait: bool) -> Option<ExitStatus> {
        let pid = self.pid(w);
        let ended = if wait {
            crate::usage::reap(pid).ok()
        } else {
            crate::usage::try_reap(pid).ok().flatten()
        };
        let (status, cost) = ended?;
        self.reaped[w] = true;
        self.usage.add(cost);
        Some(status)
    }

    fn died(&mut self, w: usize) -> Failure {
        // Before reaping the dead worker (its pid stays reserved until then), so what it
        // started dies with it.
        self.kill();
        let status = self.reap(w, true);
        let pid = self.pid(w);
        let how = status.map_or_else(|| "ended".to_string(), super::shell::describe_status);
        Failure::Setup(format!("worker process {w} (pid {pid}) died: {how}"))
    }
}

impl Drop for Pool<'_> {
    fn drop(&mut self) {
        // Workers end when their input closes; one that does not at once is killed.
        self.stdins.clear();
        for w in 0..self.children.len() {
            if !self.reaped[w] && self.reap(w, false).is_none() {
                std::thread::sleep(Duration::from_millis(1));
                if self.reap(w, false).is_none() {
                    kill_group(&mut self.children[w]);
                    self.reap(w, true);
                }
            }
            self.registry.remove(&format!("{}#{w}", self.key));
        }
    }
}

/// SIGKILLs a worker's process group (each worker leads its own), so the subprocesses it
/// started end with it. Only for a worker not yet reaped (its pid cannot have been reused).
fn kill_group(c: &mut Child) {
    let _ = nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(c.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    );
    let _ = c.kill();
}

fn spawn<'m>(
    ctx: &'m JobContext<'_>,
    key: &str,
    spec: &JobSpec,
    count: usize,
    tx: &mpsc::Sender<(usize, Msg)>,
) -> Result<Pool<'m>, Failure> {
    let exe = std::env::current_exe()
        .map_err(|e| Failure::Setup(format!("cannot find the flowrun binary: {e}")))?;
    let threads = if ctx.model.kind == ModelKind::Hybrid {
        ctx.model.threads
    } else {
        1
    };
    let hello = serde_json::to_vec(&Hello {
        options: ctx.runtime.options().clone(),
        rule: ctx.rule.name.clone(),
        job: spec.clone(),
        threads,
    })
    .map_err(|e| Failure::Setup(e.to_string()))?;
    let mut pool = Pool {
        children: Vec::new(),
        reaped: Vec::new(),
        stdins: Vec::new(),
        key: key.to_string(),
        registry: ctx.shell.registry.clone(),
        usage: &ctx.usage,
    };
    for w in 0..count {
        let mut command = Command::new(&exe);
        command
            .arg(worker::WORKER_ARG)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .process_group(0);
        super::shell::die_with_parent(&mut command, nix::sys::signal::Signal::SIGKILL);
        let mut child = command
            .spawn()
            .map_err(|e| Failure::Setup(format!("cannot start worker process: {e}")))?;
        pool.registry.add(&format!("{key}#{w}"), child.id() as i32);
        let mut stdin = BufWriter::new(
            child
                .stdin
                .take()
                .ok_or_else(|| Failure::Setup("no worker stdin".into()))?,
        );
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| Failure::Setup("no worker stdout".into()))?;
        pool.children.push(child);
        pool.reaped.push(false);
        worker::write_frame(&mut stdin, worker::HELLO, &hello)
            .map_err(|e| Failure::Setup(format!("cannot talk to worker process: {e}")))?;
        pool.stdins.push(Some(stdin));
        let tx = tx.clone();
        std::thread::spawn(move || {
            let mut r = BufReader::with_capacity(1 << 16, stdout);
            loop {
                let msg = match worker::read_frame(&mut r) {
                    Ok(Some((worker::READY, _))) => Msg::Ready,
                    Ok(Some((worker::RESULTS, p))) => match worker::decode_items(&p) {
                        Ok(items) => Msg::Results(items),
                        Err(e) => Msg::Error(e),
                    },
                    Ok(Some((worker::ERROR, p))) => {
                        Msg::Error(String::from_utf8_lossy(&p).into_owned())
                    }
                    Ok(Some(_)) => Msg::Error("unexpected frame from worker".into()),
                    Ok(None) | Err(_) => Msg::Gone,
                };
                let end = matches!(msg, Msg::Error(_) | Msg::Gone);
                if tx.send((w, msg)).is_err() || end {
                    break;
                }
            }
        });
    }
    Ok(pool)
}

/// Maps `items` on a pool of worker processes and folds the results in item order.
pub fn map(
    ctx: &JobContext<'_>,
    key: &str,
    spec: &JobSpec,
    items: Vec<Value>,
    folder: &mut Folder<'_>,
) -> Result<(), Failure> {
    let n = items.len();
    if n == 0 {
        return Ok(());
    }
    let procs = (ctx.model.procs as usize).clamp(1, n);
    let mut batcher = Batcher::new(
        procs,
        match ctx.model.kind {
            ModelKind::Hybrid => ctx.model.threads.max(1) as usize,
            _ => 1,
        },
    );
    let mut queue = items.into_iter().enumerate().peekable();
    let (tx, rx) = mpsc::channel();
    let mut pool = spawn(ctx, key, spec, procs, &tx)?;
    drop(tx);
    let mut in_flight = vec![0usize; procs];
    let mut results: Vec<Option<Value>> = vec![None; n];
    let mut next = 0usize;
    let mut received = 0usize;
    let mut handed_out = 0usize;
    while received < n {
        if crate::interrupt::requested() {
            pool.kill();
            return Err(Failure::Setup("interrupted".into()));
        }
        let (w, msg) = match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(m) => m,
            Err(mpsc::RecvTimeoutError::Timeout) => continue,
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err(Failure::Setup("all worker processes ended".into()))
            }
        };
        match msg {
            Msg::Ready => batcher.ready(w),
            Msg::Results(batch) => {
                in_flight[w] -= 1;
                batcher.returned(w);
                for (i, v) in batch {
                    let slot = results
                        .get_mut(i as usize)
                        .ok_or_else(|| Failure::Setup("worker sent an unknown item".into()))?;
                    if slot.replace(v).is_none() {
                        received += 1;
                    }
                }
                while let Some(v) = results.get_mut(next).and_then(Option::take) {
                    folder.push(v)?;
                    next += 1;
                }
            }
            Msg::Error(e) => {
                pool.kill();
                return Err(Failure::Setup(format!("in worker process {w}: {e}")));
            }
            Msg::Gone => return Err(pool.died(w)),
        }
        // Keep every worker fed.
        for (w, slots) in in_flight.iter_mut().enumerate() {
            while *slots < IN_FLIGHT && queue.peek().is_some() {
                let size = batcher.next(w, n - handed_out);
                let mut payload = worker::Payload::default();
                while payload.count() < size && payload.bytes() < BATCH_BYTES {
                    let Some((i, v)) = queue.next() else { break };
                    payload.push(i as u64, &v).map_err(Failure::Setup)?;
                }
                handed_out += payload.count();
                let payload = payload.into_bytes();
                let sent = match pool.stdins[w].as_mut() {
                    Some(stdin) => worker::write_frame(stdin, worker::BATCH, &payload).is_ok(),
                    None => false,
                };
                if !sent {
                    return Err(pool.died(w));
                }
                *slots += 1;
            }
        }
    }
    for s in &mut pool.stdins {
        if let Some(mut stdin) = s.take() {
            let _ = stdin.flush();
        }
    }
    Ok(())
}
