//! What a run tells the user while it works: one line per job event on stderr, plain text (a
//! pipe or `NO_COLOR` gets no colour; `anstream` strips it).

use std::io::Write;
use std::time::Duration;

use anstyle::{AnsiColor, Style};

use crate::reason::Reason;

/// How much to say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verbosity {
    Quiet,
    Normal,
    Verbose,
}

/// Progress lines for one run.
pub struct Progress {
    total: usize,
    done: usize,
    verbosity: Verbosity,
}

const GREEN: Style = AnsiColor::Green.on_default().bold();
const RED: Style = AnsiColor::Red.on_default().bold();
const DIM: Style = Style::new().dimmed();

fn line(style: Style, verb: &str, rest: &str) {
    let mut err = anstream::stderr();
    let _ = writeln!(err, "{style}{verb:>9}{style:#} {rest}");
}

/// Formats a duration briefly (`0.3s`, `1m12s`).
pub fn brief(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 60.0 {
        format!("{s:.1}s")
    } else {
        format!("{}m{:02}s", (s / 60.0) as u64, (s % 60.0) as u64)
    }
}

impl Progress {
    /// Starts reporting a run of `total` jobs.
    pub fn new(total: usize, verbosity: Verbosity) -> Self {
        Self {
            total,
            done: 0,
            verbosity,
        }
    }

    fn counter(&self) -> String {
        let width = self.total.to_string().len();
        format!("[{:>width$}/{}]", self.done, self.total)
    }

    /// A job starts.
    pub fn start(&self, label: &str, reasons: &[Reason]) {
        if self.verbosity == Verbosity::Quiet {
            return;
        }
        line(GREEN, "Running", &format!("{} {label}", self.counter()));
        if self.verbosity == Verbosity::Verbose {
            for r in reasons {
                line(DIM, "", &format!("reason: {r}"));
            }
        }
    }

    /// A job finished well.
    pub fn finish(&mut self, label: &str, took: Duration) {
        self.done += 1;
        if self.verbosity != Verbosity::Quiet {
            line(
                GREEN,
                "Finished",
                &format!("{} {label} in {}", self.counter(), brief(took)),
            );
        }
    }

    /// A job was skipped because its inputs came out unchanged.
    pub fn cutoff(&mut self, label: &str) {
        self.done += 1;
        if self.verbosity != Verbosity::Quiet {
            line(
                DIM,
                "Skipped",
                &format!(
                    "{} {label}: its inputs were remade byte-identical",
                    self.counter()
                ),
            );
        }
    }

    /// A job failed; shown even when quiet.
    pub fn fail(&mut self, label: &str, message: &str) {
        self.done += 1;
        line(RED, "Failed", &format!("{} {label}", self.counter()));
        let mut err = anstream::stderr();
        for l in message.lines() {
            let _ = writeln!(err, "          {l}");
        }
    }

    /// A note (retry, cleanup, warning).
    pub fn note(&self, verb: &str, text: &str) {
        if self.verbosity != Verbosity::Quiet {
            line(DIM, verb, text);
        }
    }
}
