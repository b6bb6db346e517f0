//! Watch mode: run, then keep outputs current while the user edits.
//!
//! Theory of operation. One pass is the ordinary pipeline (plan → schedule). Between passes we
//! watch, with `notify` (inotify here), the directories holding the files a pass depends on:
//! the workflow file, its rule files and config files, and the `script` and `software` files of
//! the rules in the DAG (a change there reloads the workflow from scratch), the DAG's source inputs (files no rule makes), and the directories
//! `glob_wildcards` walked (a new matching file changes the workflow). Directories rather than
//! files are watched so that editors that save by rename, and files that appear later, are
//! seen. Access events, flowrun's own outputs, `.flowrun/` and temporary files never count.
//!
//! A burst of events becomes one pass after `--debounce` milliseconds of quiet (watchexec's
//! throttle, in a few lines). A change during a pass waits for the pass to end (`queue`), or
//! cancels it (`restart`) through the same path as Ctrl-C, so partial outputs are cleaned.
//! Errors (a broken edit, a failing job, a deleted input) are reported and watching goes on.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use notify::{EventKind, RecursiveMode, Watcher};

use crate::cli::OnChange;
use crate::diagnostic::Diagnostic;
use crate::diagnostic::{print_errors, warn};
use crate::exec::Shell;
use crate::graph::dag::Dag;
use crate::graph::store::Store;
use crate::report::events::Record;
use crate::report::progress::{self, Verbosity};
use crate::session::{outcome_parts, read_snapshot, Loaded, Session, Stop};
use crate::{exit, interrupt};

/// What the watcher reacts to, rebuilt after every successful load and resolve.
#[derive(Default)]
struct WatchSet {
    /// Source inputs of the DAG.
    inputs: HashSet<PathBuf>,
    /// The workflow, its rule files and config files: a change reloads the workflow.
    sources: HashSet<PathBuf>,
    /// Directories `glob_wildcards` walked (recursively).
    globs: Vec<PathBuf>,
    /// Source inputs declared with `directory()`: a change anywhere inside is a change.
    input_trees: Vec<PathBuf>,
    /// Files flowrun writes.
    outputs: HashSet<PathBuf>,
    /// `directory()` outputs: flowrun writes everything inside them.
    output_trees: Vec<PathBuf>,
    state_dir: PathBuf,
}

/// How the workflow stood when watch mode started.
pub(crate) enum Start {
    Ready(Loaded, Box<Dag>),
    /// Loaded, but its targets cannot be planned.
    Unplanned(Loaded, Vec<Diagnostic>),
    /// It does not load: only the files named so far can be watched.
    Broken(Vec<Diagnostic>),
}

impl WatchSet {
    fn build(loaded: &Loaded, dag: Option<&Dag>, cwd: &Path) -> Self {
        let abs = |p: &Path| cwd.join(p);
        let mut set = WatchSet {
            state_dir: cwd.join(crate::STATE_DIR),
            ..Default::default()
        };
        set.sources = loaded.workflow.sources.iter().map(|p| abs(p)).collect();
        set.globs = loaded.workflow.globbed.iter().map(|p| abs(p)).collect();
        let Some(dag) = dag else { return set };
        // The scripts and software files of the rules in the graph are read when the workflow
        // loads (their content is the rule's code and its environment's identity), so an edit
        // to one reloads the workflow like an edit to a rule file.
        for rule in dag.jobs.iter().map(|j| j.rule).collect::<BTreeSet<_>>() {
            for file in loaded.rules.get(rule).declared_files() {
                set.sources.insert(abs(Path::new(file)));
            }
        }
        for job in &dag.jobs {
            for o in job.outputs.iter().chain(&job.logs) {
                set.outputs.insert(abs(Path::new(&o.path)));
                if o.directory {
                    set.output_trees.push(abs(Path::new(&o.path)));
                }
            }
        }
        for job in &dag.jobs {
            for i in &job.inputs {
                if dag.producer(&i.path).is_none() {
                    set.inputs.insert(abs(Path::new(&i.path)));
                    if i.directory {
                        set.input_trees.push(abs(Path::new(&i.path)));
                    }
                }
            }
        }
        set
    }

    /// For a workflow that does not load: its file, the config files and every file an error
    /// points into (a broken rule file, say).
    fn broken(session: &Session<'_>, errors: &[Diagnostic], cwd: &Path) -> Self {
        let named = errors
            .iter()
            .filter_map(|e| e.origin.as_ref())
            .map(|o| &o.file);
        WatchSet {
            state_dir: cwd.join(crate::STATE_DIR),
            sources: std::iter::once(&session.file)
                .chain(&session.config_files)
                .chain(named)
                .map(|p| cwd.join(p))
                .collect(),
            ..Default::default()
        }
    }

    /// Whether an event on `path` should start a pass.
    fn relevant(&self, path: &Path) -> bool {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default();
        if name.contains(".flowrun-tmp-")
            || path.starts_with(&self.state_dir)
            || self.outputs.contains(path)
            || self.output_trees.iter().any(|t| path.starts_with(t))
        {
            return false;
        }
        self.inputs.contains(path)
            || self.input_trees.iter().any(|t| path.starts_with(t))
            || self.sources.contains(path)
            || self.globs.iter().any(|g| path.starts_with(g))
            // A directory appearing on the way to a watched file.
            || self.inputs.iter().chain(&self.sources).any(|f| f.starts_with(path))
    }

    /// Whether a change to `path` needs the workflow re-evaluated.
    fn reloads(&self, path: &Path) -> bool {
        self.sources.contains(path) || self.globs.iter().any(|g| path.starts_with(g))
    }

    /// Directories to watch, with how.
    fn directories(&self) -> HashMap<PathBuf, RecursiveMode> {
        let mut dirs = HashMap::new();
        let existing = |mut p: &Path| -> Option<PathBuf> {
            loop {
                if p.is_dir() {
                    return Some(p.to_path_buf());
                }
                p = p.parent()?;
            }
        };
        for f in self.inputs.iter().chain(&self.sources) {
            if let Some(d) = f.parent().and_then(existing) {
                dirs.entry(d).or_insert(RecursiveMode::NonRecursive);
            }
        }
        for g in self.globs.iter().chain(&self.input_trees) {
            if let Some(d) = existing(g) {
                dirs.insert(d, RecursiveMode::Recursive);
            }
        }
        dirs
    }
}

/// Keeps the notify watcher's directories in line with the watch set.
struct Directories {
    watcher: notify::RecommendedWatcher,
    watching: HashMap<PathBuf, RecursiveMode>,
}

impl Directories {
    fn update(&mut self, wanted: HashMap<PathBuf, RecursiveMode>) {
        let stale: Vec<PathBuf> = self
            .watching
            .iter()
            .filter(|(d, m)| wanted.get(*d) != Some(m))
            .map(|(d, _)| d.clone())
            .collect();
        for d in stale {
            let _ = self.watcher.unwatch(&d);
            self.watching.remove(&d);
        }
        for (d, mode) in wanted {
            if !self.watching.contains_key(&d) {
                match self.watcher.watch(&d, mode) {
                    Ok(()) => {
                        self.watching.insert(d, mode);
                    }
                    Err(e) => warn(&format!("cannot watch `{}`: {e}", d.display())),
                }
            }
        }
    }
}

/// Collects changed paths until `debounce` passes without one; `None` on Ctrl-C.
fn wait(rx: &mpsc::Receiver<PathBuf>, debounce: Duration) -> Option<BTreeSet<PathBuf>> {
    let mut changed = BTreeSet::new();
    loop {
        if interrupt::count() > 0 {
            return None;
        }
        let timeout = if changed.is_empty() {
            Duration::from_millis(100)
        } else {
            debounce
        };
        match rx.recv_timeout(timeout) {
            Ok(p) => {
                changed.insert(p);
            }
            Err(mpsc::RecvTimeoutError::Timeout) if !changed.is_empty() => return Some(changed),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => return None,
        }
    }
}

fn describe(changed: &BTreeSet<PathBuf>, cwd: &Path) -> String {
    let names: Vec<String> = changed
        .iter()
        .map(|p| p.strip_prefix(cwd).unwrap_or(p).display().to_string())
        .collect();
    let mut text = names.iter().take(3).cloned().collect::<Vec<_>>().join(", ");
    if names.len() > 3 {
        text.push_str(&format!(" and {} more", names.len() - 3));
    }
    format!("{text} changed")
}

fn status(what: &str, result: &str, took: Duration) {
    eprintln!("watch: {what}: {result} ({})", progress::brief(took));
}

/// Runs passes until Ctrl-C; returns the exit code.
pub(crate) fn run(
    session: &Session<'_>,
    start: Start,
    store: &mut Store,
    shell: &Shell,
    record: &mut Record,
) -> Result<u8, Stop> {
    let cwd = std::env::current_dir()
        .map_err(|e| Diagnostic::new(format!("cannot read the working directory: {e}")))?;
    let (mut loaded, mut dag, first_set) = match start {
        Start::Ready(loaded, dag) => {
            let set = WatchSet::build(&loaded, Some(&dag), &cwd);
            (Some(loaded), Some(*dag), set)
        }
        Start::Unplanned(loaded, errors) => {
            print_errors(&errors);
            status(
                "first pass",
                "cannot plan; waiting for the next change",
                Duration::ZERO,
            );
            let set = WatchSet::build(&loaded, None, &cwd);
            (Some(loaded), None, set)
        }
        Start::Broken(errors) => {
            print_errors(&errors);
            status(
                "first pass",
                "the workflow has errors; waiting for the next change",
                Duration::ZERO,
            );
            (None, None, WatchSet::broken(session, &errors, &cwd))
        }
    };
    let set = Arc::new(Mutex::new(first_set));
    let running = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel::<PathBuf>();
    let restart = session.args.on_change == OnChange::Restart;
    let watcher = {
        let set = Arc::clone(&set);
        let running = Arc::clone(&running);
        notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            let Ok(event) = res else { return };
            if matches!(event.kind, EventKind::Access(_)) {
                return;
            }
            let Ok(set) = set.lock() else { return };
            for path in event.paths {
                if set.relevant(&path) {
                    if restart && running.load(Ordering::SeqCst) {
                        interrupt::cancel();
                    }
                    let _ = tx.send(path);
                }
            }
        })
        .map_err(|e| Diagnostic::new(format!("cannot start watching files: {e}")))?
    };
    let mut dirs = Directories {
        watcher,
        watching: HashMap::new(),
    };
    let debounce = Duration::from_millis(session.args.debounce);
    let mut what = "first pass".to_string();
    loop {
        if let Ok(s) = set.lock() {
            dirs.update(s.directories());
        }
        if let (Some(loaded), Some(dag)) = (&loaded, &dag) {
            let started = Instant::now();
            interrupt::take_cancel();
            running.store(true, Ordering::SeqCst);
            let result = read_snapshot(store).and_then(|snapshot| {
                session.execute_passes(loaded, dag, &snapshot, store, shell, record)
            });
            running.store(false, Ordering::SeqCst);
            let took = started.elapsed();
            let cancelled = interrupt::take_cancel();
            match result {
                Ok(None) => status(&what, "nothing to do", took),
                Ok(Some(outcome)) => {
                    let mut line = outcome_parts(&outcome).join(", ");
                    if !outcome.ran_jobs.is_empty() {
                        let mut jobs = outcome
                            .ran_jobs
                            .iter()
                            .take(8)
                            .cloned()
                            .collect::<Vec<_>>()
                            .join(" ");
                        if outcome.ran_jobs.len() > 8 {
                            jobs.push_str(" ...");
                        }
                        line.push_str(&format!(" ({jobs})"));
                    }
                    if outcome.interrupted && interrupt::count() > 0 {
                        status(&what, &format!("interrupted; {line}"), took);
                        return Ok(exit::INTERRUPTED);
                    }
                    if cancelled {
                        line = format!("restarting after a change; {line}");
                    }
                    status(&what, &line, took);
                }
                Err(Stop::Errors(errors)) => {
                    print_errors(&errors);
                    status(&what, "error", took);
                }
                Err(Stop::Locked(e)) => return Err(Stop::Locked(e)),
            }
            if let Ok(mut s) = set.lock() {
                *s = WatchSet::build(loaded, Some(dag), &cwd);
                dirs.update(s.directories());
            }
        }
        if session.verbosity != Verbosity::Quiet && what == "first pass" {
            eprintln!("watch: watching for changes (Ctrl-C to stop)");
        }
        let Some(changed) = wait(&rx, debounce) else {
            return Ok(exit::SUCCESS);
        };
        what = describe(&changed, &cwd);
        let reload = loaded.is_none()
            || set
                .lock()
                .map(|s| changed.iter().any(|p| s.reloads(p)))
                .unwrap_or(true);
        let started = Instant::now();
        if reload {
            match session.load() {
                Ok(l) => loaded = Some(l),
                Err(Stop::Errors(errors)) => {
                    print_errors(&errors);
                    status(
                        &what,
                        "the workflow has errors; waiting for the next change",
                        started.elapsed(),
                    );
                    dag = None;
                    continue;
                }
                Err(e) => return Err(e),
            }
        }
        let Some(current) = &loaded else { continue };
        match session.resolve(current) {
            Ok(d) => dag = Some(d),
            Err(Stop::Errors(errors)) => {
                print_errors(&errors);
                status(
                    &what,
                    "cannot plan; waiting for the next change",
                    started.elapsed(),
                );
                dag = None;
            }
            Err(e) => return Err(e),
        }
    }
}
