//! The top of the pipeline: arguments in, exit code out. One invocation is a single run, an
//! explaining command (`--dry-run`, `--dag`, `--summary`, `--list`, `--rulegraph`) or watch
//! mode; each drives a [`Session`].

use std::ffi::OsString;
use std::path::Path;
use std::time::Instant;

use crate::cli::workflow::Found;
use crate::cli::{Invocation, Request};
use crate::diagnostic::{print_errors, warn, Diagnostic};
use crate::graph::dag::JobId;
use crate::graph::store::Store;
use crate::graph::{accept, plan};
use crate::report::explain;
use crate::rules::decl::FileKind;
use crate::run::cache::KeyParts;
use crate::run::clean;
use crate::session::{read_snapshot, store_error, Session, State, Stop};
use crate::{exit, STATE_DIR};
use std::collections::BTreeMap;

/// Runs flowrun with the command line `argv` (the program name first) and returns the exit
/// code.
pub fn main(argv: Vec<OsString>) -> u8 {
    match crate::cli::parse(argv) {
        Ok(Request::Run(invocation)) => {
            tell(&invocation);
            run(&invocation)
        }
        Ok(Request::Print(text)) => {
            print!("{text}");
            exit::SUCCESS
        }
        Err(error) => {
            print_errors(&[error]);
            exit::WORKFLOW_ERROR
        }
    }
}

/// When a shell asks for completions (see [`crate::cli::complete`]), answers and exits.
pub fn complete_if_asked() {
    crate::cli::complete::complete_if_asked(completion_candidates);
}

/// The targets of `workflow` for shell completion. What the workflow prints while it loads
/// would land in the middle of the user's command line: stderr goes to `/dev/null` first (the
/// process ends once the candidates are written).
fn completion_candidates(workflow: &Path) -> Vec<(String, String)> {
    if let Ok(null) = std::fs::File::create("/dev/null") {
        let _ = nix::unistd::dup2_stderr(null);
    }
    crate::session::target_candidates(workflow)
}

/// Says which workflow was discovered (unless `-q`) and, with `-v`, what each profile added.
fn tell(invocation: &Invocation) {
    let args = &invocation.args;
    if invocation.workflow.found == Found::Discovered && !args.quiet {
        eprintln!("workflow: {}", invocation.workflow.shown.display());
    }
    if args.verbose {
        let cwd = std::env::current_dir().unwrap_or_default();
        for applied in &invocation.profiles {
            let path = applied.path.strip_prefix(&cwd).unwrap_or(&applied.path);
            let options = if applied.options.is_empty() {
                "nothing (the command line sets all it sets)".to_string()
            } else {
                applied.options.join(" ")
            };
            eprintln!("profile: {} adds {options}", path.display());
        }
    }
}

/// Runs one parsed invocation and returns the exit code.
fn run(invocation: &Invocation) -> u8 {
    match run_inner(invocation) {
        Ok(code) => code,
        Err(Stop::Errors(errors)) => {
            print_errors(&errors);
            exit::WORKFLOW_ERROR
        }
        Err(Stop::Locked(e)) => {
            print_errors(&[Diagnostic::new(e.to_string()).hint(
                "wait for it to finish; a lock left by a run that died is taken over automatically",
            )]);
            exit::LOCKED
        }
    }
}

fn run_inner(invocation: &Invocation) -> Result<u8, Stop> {
    let args = &invocation.args;
    let session = Session::new(args, &invocation.workflow)?;
    if let Some(label) = &args.explain_cache {
        return explain_cache(&session, label);
    }
    if args.accept || args.clean || args.clean_temp || args.list_changes.is_some() {
        return upkeep(&session);
    }
    let inspecting = args.list || args.rulegraph || args.dry_run || args.dag || args.summary;
    if args.watch && !inspecting {
        return watch_mode(&session);
    }
    if let Some(label) = &args.job_env {
        return job_env(&session, label);
    }
    if args.create_envs {
        print!("{}", session.create_envs()?);
        return Ok(exit::SUCCESS);
    }
    if args.list || args.rulegraph {
        let loaded = session.load()?;
        if args.list {
            print!("{}", explain::list(&loaded.rules));
        } else {
            let dag = session.resolve(&loaded)?;
            print!("{}", explain::rule_dot(&loaded.rules, &dag));
        }
        return Ok(exit::SUCCESS);
    }
    if inspecting {
        return inspect(&session);
    }
    run_once(&session)
}

/// `--dry-run`, `--dag`, `--summary`: the plan, shown without running anything.
fn inspect(session: &Session<'_>) -> Result<u8, Stop> {
    let args = session.args;
    let (peeked, workflow) = alongside(
        || Store::peek(Path::new(STATE_DIR)),
        || session.load_and_resolve(),
    );
    let (loaded, dag) = workflow?;
    let (snapshot, warning) = peeked.map_err(store_error)?;
    if let Some(w) = warning {
        warn(&w);
    }
    if args.dry_run {
        session.remove_dropped(&loaded.rules, (&dag, &snapshot), None)?;
    }
    let plan = plan::check(&loaded.rules, &dag, &snapshot, &session.plan_options())?;
    let text = if args.dry_run {
        explain::dry_run(&loaded.rules, &dag, &plan)
    } else if args.dag {
        explain::dag_dot(&loaded.rules, &dag, &plan)
    } else {
        explain::summary(&loaded.rules, &dag, &plan, &snapshot, args.verbose)
    };
    print!("{text}");
    leave_at_exit((dag, snapshot, plan, loaded.rules, text));
    Ok(exit::SUCCESS)
}

/// `--job-env LABEL`: prints what [`Session::job_env`] says.
fn job_env(session: &Session<'_>, label: &str) -> Result<u8, Stop> {
    print!("{}", session.job_env(label)?);
    Ok(exit::SUCCESS)
}

/// `--explain-cache LABEL`: whether the job would be restored, and if not, why.
fn explain_cache(session: &Session<'_>, label: &str) -> Result<u8, Stop> {
    let (loaded, dag) = session.load_and_resolve()?;
    let cache = session
        .cache
        .as_ref()
        .ok_or_else(|| Diagnostic::new("`--explain-cache` needs `--cache-dir`"))?;
    let found = (0..dag.len() as u32)
        .map(JobId)
        .find(|id| dag.label(&loaded.rules, *id).to_string() == label);
    let Some(id) = found else {
        let labels = (0..dag.len() as u32).map(|i| dag.label(&loaded.rules, JobId(i)).to_string());
        let labels: Vec<String> = labels.collect();
        let mut d = Diagnostic::new(format!(
            "`--explain-cache {label}`: no job of that label in this run"
        ));
        if let Some(h) = crate::diagnostic::did_you_mean(label, labels.iter().map(String::as_str)) {
            d = d.hint(h);
        }
        return Err(d.into());
    };
    let job = dag.job(id);
    let Some(parts) = KeyParts::of(loaded.rules.get(job.rule), job) else {
        println!("miss: {label} has no key yet: an input is missing");
        return Ok(exit::SUCCESS);
    };
    println!("{}", cache.explain(label, &parts));
    Ok(exit::SUCCESS)
}

/// `--accept`, `--list-changes`, `--clean`, `--clean-temp`: the store's upkeep; nothing runs.
/// What only reads (`--list-changes`, or `-n`) takes no lock, as `--dry-run` does.
fn upkeep(session: &Session<'_>) -> Result<u8, Stop> {
    let args = session.args;
    let dry = args.dry_run;
    let peek = || {
        let (snapshot, warning) = Store::peek(Path::new(STATE_DIR)).map_err(store_error)?;
        if let Some(w) = warning {
            warn(&w);
        }
        Ok::<_, Stop>(snapshot)
    };
    if let Some(kind) = &args.list_changes {
        let (loaded, dag) = session.load_and_resolve()?;
        for path in accept::list_changes(&loaded.rules, &dag, &peek()?, kind) {
            println!("{path}");
        }
        return Ok(exit::SUCCESS);
    }
    if args.clean_temp {
        let (_, dag) = session.load_and_resolve()?;
        let temps: Vec<String> = dag
            .jobs
            .iter()
            .flat_map(|j| &j.outputs)
            .filter(|o| o.kind == FileKind::Temp)
            .map(|o| o.path.clone())
            .collect();
        let _state = (!dry)
            .then(|| State::open(Path::new(STATE_DIR)))
            .transpose()?;
        tell_cleaned(&clean::clean(Path::new("."), &temps, true, dry), dry);
        return Ok(exit::SUCCESS);
    }
    if args.clean && args.targets.is_empty() {
        // From the store alone: the workflow need not even load.
        let snapshot = peek()?;
        let mut paths: Vec<String> = snapshot
            .records
            .into_keys()
            .chain(snapshot.incomplete)
            .collect();
        paths.sort();
        paths.dedup();
        return clean_paths(&paths, args.force_all, dry);
    }
    let (loaded, dag) = session.load_and_resolve()?;
    if args.clean {
        let snapshot = peek()?;
        let paths: Vec<String> = dag
            .jobs
            .iter()
            .flat_map(|j| &j.outputs)
            .filter(|o| {
                snapshot.records.contains_key(&o.path) || snapshot.incomplete.contains(&o.path)
            })
            .map(|o| o.path.clone())
            .collect();
        return clean_paths(&paths, args.force_all, dry);
    }
    // --accept
    let state = (!dry)
        .then(|| State::open(Path::new(STATE_DIR)))
        .transpose()?;
    let snapshot = match &state {
        Some(state) => read_snapshot(&state.store)?,
        None => peek()?,
    };
    let acceptance = accept::accept(&loaded.rules, &dag, &snapshot);
    let verb = if dry { "Would accept" } else { "Accepted" };
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    let mut refused = 0;
    for (id, verdict) in &acceptance.jobs {
        let label = dag.label(&loaded.rules, *id);
        match verdict {
            accept::Verdict::Accepted(reasons) => {
                for r in reasons {
                    *counts.entry(r.trigger().unwrap_or("other")).or_default() += 1;
                    eprintln!("{verb} {label}: {r}");
                }
            }
            accept::Verdict::Refused(why) => {
                refused += 1;
                eprintln!("Refused {label}: {why}");
            }
        }
    }
    if let Some(mut state) = state {
        state
            .store
            .record(acceptance.records.iter().map(|(p, r)| (p.as_str(), r)))
            .map_err(store_error)?;
    }
    let accepted = acceptance.jobs.len() - refused;
    if acceptance.jobs.is_empty() {
        eprintln!("nothing to accept: every output is up to date");
    } else {
        let per: Vec<String> = counts.iter().map(|(k, n)| format!("{k} {n}")).collect();
        eprintln!(
            "{}: {accepted} job(s) ({}), {refused} refused",
            if dry { "would accept" } else { "accepted" },
            per.join(", ")
        );
    }
    Ok(if refused > 0 {
        exit::JOB_FAILED
    } else {
        exit::SUCCESS
    })
}

/// Deletes recorded outputs (under the lock) and forgets their records.
fn clean_paths(paths: &[String], force: bool, dry: bool) -> Result<u8, Stop> {
    if dry {
        tell_cleaned(&clean::clean(Path::new("."), paths, force, true), true);
        return Ok(exit::SUCCESS);
    }
    let mut state = State::open(Path::new(STATE_DIR))?;
    state.tell();
    let fates = clean::clean(Path::new("."), paths, force, false);
    let gone = fates
        .iter()
        .filter(|(_, f)| *f != clean::Fate::KeptProtected)
        .map(|(p, _)| p.as_str());
    state.store.forget(gone).map_err(store_error)?;
    tell_cleaned(&fates, false);
    Ok(exit::SUCCESS)
}

/// Lists what `--clean` or `--clean-temp` deleted or kept: with `-n`, the paths it would
/// delete on stdout (data, one per line).
fn tell_cleaned(fates: &[(String, clean::Fate)], dry: bool) {
    let mut deleted = 0;
    let mut kept = 0;
    for (path, fate) in fates {
        match fate {
            clean::Fate::Deleted if dry => {
                deleted += 1;
                println!("{path}");
            }
            clean::Fate::Deleted => {
                deleted += 1;
                eprintln!("Deleted {path}");
            }
            clean::Fate::KeptProtected => {
                kept += 1;
                eprintln!("Kept {path} (protected; -F deletes it too)");
            }
            clean::Fate::Absent => {}
        }
    }
    let verb = if dry { "would delete" } else { "deleted" };
    let kept = if kept > 0 {
        format!(", kept {kept} protected")
    } else {
        String::new()
    };
    eprintln!("{verb} {deleted} file(s){kept}");
}

/// One run: plan, then run what is out of date.
fn run_once(session: &Session<'_>) -> Result<u8, Stop> {
    let state_dir = Path::new(STATE_DIR);
    let open = || {
        let state = State::open(state_dir)?;
        let snapshot = read_snapshot(&state.store)?;
        Ok::<_, Stop>((state, snapshot))
    };
    // Where the state directory exists (every run but the first), it is opened while the
    // workflow loads. A first run whose workflow is broken leaves no `.flowrun` behind.
    // The handlers are in place first: a Ctrl-C during loading must not kill flowrun while it
    // holds the lock, or the next run would find a lock to take over.
    install_signal_handlers();
    let (early, workflow) = if state_dir.is_dir() {
        let (state, workflow) = alongside(open, || session.load_and_resolve());
        (Some(state), workflow)
    } else {
        (None, session.load_and_resolve())
    };
    if crate::interrupt::count() > 0 {
        // Loading stops at its next Rhai operation; the lock is released as `early` drops.
        eprintln!("interrupted before any job started");
        return Ok(exit::INTERRUPTED);
    }
    // A broken workflow is reported before a refused lock, as when the lock was taken only
    // after loading; what taking it did (a lock taken over, a store rebuilt) is told either way.
    let ((state, snapshot), (loaded, dag)) = match (early, workflow) {
        (None, Ok(workflow)) => (open()?, workflow),
        (Some(Ok(opened)), Ok(workflow)) => (opened, workflow),
        (Some(Ok((state, _))), Err(e)) => {
            state.tell();
            return Err(e);
        }
        (_, Err(e)) | (Some(Err(e)), Ok(_)) => return Err(e),
    };
    state.tell();
    let (mut store, shell) = state.ready(session, Some(&dag));
    // After the lock: a second flowrun refused by it must not truncate the first one's trace.
    let mut record = session.record()?;
    let started = Instant::now();
    let outcome =
        session.execute_passes(&loaded, &dag, &snapshot, &mut store, &shell, &mut record)?;
    let code = session.conclude(outcome.as_ref(), started);
    drop((store, shell, record));
    leave_at_exit((dag, snapshot, loaded.rules, outcome));
    Ok(code)
}

/// Leaves plain data (the graph, the rules, the records, a plan) unfreed when flowrun is about
/// to exit: the operating system takes the memory back whole, where freeing a 10,000-job graph
/// and its records one allocation at a time took milliseconds. Never anything that holds a
/// file, a process or the store: those are closed properly.
fn leave_at_exit<T>(data: T) {
    std::mem::forget(data);
}

/// Runs `side` on a second thread while `main` runs on this one, and returns both results.
/// Reading the state directory does not depend on the workflow, and evaluating the workflow
/// uses one core: overlapped, the second core is not idle while it loads.
fn alongside<A: Send, B>(side: impl FnOnce() -> A + Send, main: impl FnOnce() -> B) -> (A, B) {
    std::thread::scope(|scope| {
        let handle = scope.spawn(side);
        let b = main();
        let a = handle
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (a, b)
    })
}

/// Watch mode starts even when the workflow is broken: the errors are shown and the first pass
/// waits for the edit that fixes them, as watchexec and `cargo watch` do.
fn watch_mode(session: &Session<'_>) -> Result<u8, Stop> {
    let start = match session.load() {
        Ok(loaded) => match session.resolve(&loaded) {
            Ok(dag) => crate::watch::Start::Ready(loaded, Box::new(dag)),
            Err(Stop::Errors(errors)) => crate::watch::Start::Unplanned(loaded, errors),
            Err(other) => return Err(other),
        },
        Err(Stop::Errors(errors)) => crate::watch::Start::Broken(errors),
        Err(other) => return Err(other),
    };
    let dag = match &start {
        crate::watch::Start::Ready(_, dag) => Some(&**dag),
        _ => None,
    };
    let state = State::open(Path::new(STATE_DIR))?;
    state.tell();
    install_signal_handlers();
    let (mut store, shell) = state.ready(session, dag);
    let mut record = session.record()?;
    crate::watch::run(session, start, &mut store, &shell, &mut record)
}

/// Makes SIGINT and SIGTERM stop the run in order (see [`crate::interrupt`]). Once per process:
/// each installation would count every signal again.
fn install_signal_handlers() {
    if let Err(e) = crate::interrupt::install() {
        warn(&format!("cannot install signal handlers: {e}"));
    }
}
