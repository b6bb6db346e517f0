//! Published exit codes (also in `flowrun --help` and `docs/cli.md`).

/// Everything asked for was made, or was already up to date.
pub const SUCCESS: u8 = 0;
/// At least one job failed.
pub const JOB_FAILED: u8 = 1;
/// The workflow or the command line is wrong; nothing ran.
pub const WORKFLOW_ERROR: u8 = 2;
/// Another flowrun holds the lock of this directory.
pub const LOCKED: u8 = 3;
/// Interrupted by SIGINT or SIGTERM.
pub const INTERRUPTED: u8 = 130;
