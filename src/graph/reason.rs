//! Why a job runs, as data. Every rerun trigger of flowrun is one variant here, and each prints
//! as a plain sentence for `--dry-run`, `-v` and `--summary` (`docs/staleness.md` has the
//! table).

use std::fmt;

/// One reason to run a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// `-F/--force-all`, or `-R` naming this job's rule or output.
    Forced,
    /// Downstream of a job forced with `-R` (one named, how many others).
    ForcedUpstream { job: String, others: usize },
    /// A rule without outputs runs every time.
    NoOutputs,
    /// Outputs that do not exist.
    Missing(Vec<String>),
    /// Outputs left incomplete by a failed or killed run.
    Incomplete(Vec<String>),
    /// An input's content differs from when the outputs were made.
    InputChanged(String),
    /// An input is newer than the oldest output (the `mtime` trigger, or no record exists).
    InputNewer { input: String, recorded: bool },
    /// The rule's code (command or closure) changed.
    CodeChanged,
    /// The rule's params changed.
    ParamsChanged,
    /// The outputs were last made by another rule.
    RuleChanged(String),
    /// Inputs were added or removed.
    InputSetChanged {
        added: Vec<String>,
        removed: Vec<String>,
    },
    /// Jobs making inputs run first (one named, how many others); if their outputs come out
    /// byte-identical this job is skipped (early cutoff). Counting rather than listing keeps a
    /// 100,000-input aggregate cheap to plan and readable.
    Upstream { job: String, others: usize },
    /// A temporary output was deleted and is needed again by a job that runs.
    TempNeeded(String),
}

impl Reason {
    /// The `--rerun-triggers` name of a change to how the outputs were made, or `None` for a
    /// reason that is no such change (missing, forced, upstream...): what `--accept` can
    /// accept and `--list-changes` lists.
    pub fn trigger(&self) -> Option<&'static str> {
        match self {
            Reason::CodeChanged | Reason::RuleChanged(_) => Some("code"),
            Reason::ParamsChanged => Some("params"),
            Reason::InputSetChanged { .. } => Some("input"),
            Reason::InputChanged(_) => Some("content"),
            Reason::InputNewer { .. } => Some("mtime"),
            _ => None,
        }
    }
}

fn list(paths: &[String]) -> String {
    const SHOWN: usize = 3;
    let mut s = paths
        .iter()
        .take(SHOWN)
        .map(|p| format!("`{p}`"))
        .collect::<Vec<_>>()
        .join(", ");
    if paths.len() > SHOWN {
        s.push_str(&format!(" and {} more", paths.len() - SHOWN));
    }
    s
}

fn and_others(n: usize) -> String {
    match n {
        0 => String::new(),
        1 => " and 1 other job".to_string(),
        n => format!(" and {n} other jobs"),
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Forced => f.write_str("forced"),
            Reason::ForcedUpstream { job, others } => {
                write!(
                    f,
                    "forced: downstream of forced job {job}{}",
                    and_others(*others)
                )
            }
            Reason::NoOutputs => f.write_str("the rule has no outputs, so it always runs"),
            Reason::Missing(p) if p.len() == 1 => write!(f, "output {} is missing", list(p)),
            Reason::Missing(p) => write!(f, "outputs {} are missing", list(p)),
            Reason::Incomplete(p) => write!(
                f,
                "output {} was left incomplete by an earlier run",
                list(p)
            ),
            Reason::InputChanged(p) => write!(f, "input `{p}` changed"),
            Reason::InputNewer {
                input,
                recorded: true,
            } => write!(f, "input `{input}` is newer than the output"),
            Reason::InputNewer {
                input,
                recorded: false,
            } => {
                write!(
                    f,
                    "input `{input}` is newer than the output (no record of how it was made)"
                )
            }
            Reason::CodeChanged => f.write_str("the rule's code changed"),
            Reason::ParamsChanged => f.write_str("the rule's params changed"),
            Reason::RuleChanged(old) => write!(f, "the output was made by rule `{old}` before"),
            Reason::InputSetChanged { added, removed } => {
                f.write_str("the set of inputs changed")?;
                if !added.is_empty() {
                    write!(f, " (added {})", list(added))?;
                }
                if !removed.is_empty() {
                    write!(f, " (removed {})", list(removed))?;
                }
                Ok(())
            }
            Reason::Upstream { job, others: 0 } => {
                write!(f, "input made by {job}, which runs first")
            }
            Reason::Upstream { job, others } => {
                write!(
                    f,
                    "inputs made by {job}{}, which run first",
                    and_others(*others)
                )
            }
            Reason::TempNeeded(job) => write!(f, "temporary output deleted, needed again by {job}"),
        }
    }
}

impl Reason {
    /// Whether this reason only says "something upstream runs" (early cutoff may skip it).
    pub fn is_upstream(&self) -> bool {
        matches!(self, Reason::Upstream { .. })
    }
}
