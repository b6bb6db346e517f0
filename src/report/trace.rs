//! `--trace FILE`: the run's events as JSON Lines, one object per line, written and flushed as
//! they happen, so a run that crashes or is killed leaves every event up to that moment.
//!
//! The schema is published in `docs/report.md` and versioned by `trace_version` in every
//! `run_start`; fields are only ever added within a version.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};

use crate::graph::reason::Reason;
use crate::report::events::{End, Event, JobRef, Planned, Sink, Stamp};
use crate::usage::Usage;

/// Bumped when a field changes meaning or goes away.
pub const TRACE_VERSION: u32 = 1;

/// The open trace file.
pub struct Trace {
    out: BufWriter<File>,
    /// Set after the first failed write: the run goes on, with one warning.
    broken: bool,
}

/// Seconds, rounded to the microsecond.
fn secs(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e6
}

/// An RFC 3339 UTC timestamp with milliseconds, e.g. `2026-11-26T00:36:08.123Z`.
pub fn utc(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let days = (since.as_secs() / 86_400) as i64;
    let rem = since.as_secs() % 86_400;
    // Howard Hinnant's civil-from-days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        since.subsec_millis()
    )
}

fn reasons(list: &[Reason]) -> Value {
    list.iter().map(|r| Value::String(r.to_string())).collect()
}

/// The fields naming a job, shared by every job event.
fn job_fields(job: &JobRef<'_>) -> Map<String, Value> {
    let wildcards: Map<String, Value> = job
        .job
        .wildcards
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    let mut m = Map::new();
    m.insert("job".into(), json!(job.id.0));
    m.insert("label".into(), json!(job.to_string()));
    m.insert("rule".into(), json!(job.rule.name));
    m.insert("wildcards".into(), Value::Object(wildcards));
    m
}

/// A job's `usage` object: seconds, bytes; `null` for what was not measured.
fn usage_json(u: &Usage) -> Value {
    json!({
        "cpu_user": secs(u.user),
        "cpu_system": secs(u.system),
        "max_rss": u.max_rss,
        "rss_at_most": u.rss_at_most,
        "read": u.io.map(|io| io.read),
        "written": u.io.map(|io| io.written),
        "disk_read": u.io.map(|io| io.disk_read),
        "disk_written": u.io.map(|io| io.disk_written),
        "processes": u.processes,
    })
}

/// The JSON object for one event.
pub fn to_json(event: &Event<'_>, stamp: Stamp, origin_utc: SystemTime) -> Value {
    let mut m = Map::new();
    let mut put = |k: &str, v: Value| {
        m.insert(k.to_string(), v);
    };
    let kind = match event {
        Event::RunStart { .. } => "run_start",
        Event::Grown { .. } => "grown",
        Event::JobStart { .. } => "job_start",
        Event::JobEnd { .. } => "job_end",
        Event::Note { .. } => "note",
        Event::RunEnd { .. } => "run_end",
    };
    put("event", json!(kind));
    put("t", json!(secs(stamp.t)));
    put("pass", json!(stamp.pass));
    match event {
        Event::RunStart {
            workflow,
            targets,
            cores,
            jobs,
            ..
        } => {
            put("trace_version", json!(TRACE_VERSION));
            put("flowrun", json!(env!("CARGO_PKG_VERSION")));
            put("started_utc", json!(utc(origin_utc + stamp.t)));
            put("workflow", json!(workflow.display().to_string()));
            put("targets", json!(targets));
            put("cores", json!(cores));
            put("jobs", planned(jobs));
        }
        Event::Grown { jobs, text, took } => {
            put("jobs", planned(jobs));
            put("text", json!(text));
            put("took", json!(secs(*took)));
        }
        Event::JobStart { job, reasons: r } => {
            m.extend(job_fields(job));
            m.insert("cores".into(), json!(job.cores));
            m.insert("reasons".into(), reasons(r));
        }
        Event::JobEnd {
            job,
            end,
            took,
            usage,
        } => {
            m.extend(job_fields(job));
            m.insert("status".into(), json!(end.status()));
            m.insert("duration".into(), json!(secs(*took)));
            if let Some(u) = usage {
                m.insert("usage".into(), usage_json(u));
            }
            let outputs: Vec<&str> = job.job.outputs.iter().map(|o| o.path.as_str()).collect();
            m.insert("outputs".into(), json!(outputs));
            if let End::Failed(message) = end {
                m.insert("message".into(), json!(message));
            }
        }
        Event::Note { verb, job, text } => {
            put("kind", json!(verb.to_lowercase()));
            if let Some(job) = job {
                put("label", json!(job.to_string()));
            }
            put("text", json!(text));
        }
        Event::RunEnd { exit_code, outcome } => {
            put("exit_code", json!(exit_code));
            put("ran", json!(outcome.ran));
            put("restored", json!(outcome.restored));
            put("skipped", json!(outcome.cutoff));
            put("failed", json!(outcome.failed));
            put("blocked", json!(outcome.blocked));
            put("interrupted", json!(outcome.interrupted));
        }
    }
    Value::Object(m)
}

/// Jobs about to run, with why.
fn planned(jobs: &[Planned<'_>]) -> Value {
    jobs.iter()
        .map(|p| {
            let mut j = job_fields(&p.job);
            j.insert("reasons".into(), reasons(p.reasons));
            Value::Object(j)
        })
        .collect()
}

impl Trace {
    /// Creates (or truncates) the trace file.
    pub fn create(path: &Path) -> std::io::Result<Self> {
        Ok(Self {
            out: BufWriter::new(File::create(path)?),
            broken: false,
        })
    }
}

impl Sink for Trace {
    /// Appends one event and flushes it to the file.
    fn take(&mut self, event: &Event<'_>, stamp: Stamp, origin_utc: SystemTime) {
        if self.broken {
            return;
        }
        let written = serde_json::to_writer(&mut self.out, &to_json(event, stamp, origin_utc))
            .map_err(std::io::Error::from)
            .and_then(|()| self.out.write_all(b"\n"))
            .and_then(|()| self.out.flush());
        if let Err(e) = written {
            self.broken = true;
            crate::diagnostic::warn(&format!("cannot write the trace any more: {e}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_timestamps() {
        assert_eq!(utc(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_795_653_368_123);
        assert_eq!(utc(t), "2026-11-26T00:36:08.123Z");
        // A leap day.
        let t = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(utc(t), "2000-02-29T00:00:00.000Z");
    }
}
