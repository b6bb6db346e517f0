//! Watching a run's jobs with one `squeue` per poll round, whatever their number.
//!
//! Every job thread waits here for its own job's end. Whichever waiting thread finds the next
//! round due runs the one query for all of them (`squeue -h -t all --name RUN,…`, the run's
//! jobs by name, finished ones included) and wakes the others; the rest only read the board.
//! Nothing asks the controller about a single job, and nothing needs `sacct`.
//!
//! The interval adapts: right after a round that saw a job change state the next one comes
//! after `fastest`; each quiet round waits half as long again, up to `slowest`. A job the
//! queue no longer lists (SLURM forgot it, or the controller restarted) is judged by its
//! exit-status file, which the job writes after its outputs; a job that is neither listed nor
//! left such a file for [`LOST_AFTER`] rounds is lost.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::state::{parse_line, QueueLine, SlurmState, SQUEUE_FORMAT};
use crate::exec::node::{read_status, ExitStatus};

/// Rounds a job may go unlisted, without an exit-status file, before it counts as lost.
pub const LOST_AFTER: u32 = 3;

/// How a followed job ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ended {
    /// The last state the queue showed; `None` when it no longer lists the job.
    pub state: Option<SlurmState>,
    /// The job's own exit-status file, if it wrote one.
    pub status: Option<ExitStatus>,
}

struct Followed {
    run: String,
    label: String,
    status_file: PathBuf,
    state: Option<SlurmState>,
    /// Rounds in a row the queue did not list the job.
    unlisted: u32,
}

struct Board {
    jobs: HashMap<String, Followed>,
    next: Instant,
    interval: Duration,
    polling: bool,
    rounds: u64,
    /// The last `squeue` failure, while it keeps failing.
    failing: Option<String>,
}

/// The jobs being followed, and the poll rounds.
pub struct Tracker {
    board: Mutex<Board>,
    changed: Condvar,
    fastest: Duration,
    slowest: Duration,
}

/// Runs `squeue` for the jobs named `names` (all states, finished ones too).
pub fn query(names: &BTreeSet<String>) -> Result<Vec<QueueLine>, String> {
    let list = names.iter().cloned().collect::<Vec<_>>().join(",");
    let out = Command::new("squeue")
        .args(["-h", "-t", "all", "--name", &list, "-o", SQUEUE_FORMAT])
        .output()
        .map_err(|e| format!("cannot run `squeue`: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "squeue failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(parse_line)
        .collect())
}

impl Tracker {
    pub fn new(slowest: Duration) -> Self {
        let fastest = (slowest / 10).max(Duration::from_millis(100)).min(slowest);
        Self {
            board: Mutex::new(Board {
                jobs: HashMap::new(),
                next: Instant::now(),
                interval: fastest,
                polling: false,
                rounds: 0,
                failing: None,
            }),
            changed: Condvar::new(),
            fastest,
            slowest,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Board> {
        self.board.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts following job `id` of run `run`; the next round comes soon.
    pub fn follow(&self, id: &str, run: &str, label: &str, status_file: PathBuf) {
        let mut b = self.lock();
        b.jobs.insert(
            id.to_string(),
            Followed {
                run: run.to_string(),
                label: label.to_string(),
                status_file,
                state: Some(SlurmState::Active),
                unlisted: 0,
            },
        );
        b.interval = self.fastest;
        b.next = b.next.min(Instant::now() + self.fastest);
    }

    /// The jobs followed now.
    pub fn ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.lock().jobs.keys().cloned().collect();
        ids.sort_by_key(|id| id.parse::<u64>().unwrap_or(u64::MAX));
        ids
    }

    /// Status queries run so far.
    pub fn rounds(&self) -> u64 {
        self.lock().rounds
    }

    /// Waits until job `id` ended and stops following it.
    pub fn wait(&self, id: &str) -> Ended {
        let mut b = self.lock();
        loop {
            let Some(job) = b.jobs.get(id) else {
                return Ended {
                    state: None,
                    status: None,
                };
            };
            let status = match job.state {
                Some(SlurmState::Active) if b.failing.is_none() => None,
                _ => read_status(&job.status_file),
            };
            let over = match job.state {
                Some(s) => s.ended() || status.is_some(),
                None => status.is_some() || job.unlisted >= LOST_AFTER,
            };
            if over {
                let state = job.state;
                b.jobs.remove(id);
                return Ended { state, status };
            }
            b = self.step(b);
        }
    }

    /// Waits until no job is followed any more, or `limit` has passed; returns whether none is.
    pub fn drain(&self, limit: Duration) -> bool {
        let end = Instant::now() + limit;
        let mut b = self.lock();
        while !b.jobs.is_empty() {
            if Instant::now() >= end {
                return false;
            }
            b = self.step(b);
        }
        true
    }

    /// Runs the round if it is due and nobody else is running it, else waits for news.
    fn step<'g>(&'g self, mut b: MutexGuard<'g, Board>) -> MutexGuard<'g, Board> {
        let now = Instant::now();
        if b.polling || now < b.next {
            // While a round runs, its poller wakes everyone when it ends.
            let wait = if b.polling {
                Duration::from_millis(500)
            } else {
                b.next
                    .saturating_duration_since(now)
                    .clamp(Duration::from_millis(20), Duration::from_millis(500))
            };
            return self
                .changed
                .wait_timeout(b, wait)
                .map_or_else(|p| p.into_inner().0, |(g, _)| g);
        }
        b.polling = true;
        let names: BTreeSet<String> = b.jobs.values().map(|j| j.run.clone()).collect();
        drop(b);
        let answer = if names.is_empty() {
            Ok(Vec::new())
        } else {
            query(&names)
        };
        let mut b = self.lock();
        b.polling = false;
        b.rounds += 1;
        let mut changed = false;
        match answer {
            Ok(lines) => {
                if b.failing.take().is_some() {
                    eprintln!("note: squeue answers again");
                }
                let seen: HashMap<&str, &QueueLine> =
                    lines.iter().map(|l| (l.id.as_str(), l)).collect();
                for (id, job) in b.jobs.iter_mut() {
                    let line = seen
                        .get(id.as_str())
                        .filter(|l| l.name == job.run && l.comment == job.label);
                    let state = line.map(|l| l.state);
                    changed |= state != job.state;
                    job.state = state;
                    job.unlisted = if state.is_some() { 0 } else { job.unlisted + 1 };
                }
            }
            Err(e) => {
                // The exit-status files still tell which jobs are over; keep asking.
                if b.failing.is_none() {
                    eprintln!("warning: {e}; watching the jobs' exit-status files meanwhile");
                }
                b.failing = Some(e);
            }
        }
        b.interval = if changed {
            self.fastest
        } else {
            (b.interval.mul_f64(1.5)).min(self.slowest)
        };
        b.next = Instant::now() + b.interval;
        self.changed.notify_all();
        b
    }
}
