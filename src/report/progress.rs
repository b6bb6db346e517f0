//! What a run tells the user on the terminal while it works: one line per job event on stderr
//! and, on a terminal, a status line kept below them and redrawn in place:
//! `[done/total] running N: <jobs> · <elapsed> · ETA <left>`.
//!
//! Lines are plain text when stderr is not a terminal or `NO_COLOR` is set (`anstream` strips
//! the colour). The status line is drawn by `indicatif` at most ten times a second: while it
//! shows, job lines are collected and written above it in one go at each redraw, so a run of
//! 100,000 jobs costs a few hundred redraws, not one per line. It is cleared when the run ends,
//! however it ends, before the closing line is printed.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, Instant};

use anstyle::{AnsiColor, Style};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::graph::dag::JobId;
use crate::report::eta::Eta;
use crate::report::events::{Display, End, Event};

/// How much to say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verbosity {
    Quiet,
    Normal,
    Verbose,
}

const GREEN: Style = AnsiColor::Green.on_default().bold();
const RED: Style = AnsiColor::Red.on_default().bold();
const DIM: Style = Style::new().dimmed();

/// Shortest time between two redraws of the status line.
const REDRAW: Duration = Duration::from_millis(100);

fn line(out: &mut impl Write, style: Style, verb: &str, rest: &str) {
    let _ = writeln!(out, "{style}{verb:>9}{style:#} {rest}");
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

/// The live status line and what it needs.
struct Status {
    bar: ProgressBar,
    /// Read for the terminal's width at each redraw.
    term: console::Term,
    /// Job lines waiting for the next redraw, with their colour codes.
    pending: Vec<u8>,
    last_draw: Option<Instant>,
    begun: Instant,
    running: BTreeMap<JobId, String>,
    eta: Eta,
}

impl Status {
    fn new(cores: u32) -> Self {
        let term = console::Term::buffered_stderr();
        let bar = ProgressBar::with_draw_target(
            None,
            ProgressDrawTarget::term_like_with_hz(Box::new(term), 20),
        );
        bar.set_style(ProgressStyle::with_template("{msg}").unwrap_or_else(|_| {
            // The template is a constant; this is never reached.
            ProgressStyle::default_bar()
        }));
        Self {
            bar,
            term: console::Term::stderr(),
            pending: Vec::new(),
            last_draw: None,
            begun: Instant::now(),
            running: BTreeMap::new(),
            eta: Eta::new(cores),
        }
    }

    /// The status line for `now`, at most `width` characters.
    fn text(&self, done: usize, total: usize, now: Instant, width: usize) -> String {
        let elapsed = brief(now.saturating_duration_since(self.begun));
        let eta = self
            .eta
            .remaining(now)
            .map_or_else(|| "ETA ?".to_string(), |d| format!("ETA {}", brief(d)));
        let head = format!("[{done}/{total}] running {}", self.running.len());
        let tail = format!(" · {elapsed} · {eta}");
        let room = width.saturating_sub(head.chars().count() + tail.chars().count() + 2);
        let mut jobs = String::new();
        for label in self.running.values() {
            if !jobs.is_empty() {
                jobs.push_str(", ");
            }
            jobs.push_str(label);
            if jobs.chars().count() > room {
                jobs = jobs.chars().take(room.saturating_sub(1)).collect();
                jobs.push('…');
                break;
            }
        }
        if room == 0 || jobs.is_empty() {
            format!("{head}{tail}")
        } else {
            format!("{head}: {jobs}{tail}")
        }
    }

    fn draw(&mut self, done: usize, total: usize, now: Instant, force: bool) {
        if !force
            && self
                .last_draw
                .is_some_and(|t| now.duration_since(t) < REDRAW)
        {
            return;
        }
        self.last_draw = Some(now);
        // The new text first: `suspend` redraws the status line after the job lines, and it
        // must not show the counts from before them.
        let width = self.term.size_checked().map_or(80, |(_, w)| usize::from(w));
        self.bar.set_message(self.text(done, total, now, width));
        if !self.pending.is_empty() {
            let pending = std::mem::take(&mut self.pending);
            self.bar.suspend(|| {
                let mut err = anstream::stderr();
                let _ = err.write_all(&pending);
                let _ = err.flush();
            });
        }
    }
}

impl Drop for Status {
    /// Writes what is pending and clears the status line, however the run ended.
    fn drop(&mut self) {
        if !self.pending.is_empty() {
            let pending = std::mem::take(&mut self.pending);
            self.bar.suspend(|| {
                let _ = anstream::stderr().write_all(&pending);
            });
        }
        self.bar.finish_and_clear();
    }
}

/// The terminal display of one run.
pub struct Progress {
    total: usize,
    done: usize,
    verbosity: Verbosity,
    status: Option<Status>,
}

impl Progress {
    /// A display with per-job lines as `verbosity` says and, if `live`, the status line
    /// for a run on `cores` cores.
    pub fn new(verbosity: Verbosity, live: bool, cores: u32) -> Self {
        Self {
            total: 0,
            done: 0,
            verbosity,
            status: live.then(|| Status::new(cores)),
        }
    }

    fn counter(&self) -> String {
        let width = self.total.to_string().len();
        format!("[{:>width$}/{}]", self.done, self.total)
    }

    /// Writes one line: straight to stderr, or above the status line at its next redraw.
    fn say(&mut self, style: Style, verb: &str, rest: &str) {
        match &mut self.status {
            Some(s) => line(&mut s.pending, style, verb, rest),
            None => line(&mut anstream::stderr(), style, verb, rest),
        }
    }

    /// Writes one line as it is.
    fn say_text(&mut self, text: &str) {
        match &mut self.status {
            Some(s) => {
                let _ = writeln!(s.pending, "{text}");
            }
            None => {
                let _ = writeln!(anstream::stderr(), "{text}");
            }
        }
    }
}

impl Display for Progress {
    /// Shows one event.
    fn show(&mut self, event: &Event<'_>, now: Instant) {
        let loud = self.verbosity != Verbosity::Quiet;
        match event {
            Event::RunStart { jobs, .. } => {
                self.total = jobs.len();
                if let Some(s) = &mut self.status {
                    s.begun = now;
                    for p in *jobs {
                        s.eta.planned(p.job.rule.id, p.job.cores, p.past);
                    }
                }
            }
            Event::Grown { jobs, text, .. } => {
                self.total += jobs.len();
                if let Some(s) = &mut self.status {
                    for p in *jobs {
                        s.eta.planned(p.job.rule.id, p.job.cores, p.past);
                    }
                }
                if loud {
                    self.say(DIM, "Planned", text);
                }
            }
            Event::JobStart { job, reasons } => {
                if let Some(s) = &mut self.status {
                    s.eta.started(job.id, job.rule.id, job.cores, now);
                    s.running.insert(job.id, job.to_string());
                }
                if loud {
                    self.say(GREEN, "Running", &format!("{} {job}", self.counter()));
                    if self.verbosity == Verbosity::Verbose {
                        for r in *reasons {
                            self.say(DIM, "", &format!("reason: {r}"));
                        }
                    }
                }
            }
            Event::JobEnd {
                job,
                end,
                took,
                usage,
            } => {
                if let Some(s) = &mut self.status {
                    let ran = matches!(end, End::Ok | End::Failed(_)).then_some(*took);
                    s.eta.ended(job.id, job.rule.id, job.cores, ran);
                    s.running.remove(&job.id);
                }
                match end {
                    End::Ok | End::Skipped | End::Failed(_) => self.done += 1,
                    End::Interrupted | End::Blocked => {}
                }
                match end {
                    End::Ok if loud => {
                        let rest = format!("{} {job} in {}", self.counter(), brief(*took));
                        self.say(GREEN, "Finished", &rest);
                        if let Some(u) = usage.filter(|_| self.verbosity == Verbosity::Verbose) {
                            self.say(DIM, "", &u.to_string());
                        }
                    }
                    End::Skipped if loud => {
                        let rest = format!(
                            "{} {job}: its inputs were remade byte-identical",
                            self.counter()
                        );
                        self.say(DIM, "Skipped", &rest);
                    }
                    // Shown even when quiet.
                    End::Failed(message) => {
                        self.say(RED, "Failed", &format!("{} {job}", self.counter()));
                        for l in message.lines() {
                            self.say_text(&format!("          {l}"));
                        }
                    }
                    _ => {}
                }
            }
            Event::Note { verb, text, .. } => {
                // Files flowrun deletes are named even when quiet, as failures are.
                if loud || *verb == "Dropped" {
                    self.say(DIM, verb, text);
                }
            }
            Event::RunEnd { .. } => {
                // Dropping the status line clears it.
                self.status = None;
                return;
            }
        }
        self.tick(now);
    }

    /// Redraws the status line if it is due.
    fn tick(&mut self, now: Instant) {
        if let Some(s) = &mut self.status {
            s.draw(self.done, self.total, now, false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_text_cuts_the_job_labels_to_the_width() {
        let mut s = Status::new(2);
        let t0 = s.begun;
        s.running.insert(JobId(1), "align[s=alpha]".into());
        s.running.insert(JobId(2), "align[s=beta]".into());
        let later = t0 + Duration::from_secs(3);
        assert_eq!(
            s.text(4, 10, later, 120),
            "[4/10] running 2: align[s=alpha], align[s=beta] · 3.0s · ETA ?"
        );
        let cut = s.text(4, 10, later, 50);
        assert_eq!(cut, "[4/10] running 2: align[s=alpha], … · 3.0s · ETA ?");
        assert!(cut.chars().count() <= 50);
        let tight = s.text(4, 10, later, 40);
        assert_eq!(tight, "[4/10] running 2: align[… · 3.0s · ETA ?");
        s.running.clear();
        assert_eq!(
            s.text(10, 10, later, 50),
            "[10/10] running 0 · 3.0s · ETA ?"
        );
        // Nothing is drawn: dropping clears a status line that never showed.
        s.bar = ProgressBar::hidden();
    }
}
