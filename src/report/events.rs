//! The one stream of what happens in a run.
//!
//! The scheduler emits each event once, through [`Events`]; from there it goes to the terminal
//! [`Display`] (the status line of [`super::progress`]) and to the [`Record`]'s [`Sink`]s: the
//! JSON Lines trace ([`super::trace`]) and the HTML report ([`super::html`]). None of them
//! talks back, so what the user sees, the trace and the report cannot disagree; and this
//! module knows none of them by name, only the two traits they implement.
//!
//! The display lives for one run (its status line is cleared when the run ends); the record
//! lives for the whole invocation, so watch mode writes one trace with a pass number on every
//! event, and rewrites the report after each pass.

use std::fmt;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use crate::graph::dag::{Dag, Job, JobId, JobLabel};
use crate::graph::reason::Reason;
use crate::rules::registry::{Rule, Rules};
use crate::usage::Usage;

/// A job as events name it.
#[derive(Clone, Copy)]
pub struct JobRef<'a> {
    pub id: JobId,
    pub rule: &'a Rule,
    pub job: &'a Job,
    /// Cores the job takes from the `-j` budget.
    pub cores: u32,
}

impl fmt::Display for JobRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        JobLabel(self.rule, self.job).fmt(f)
    }
}

/// How a job ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End<'a> {
    Ok,
    /// Failed, with the message shown to the user.
    Failed(&'a str),
    /// Skipped by early cutoff: its inputs were remade byte-identical. It never started.
    Skipped,
    /// Stopped by Ctrl-C, SIGTERM or a watch-mode restart.
    Interrupted,
    /// Never ran because a job it needs failed.
    Blocked,
}

impl End<'_> {
    /// The word the trace and the report use.
    pub fn status(&self) -> &'static str {
        match self {
            End::Ok => "ok",
            End::Failed(_) => "failed",
            End::Skipped => "skipped",
            End::Interrupted => "interrupted",
            End::Blocked => "blocked",
        }
    }
}

/// A job the plan runs, with why.
pub struct Planned<'a> {
    pub job: JobRef<'a>,
    pub reasons: &'a [Reason],
    /// How long the job took when it last ran, in seconds, if the store remembers.
    pub past: Option<f64>,
}

/// Something that happened in a run.
pub enum Event<'a> {
    RunStart {
        workflow: &'a Path,
        targets: &'a [String],
        cores: u32,
        jobs: &'a [Planned<'a>],
        /// The whole graph of the targets, jobs that are up to date included (the report
        /// shows their results and draws the rule graph).
        dag: &'a Dag,
        rules: &'a Rules,
    },
    JobStart {
        job: JobRef<'a>,
        reasons: &'a [Reason],
    },
    JobEnd {
        job: JobRef<'a>,
        end: End<'a>,
        took: Duration,
        /// What the job cost ([`crate::usage`]); `None` if it did no work.
        usage: Option<&'a Usage>,
    },
    /// Jobs planned while the run goes on: those that checkpoints which just finished told of.
    Grown {
        jobs: &'a [Planned<'a>],
        /// What to say: how many jobs, after how many checkpoints, planned in how long.
        text: &'a str,
        /// How long planning them took.
        took: Duration,
    },
    /// A retry, or the scheduler stopping running jobs.
    Note {
        verb: &'a str,
        job: Option<JobRef<'a>>,
        text: &'a str,
    },
    RunEnd {
        exit_code: u8,
        outcome: &'a Outcome,
    },
}

/// How a run ended.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub ran: usize,
    /// Jobs whose outputs were restored from the result cache instead of running.
    pub restored: usize,
    /// Labels of the jobs that ran, in the order they finished.
    pub ran_jobs: Vec<String>,
    pub cutoff: usize,
    pub failed: usize,
    /// Labels of the jobs that failed.
    pub failed_jobs: Vec<String>,
    /// Jobs that could not run because something they need failed.
    pub blocked: usize,
    pub interrupted: bool,
    /// Jobs left waiting for a checkpoint when the pass ended.
    pub pending: usize,
    /// Spent `temp()` files a pass kept because jobs waited for checkpoints (any of them may
    /// need one once planned); removed when the last pass has run everything.
    pub kept_temp: Vec<String>,
}

impl Outcome {
    /// Adds what a later pass of the same run did.
    pub fn absorb(&mut self, next: Outcome) {
        self.ran += next.ran;
        self.restored += next.restored;
        self.ran_jobs.extend(next.ran_jobs);
        self.cutoff += next.cutoff;
        self.failed += next.failed;
        self.failed_jobs.extend(next.failed_jobs);
        self.blocked += next.blocked;
        self.interrupted |= next.interrupted;
        self.pending = next.pending;
        self.kept_temp.extend(next.kept_temp);
    }

    /// Whether another pass should plan the jobs that waited for checkpoints: some did, this
    /// pass ran something (their checkpoints, it is hoped), and nothing failed (or the run
    /// keeps going after failures).
    pub fn wants_another_pass(&self, keep_going: bool) -> bool {
        self.pending > 0
            && (self.failed == 0 || keep_going)
            && !self.interrupted
            && self.ran + self.cutoff + self.restored > 0
    }
}

impl Outcome {
    /// The exit code this outcome calls for.
    pub fn exit_code(&self) -> u8 {
        if self.interrupted {
            crate::exit::INTERRUPTED
        } else if self.failed > 0 {
            crate::exit::JOB_FAILED
        } else {
            crate::exit::SUCCESS
        }
    }
}

/// When an event happened.
#[derive(Debug, Clone, Copy)]
pub struct Stamp {
    pub now: Instant,
    /// Since the record began (the start of the invocation).
    pub t: Duration,
    /// The pass (1 outside watch mode).
    pub pass: u32,
}

/// A consumer of every event of the invocation (the trace, the report).
pub trait Sink {
    /// Takes one event; `origin_utc` is the wall-clock time the record began.
    fn take(&mut self, event: &Event<'_>, stamp: Stamp, origin_utc: SystemTime);
}

/// The terminal display of one run: shown each event, and ticked while nothing happens.
pub trait Display {
    fn show(&mut self, event: &Event<'_>, now: Instant);
    fn tick(&mut self, now: Instant);
}

/// Where events go beyond the terminal, for the whole invocation: the trace and the report.
pub struct Record {
    origin: Instant,
    origin_utc: SystemTime,
    pass: u32,
    sinks: Vec<Box<dyn Sink>>,
}

impl Record {
    /// A record that begins now and hands every event to `sinks`.
    pub fn new(sinks: Vec<Box<dyn Sink>>) -> Self {
        Self {
            origin: Instant::now(),
            origin_utc: SystemTime::now(),
            pass: 0,
            sinks,
        }
    }

    fn take(&mut self, event: &Event<'_>, now: Instant) {
        if matches!(event, Event::RunStart { .. }) {
            self.pass += 1;
        }
        let stamp = Stamp {
            now,
            t: now.saturating_duration_since(self.origin),
            pass: self.pass,
        };
        for sink in &mut self.sinks {
            sink.take(event, stamp, self.origin_utc);
        }
    }
}

/// The fan-out for one run: the terminal display and the record.
pub struct Events<'r> {
    display: Box<dyn Display + 'r>,
    record: &'r mut Record,
}

impl<'r> Events<'r> {
    pub fn new(display: Box<dyn Display + 'r>, record: &'r mut Record) -> Self {
        Self { display, record }
    }

    /// Hands `event` to every consumer.
    pub fn emit(&mut self, event: &Event<'_>) {
        let now = Instant::now();
        self.display.show(event, now);
        self.record.take(event, now);
    }

    /// Lets the display redraw while nothing happens (elapsed time, ETA).
    pub fn tick(&mut self) {
        self.display.tick(Instant::now());
    }
}
