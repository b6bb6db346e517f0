//! Results of functions of the wildcards, remembered between runs (`.flowrun/functions`).
//!
//! A workflow that gathers over a checkpoint calls one function per reader job on every run,
//! and each call lists a directory, expands paths and goes through the script engine: at
//! 10,000 samples, a no-op took 1.35× as long as the same workflow without a checkpoint, most of
//! the difference in those calls. A function's result is decided by the workflow's
//! definition, the job's wildcards, the checkpoint outputs it asked for and the files it read,
//! so the result is kept with all of these and given again, without calling, while
//!
//! - the definition is the one it was computed under ([`definition`]: flowrun's own build, the
//!   workflow's files, the config given, and what the definition read while loading);
//! - every checkpoint output it asked for may still be read (which the graph judges from what
//!   the result says it asked for, exactly as for a fresh call);
//! - every file it read, and every directory it listed, looks as it did just before it was read
//!   ([`Seen`]: modification time and size; for a listing the directory's own modification
//!   time, which an entry added, removed or renamed changes).
//!
//! Only successful results are kept: an error is raised again by calling, and a call that
//! waited for a checkpoint is made again once the checkpoint has run. Functions of the attempt
//! or of the job's files are always called (they are few, and retries are rare). A function is
//! assumed to depend on nothing else: not on the clock, nor on what an earlier call changed in
//! a captured variable (which already differs from thread to thread).
//!
//! The file is a cache, not a record: each entry carries what it needs to be checked, so a file
//! left by a run that was killed, or written by another flowrun at the same moment, is as good
//! as any; an unreadable one is ignored (and replaced at the end of the next run). It is written
//! only by runs (never by `--dry-run` and the other ways of looking), once per run, in one
//! atomic rename. Outside the store, so the store's format (which must migrate) is untouched.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, RwLock};

use serde::{Deserialize, Serialize};

use crate::rules::decl::ClosureId;
use crate::rules::function::{Called, Evaluate, Extra, FnValue};
use crate::rules::pattern::Wildcards;
use crate::sandbox::Seen;

/// The name of the file in the state directory.
pub const FILE: &str = "functions";

/// The layout of the file; a file of another layout is ignored.
const FORMAT: u32 = 1;

/// One function's result for one job.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Entry {
    closure: usize,
    wildcards: Wildcards,
    value: FnValue,
    checkpoints: Vec<String>,
    seen: Vec<Seen>,
}

#[derive(Serialize, Deserialize)]
struct Saved {
    format: u32,
    definition: u128,
    entries: Vec<Entry>,
}

/// What decides every function's result besides the job: flowrun's own build (an upgrade may
/// change what a helper returns), the workflow's load options, and everything loading it read
/// (the workflow and imported files, config files, tables...), as each was. Two loads with the
/// same key define the same closures, in the same order, capturing the same values.
pub fn definition(options: &str, loading: &[Seen]) -> u128 {
    let exe = std::env::current_exe()
        .ok()
        .and_then(|p| std::fs::metadata(p).ok())
        .map(|m| (m.len(), m.modified().ok()));
    crate::graph::filestate::hash_str(&format!(
        "{}\n{exe:?}\n{options}\n{loading:?}",
        env!("CARGO_PKG_VERSION")
    ))
}

/// The remembered results of one definition.
pub struct Memo {
    path: PathBuf,
    definition: u128,
    /// By closure, then by the job's wildcards.
    known: RwLock<HashMap<usize, HashMap<Wildcards, Entry>>>,
    fresh: Mutex<Vec<Entry>>,
    /// Whether `known` holds anything the file does not.
    changed: AtomicBool,
    reused: AtomicUsize,
    called: AtomicUsize,
}

impl Memo {
    /// The results remembered in `dir` for this definition (none if the file is missing,
    /// unreadable or of another definition).
    pub fn open(dir: &Path, definition: u128) -> Self {
        let path = dir.join(FILE);
        let known = std::fs::read(&path)
            .ok()
            .and_then(|bytes| postcard::from_bytes::<Saved>(&bytes).ok())
            .filter(|s| s.format == FORMAT && s.definition == definition)
            .map(|s| by_closure(s.entries))
            .unwrap_or_default();
        Self {
            path,
            definition,
            known: RwLock::new(known),
            fresh: Mutex::default(),
            changed: AtomicBool::new(false),
            reused: AtomicUsize::new(0),
            called: AtomicUsize::new(0),
        }
    }

    /// `eval`'s functions, answered from memory where the answer still holds; `available`
    /// says whether a checkpoint output may be read (as for [`crate::graph::dag::Dag::resolve`]).
    pub fn over<'a>(
        &'a self,
        eval: &'a dyn Evaluate,
        available: &'a (dyn Fn(&str) -> bool + Sync),
    ) -> Remembering<'a> {
        Remembering {
            memo: self,
            eval,
            available,
        }
    }

    /// Takes the results computed since the last call in, for the next resolution of this run;
    /// returns how many were reused and how many called since then.
    pub fn settle(&self) -> (usize, usize) {
        let fresh = std::mem::take(&mut *self.fresh.lock().unwrap_or_else(|e| e.into_inner()));
        if !fresh.is_empty() {
            self.changed.store(true, Ordering::Relaxed);
            let mut known = self.known.write().unwrap_or_else(|e| e.into_inner());
            for (closure, entries) in by_closure(fresh) {
                known.entry(closure).or_default().extend(entries);
            }
        }
        (
            self.reused.swap(0, Ordering::Relaxed),
            self.called.swap(0, Ordering::Relaxed),
        )
    }

    /// Writes what is remembered, if anything new was learnt, in one atomic rename.
    pub fn save(&self) -> std::io::Result<()> {
        self.settle();
        if !self.changed.swap(false, Ordering::Relaxed) {
            return Ok(());
        }
        let known = self.known.read().unwrap_or_else(|e| e.into_inner());
        let saved = Saved {
            format: FORMAT,
            definition: self.definition,
            entries: known.values().flat_map(|m| m.values().cloned()).collect(),
        };
        let bytes = postcard::to_allocvec(&saved).map_err(std::io::Error::other)?;
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = self.path.with_extension("tmp");
        std::fs::write(&tmp, bytes)?;
        std::fs::rename(&tmp, &self.path)
    }

    /// The remembered answer of `closure` for `wildcards`, if what it read is unchanged. Its
    /// checkpoints are not looked at here: the caller judges them as for a fresh call.
    fn recall(&self, closure: usize, wildcards: &Wildcards) -> Option<Called> {
        let known = self.known.read().unwrap_or_else(|e| e.into_inner());
        let entry = known.get(&closure)?.get(wildcards)?;
        entry.seen.iter().all(Seen::still).then(|| Called {
            result: Ok(entry.value.clone()),
            checkpoints: entry.checkpoints.clone(),
        })
    }
}

/// Entries by closure, then by wildcards.
fn by_closure(entries: Vec<Entry>) -> HashMap<usize, HashMap<Wildcards, Entry>> {
    let mut out: HashMap<usize, HashMap<Wildcards, Entry>> = HashMap::new();
    for e in entries {
        out.entry(e.closure)
            .or_default()
            .insert(e.wildcards.clone(), e);
    }
    out
}

/// An [`Evaluate`] that answers from a [`Memo`] where it can, and remembers what it calls.
pub struct Remembering<'a> {
    memo: &'a Memo,
    eval: &'a dyn Evaluate,
    available: &'a (dyn Fn(&str) -> bool + Sync),
}

impl Evaluate for Remembering<'_> {
    fn call(&self, f: ClosureId, wildcards: &Wildcards, extra: Extra) -> Called {
        if !matches!(extra, Extra::Nothing) {
            return self.eval.call(f, wildcards, extra);
        }
        let memo = self.memo;
        if let Some(called) = memo.recall(f.0, wildcards) {
            memo.reused.fetch_add(1, Ordering::Relaxed);
            return called;
        }
        memo.called.fetch_add(1, Ordering::Relaxed);
        let (called, seen) = crate::sandbox::noting(|| self.eval.call(f, wildcards, extra));
        // A path that is not UTF-8 cannot be written down (nor be a flowrun path): such a
        // result is not kept.
        let keep = called.checkpoints.iter().all(|c| (self.available)(c))
            && seen.iter().all(|s| s.path().to_str().is_some());
        if let (true, Ok(value)) = (keep, &called.result) {
            let entry = Entry {
                closure: f.0,
                wildcards: wildcards.clone(),
                value: value.clone(),
                checkpoints: called.checkpoints.clone(),
                seen,
            };
            memo.fresh
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(entry);
        }
        called
    }
}
