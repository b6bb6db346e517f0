//! SLURM job states as `squeue -t all` prints them, and what each means for a flowrun job.
//!
//! Only the states matter, never an accounting record: `sacct` needs `slurmdbd`, which many
//! clusters (and the tests' cluster) do not run. Each terminal state has a sentence, so a
//! failed job says in words what happened to it.

/// A job's state in the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlurmState {
    /// Waiting, starting, running or being torn down: not over yet.
    Active,
    Completed,
    Failed,
    Timeout,
    OutOfMemory,
    Cancelled,
    NodeFail,
    Preempted,
    BootFail,
    Deadline,
    /// Any other terminal state, as SLURM spells it.
    Other(&'static str),
}

impl SlurmState {
    /// The state of `squeue`'s `%T` column (long names) or `%t` (short codes).
    pub fn parse(text: &str) -> Self {
        match text.trim() {
            "COMPLETED" | "CD" => Self::Completed,
            "FAILED" | "F" => Self::Failed,
            "TIMEOUT" | "TO" => Self::Timeout,
            "OUT_OF_MEMORY" | "OOM" => Self::OutOfMemory,
            "CANCELLED" | "CA" => Self::Cancelled,
            "NODE_FAIL" | "NF" => Self::NodeFail,
            "PREEMPTED" | "PR" => Self::Preempted,
            "BOOT_FAIL" | "BF" => Self::BootFail,
            "DEADLINE" | "DL" => Self::Deadline,
            "SPECIAL_EXIT" | "SE" => Self::Other("SPECIAL_EXIT"),
            "REVOKED" | "RV" => Self::Other("REVOKED"),
            // PENDING, CONFIGURING, RUNNING, COMPLETING, SUSPENDED, REQUEUED, RESIZING,
            // STOPPED, SIGNALING, STAGE_OUT, REQUEUE_HOLD/FED... : the job is not over.
            _ => Self::Active,
        }
    }

    /// Whether the job is over.
    pub fn ended(self) -> bool {
        self != Self::Active
    }

    /// What happened to a job that ended in this state, as the end of "job N ...".
    pub fn words(self) -> String {
        match self {
            Self::Active => "is still queued or running".into(),
            Self::Completed => "completed".into(),
            Self::Failed => "failed (SLURM state FAILED)".into(),
            Self::Timeout => "ran past its time limit and was stopped (TIMEOUT)".into(),
            Self::OutOfMemory => "ran out of memory and was killed (OUT_OF_MEMORY)".into(),
            Self::Cancelled => {
                "was cancelled (CANCELLED: scancel, an administrator or SLURM)".into()
            }
            Self::NodeFail => "was lost when its node failed (NODE_FAIL)".into(),
            Self::Preempted => "was preempted by another job (PREEMPTED)".into(),
            Self::BootFail => "could not start: its node failed to boot (BOOT_FAIL)".into(),
            Self::Deadline => "missed its deadline and was stopped (DEADLINE)".into(),
            Self::Other(name) => format!("ended in SLURM state {name}"),
        }
    }
}

/// One line of `squeue -h -t all -o '%i|%T|%j|%k'`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueLine {
    pub id: String,
    pub state: SlurmState,
    /// The job's name: the run that submitted it.
    pub name: String,
    /// The job's comment: its label.
    pub comment: String,
}

/// The format string [`parse_line`] reads.
pub const SQUEUE_FORMAT: &str = "%i|%T|%j|%k";

/// Parses one line of `squeue` in [`SQUEUE_FORMAT`]; the comment comes last, so a `|` in a
/// label does not shift the columns.
pub fn parse_line(line: &str) -> Option<QueueLine> {
    let mut parts = line.trim_end().splitn(4, '|');
    let id = parts.next()?.trim();
    let state = parts.next()?;
    let name = parts.next()?;
    let comment = parts.next().unwrap_or("");
    if id.is_empty() {
        return None;
    }
    Some(QueueLine {
        id: id.to_string(),
        state: SlurmState::parse(state),
        name: name.to_string(),
        comment: comment.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn squeue_lines_parse_with_a_bar_in_the_comment() {
        let line = parse_line("17|TIMEOUT|flowrun-ab12|count[s=a|b]\n").expect("a line");
        assert_eq!(line.id, "17");
        assert_eq!(line.state, SlurmState::Timeout);
        assert_eq!(line.name, "flowrun-ab12");
        assert_eq!(line.comment, "count[s=a|b]");
        assert_eq!(
            parse_line("3|RUNNING|r|x").map(|l| l.state),
            Some(SlurmState::Active)
        );
        assert_eq!(parse_line(""), None);
    }

    #[test]
    fn every_terminal_state_has_its_own_words() {
        let names = [
            "COMPLETED",
            "FAILED",
            "TIMEOUT",
            "OUT_OF_MEMORY",
            "CANCELLED",
            "NODE_FAIL",
            "PREEMPTED",
            "BOOT_FAIL",
            "DEADLINE",
            "SPECIAL_EXIT",
        ];
        let words: std::collections::BTreeSet<String> = names
            .iter()
            .map(|n| {
                let s = SlurmState::parse(n);
                assert!(s.ended(), "{n}");
                s.words()
            })
            .collect();
        assert_eq!(words.len(), names.len());
        for active in [
            "PENDING",
            "RUNNING",
            "COMPLETING",
            "CONFIGURING",
            "SUSPENDED",
        ] {
            assert!(!SlurmState::parse(active).ended(), "{active}");
        }
    }
}
