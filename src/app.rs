//! The top of the pipeline: arguments in, exit code out. One invocation is a single run, an
//! explaining command (`--dry-run`, `--dag`, `--summary`, `--list`, `--rulegraph`) or watch
//! mode; each drives a [`Session`].

use std::path::Path;
use std::time::Instant;

use crate::cli::Args;
use crate::diagnostic::{print_errors, warn, Diagnostic};
use crate::graph::plan;
use crate::graph::store::Store;
use crate::report::explain;
use crate::session::{read_snapshot, store_error, Session, State, Stop};
use crate::{exit, STATE_DIR};

/// Runs flowrun with parsed arguments and returns the exit code.
pub fn run(args: Args) -> u8 {
    match run_inner(&args) {
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

fn run_inner(args: &Args) -> Result<u8, Stop> {
    let session = Session::new(args)?;
    let inspecting = args.list || args.rulegraph || args.dry_run || args.dag || args.summary;
    if args.watch && !inspecting {
        return watch_mode(&session);
    }
    if let Some(label) = &args.job_env {
        return job_env(&session, label);
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
    let outcome = session.execute(&loaded, &dag, &snapshot, &mut store, &shell, &mut record)?;
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
            Ok(dag) => crate::watch::Start::Ready(loaded, dag),
            Err(Stop::Errors(errors)) => crate::watch::Start::Unplanned(loaded, errors),
            Err(other) => return Err(other),
        },
        Err(Stop::Errors(errors)) => crate::watch::Start::Broken(errors),
        Err(other) => return Err(other),
    };
    let dag = match &start {
        crate::watch::Start::Ready(_, dag) => Some(dag),
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
