//! Telling the user about a run: the event stream and its sinks (the live status line with its
//! ETA, the JSON Lines trace, the HTML report's timeline), and the explaining commands' text.

pub mod benchmark;
pub mod eta;
pub mod events;
pub mod explain;
pub mod html;
pub mod progress;
pub mod results;
pub mod rulegraph;
pub mod timeline;
pub mod trace;

use std::path::Path;

use crate::diagnostic::Diagnostic;
use events::{Record, Sink};

/// The record of an invocation: the trace (`--trace`) opened and the report path (`--report`)
/// checked before anything runs, so a bad path is a command-line error rather than a lost
/// report.
pub fn record(trace: Option<&Path>, report: Option<&Path>) -> Result<Record, Diagnostic> {
    let mut sinks: Vec<Box<dyn Sink>> = Vec::new();
    if let Some(p) = trace {
        let trace = trace::Trace::create(p).map_err(|e| {
            Diagnostic::new(format!("cannot write the trace `{}`: {e}", p.display()))
        })?;
        sinks.push(Box::new(trace));
    }
    if let Some(p) = report {
        writable(p, "report")?;
        sinks.push(Box::new(html::Report {
            path: p.to_path_buf(),
            timeline: timeline::Timeline::default(),
        }));
    }
    Ok(Record::new(sinks))
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
