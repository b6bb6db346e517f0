//! The one stream of what happens in a run.
//!
//! The scheduler emits each event once, through [`Events`]; from there it goes to the terminal
//! display ([`crate::progress`]) and to the [`Record`]: the JSON Lines trace
//! ([`crate::trace`]) and the HTML report ([`crate::timeline`], [`crate::report_html`]). None
//! of them talks back, so what the user sees, the trace and the report cannot disagree.
//!
//! The display lives for one run (its status line is cleared when the run ends); the record
//! lives for the whole invocation, so watch mode writes one trace with a pass number on every
//! event, and rewrites the report after each pass.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use crate::dag::{Job, JobId, JobLabel};
use crate::diagnostic::Diagnostic;
use crate::progress::Progress;
use crate::reason::Reason;
use crate::rules::Rule;
use crate::schedule::Outcome;
use crate::timeline::Timeline;
use crate::trace::Trace;

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
}

/// Something that happened in a run.
pub enum Event<'a> {
    RunStart {
        workflow: &'a Path,
        targets: &'a [String],
        cores: u32,
        jobs: &'a [Planned<'a>],
    },
    JobStart {
        job: JobRef<'a>,
        reasons: &'a [Reason],
    },
    JobEnd {
        job: JobRef<'a>,
        end: End<'a>,
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

/// When an event happened.
#[derive(Debug, Clone, Copy)]
pub struct Stamp {
    pub now: Instant,
    /// Since the record began (the start of the invocation).
    pub t: Duration,
    /// The pass (1 outside watch mode).
    pub pass: u32,
}

/// Where events go beyond the terminal: the trace and the report, for the whole invocation.
pub struct Record {
    origin: Instant,
    origin_utc: SystemTime,
    pass: u32,
    trace: Option<Trace>,
    report: Option<(PathBuf, Timeline)>,
}

/// Checks that `path` can be written now, leaving no file behind that was not there.
fn writable(path: &Path, what: &str) -> Result<(), Diagnostic> {
    let existed = path.exists();
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .map_err(|e| {
            Diagnostic::new(format!("cannot write the {what} `{}`: {e}", path.display()))
        })?;
    if !existed {
        let _ = std::fs::remove_file(path);
    }
    Ok(())
}

impl Record {
    /// Opens the trace (`--trace`) and checks the report path (`--report`) before anything
    /// runs, so a bad path is a command-line error rather than a lost report.
    pub fn open(trace: Option<&Path>, report: Option<&Path>) -> Result<Self, Diagnostic> {
        let trace = trace
            .map(|p| {
                Trace::create(p).map_err(|e| {
                    Diagnostic::new(format!("cannot write the trace `{}`: {e}", p.display()))
                })
            })
            .transpose()?;
        if let Some(p) = report {
            writable(p, "report")?;
        }
        Ok(Self {
            origin: Instant::now(),
            origin_utc: SystemTime::now(),
            pass: 0,
            trace,
            report: report.map(|p| (p.to_path_buf(), Timeline::default())),
        })
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
        if let Some(trace) = &mut self.trace {
            trace.write(event, stamp, self.origin_utc);
        }
        if let Some((path, timeline)) = &mut self.report {
            timeline.take(event, stamp, self.origin_utc);
            if matches!(event, Event::RunEnd { .. }) {
                // Atomically, as every file flowrun writes: watch mode rewrites the report
                // after each pass, and a browser reloading it must not get half a page.
                let html = crate::report_html::render(timeline);
                if let Err(e) = crate::native::atomic::write_atomic(&*path, html.as_bytes()) {
                    crate::app::warn(&format!(
                        "cannot write the report `{}`: {e}",
                        path.display()
                    ));
                }
            }
        }
    }
}

/// The fan-out for one run: the terminal display and the record.
pub struct Events<'r> {
    display: Progress,
    record: &'r mut Record,
}

impl<'r> Events<'r> {
    pub fn new(display: Progress, record: &'r mut Record) -> Self {
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
