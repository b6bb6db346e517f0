//! The definition-time sandbox.
//!
//! Evaluating a workflow file (for a run, `--dry-run`, `--list`, `--dag`) may read files but must
//! never write files or run commands: only rule bodies, at run time, have effects. Native
//! functions with effects call [`check_effect`] first; the engine flips the phase to
//! [`Phase::Run`] once the workflow has been declared and jobs start.
//!
//! Reads are allowed, and *noted* while someone asks ([`noting`]): every native function that
//! reads a file or lists a directory says so first ([`reading`], [`listing`]), with what the
//! file system showed at that moment ([`Seen`]). That is how a function of the wildcards can
//! be remembered between runs and trusted only while what it read is unchanged
//! (`crate::graph::memo`), and how the definition itself is told apart from its last load.

use std::cell::RefCell;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use rhai::{EvalAltResult, Position};

static RUNNING: AtomicBool = AtomicBool::new(false);

/// Which half of a workflow's life the process is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// The workflow file is being evaluated: reads only.
    Definition,
    /// Jobs are running: rule bodies may write files and run commands.
    Run,
}

/// Switches the process-wide phase.
pub fn set_phase(phase: Phase) {
    RUNNING.store(phase == Phase::Run, Ordering::SeqCst);
}

/// The current phase.
pub fn phase() -> Phase {
    if RUNNING.load(Ordering::SeqCst) {
        Phase::Run
    } else {
        Phase::Definition
    }
}

/// Refuses an effect (`op` names the function) while the workflow is being defined.
pub fn check_effect(op: &str) -> Result<(), Box<EvalAltResult>> {
    match phase() {
        Phase::Run => Ok(()),
        Phase::Definition => Err(Box::new(EvalAltResult::ErrorRuntime(
            format!(
                "`{op}` is not allowed while the workflow is being defined: only rule bodies \
                 (`shell`, `run`, `map`, `finish`) may write files or run commands"
            )
            .into(),
            Position::NONE,
        ))),
    }
}

/// What a read at definition time saw, to tell later whether the same read would see the same.
/// Taken *before* the read, so that a change during it shows as a change next time.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub enum Seen {
    /// A file read or looked for: its modification time (ns) and size; `None` if absent.
    File(PathBuf, Option<(i64, u64)>),
    /// A directory listed: its modification time (ns), which adding, removing or renaming an
    /// entry changes; `None` if absent. What is *inside* the entries is not part of a listing.
    Listing(PathBuf, Option<i64>),
}

fn mtime_ns(meta: &std::fs::Metadata) -> i64 {
    meta.mtime() * 1_000_000_000 + meta.mtime_nsec()
}

impl Seen {
    fn file(path: &Path) -> Self {
        let meta = std::fs::metadata(path).ok();
        Seen::File(path.to_path_buf(), meta.map(|m| (mtime_ns(&m), m.len())))
    }

    fn listing(dir: &Path) -> Self {
        let meta = std::fs::metadata(dir).ok().filter(|m| m.is_dir());
        Seen::Listing(dir.to_path_buf(), meta.map(|m| mtime_ns(&m)))
    }

    /// The file or directory looked at.
    pub fn path(&self) -> &Path {
        match self {
            Seen::File(path, _) | Seen::Listing(path, _) => path,
        }
    }

    /// Whether looking again now sees the same. Like the staleness check of outputs, this
    /// trusts modification times: a file rewritten to the same size within the file system's
    /// clock tick looks unchanged.
    pub fn still(&self) -> bool {
        match self {
            Seen::File(path, _) => Seen::file(path) == *self,
            Seen::Listing(dir, _) => Seen::listing(dir) == *self,
        }
    }
}

thread_local! {
    /// What the reads on this thread saw, while [`noting`] asks. Per thread: the planner calls
    /// many jobs' functions at once.
    static SEEN: RefCell<Option<Vec<Seen>>> = const { RefCell::new(None) };
}

/// Calls `f`, noting what it reads on this thread; each thing seen once, sorted. A `noting`
/// inside another passes what it saw on to the outer one too.
pub fn noting<T>(f: impl FnOnce() -> T) -> (T, Vec<Seen>) {
    let before = SEEN.with(|s| s.replace(Some(Vec::new())));
    let value = f();
    let mut seen = SEEN.with(|s| s.replace(before)).unwrap_or_default();
    seen.sort_unstable();
    seen.dedup();
    SEEN.with(|s| {
        if let Some(outer) = s.borrow_mut().as_mut() {
            outer.extend(seen.iter().cloned());
        }
    });
    (value, seen)
}

fn note(look: impl FnOnce() -> Seen) {
    SEEN.with(|s| {
        if let Some(list) = s.borrow_mut().as_mut() {
            list.push(look());
        }
    });
}

/// Notes that `path` is about to be read, or looked for (only when someone is [`noting`]).
pub fn reading(path: &Path) {
    note(|| Seen::file(path));
}

/// Notes that directory `dir` is about to be listed (only when someone is [`noting`]).
pub fn listing(dir: &Path) {
    note(|| Seen::listing(dir));
}
