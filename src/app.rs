//! The pipeline from arguments to exit code: load → rules → DAG → plan → schedule → report.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::cli::{Args, ProgressMode};
use crate::dag::{Dag, Target};
use crate::diagnostic::Diagnostic;
use crate::events::{Event, Events, Record};
use crate::exec::mpi::Launcher;
use crate::exec::{ChildRegistry, Shell};
use crate::lock::{Lock, LockError};
use crate::plan::{self, Checker, PlanOptions, Triggers};
use crate::progress::{self, Progress, Verbosity};
use crate::rules::Rules;
use crate::schedule::{self, RunContext, RunOptions};
use crate::script::{self, sandbox, LoadOptions};
use crate::store::{Snapshot, Store};
use crate::{exit, report};

/// Where flowrun keeps its state, inside the working directory.
pub const STATE_DIR: &str = ".flowrun";

/// A reason to stop before running anything.
pub(crate) enum Stop {
    Errors(Vec<Diagnostic>),
    Locked(LockError),
}

impl From<Diagnostic> for Stop {
    fn from(d: Diagnostic) -> Self {
        Stop::Errors(vec![d])
    }
}

impl From<Vec<Diagnostic>> for Stop {
    fn from(d: Vec<Diagnostic>) -> Self {
        Stop::Errors(d)
    }
}

pub(crate) fn warn(text: &str) {
    let mut err = anstream::stderr();
    let style = anstyle::AnsiColor::Yellow.on_default().bold();
    let _ = writeln!(err, "{style}warning{style:#}: {text}");
}

pub(crate) fn print_errors(errors: &[Diagnostic]) {
    let mut err = anstream::stderr();
    let style = anstyle::AnsiColor::Red.on_default().bold();
    for d in errors {
        let text = d.render();
        let rest = text.strip_prefix("error: ").unwrap_or(&text);
        let _ = write!(err, "{style}error{style:#}: {rest}");
    }
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

fn parse_resources(list: &[String]) -> Result<BTreeMap<String, u64>, Diagnostic> {
    list.iter()
        .map(|item| {
            let (k, v) = item.split_once('=').ok_or_else(|| {
                Diagnostic::new(format!("`--resources {item}` is not `NAME=N`"))
                    .hint("e.g. `--resources mem_mb=4000`")
            })?;
            let n = v.trim().parse::<u64>().map_err(|_| {
                Diagnostic::new(format!("`--resources {item}`: `{v}` is not a whole number"))
            })?;
            Ok((k.trim().to_string(), n))
        })
        .collect()
}

/// flowrun's own peak resident memory (not its child processes').
fn peak_rss_mib() -> i64 {
    use nix::sys::resource::{getrusage, UsageWho};
    getrusage(UsageWho::RUSAGE_SELF).map_or(0, |u| u.max_rss() / 1024)
}

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
    if args.list || args.rulegraph {
        let loaded = session.load()?;
        if args.list {
            print!("{}", report::list(&loaded.rules));
        } else {
            let dag = session.resolve(&loaded)?;
            print!("{}", report::rule_dot(&loaded.rules, &dag));
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
    let ((snapshot, warning), workflow) = alongside(
        || Store::peek(Path::new(STATE_DIR)),
        || session.load_and_resolve(),
    );
    let (loaded, dag) = workflow?;
    if let Some(w) = warning {
        warn(&w);
    }
    let plan = plan::check(&loaded.rules, &dag, &snapshot, &session.plan_options())?;
    let text = if args.dry_run {
        report::dry_run(&loaded.rules, &dag, &plan)
    } else if args.dag {
        report::dag_dot(&loaded.rules, &dag, &plan)
    } else {
        report::summary(&loaded.rules, &dag, &plan, &snapshot)
    };
    print!("{text}");
    leave_at_exit((dag, snapshot, plan, loaded.rules, text));
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

/// Everything recorded about the outputs.
pub(crate) fn read_snapshot(store: &Store) -> Result<Snapshot, Stop> {
    store
        .snapshot()
        .map_err(|e| Diagnostic::new(e.to_string()).into())
}

/// The run lock and the store opened under it, with what taking them found.
struct State {
    lock: Lock,
    /// Set when the lock of a run that died was taken over.
    takeover: Option<String>,
    store: Store,
    /// Set when a damaged store was moved aside and rebuilt.
    rebuilt: Option<String>,
}

impl State {
    /// Takes the run lock (killing what a killed run left running) and opens the store.
    fn open(state_dir: &Path) -> Result<Self, Stop> {
        let (lock, takeover) = Lock::acquire(state_dir).map_err(Stop::Locked)?;
        let (store, rebuilt) =
            Store::open(state_dir).map_err(|e| Diagnostic::new(e.to_string()))?;
        Ok(Self {
            lock,
            takeover,
            store,
            rebuilt,
        })
    }

    /// Prints what taking the state found.
    fn tell(&self) {
        for note in self.takeover.iter().chain(&self.rebuilt) {
            warn(note);
        }
    }

    /// Clears the temporary files a killed run left among the graph's outputs: with the signal
    /// handlers, everything a run needs before its first job.
    fn ready(self, session: &Session<'_>, dag: Option<&Dag>) -> (Store, Shell) {
        if self.takeover.is_some() {
            // The dead run may have been killed mid-write: clear its temporary files.
            let dirs: std::collections::BTreeSet<&Path> = dag
                .iter()
                .flat_map(|dag| &dag.jobs)
                .flat_map(|j| &j.outputs)
                .map(|o| {
                    Path::new(&o.path)
                        .parent()
                        .filter(|p| !p.as_os_str().is_empty())
                        .unwrap_or(Path::new("."))
                })
                .collect();
            crate::native::atomic::remove_leftovers(dirs);
        }
        let shell = Shell {
            registry: ChildRegistry::recorded(std::sync::Arc::new(self.lock)),
            scripts_dir: Path::new(STATE_DIR).join("scripts"),
            mpi: session.mpi.clone(),
        };
        (self.store, shell)
    }
}

/// Settings taken from the arguments once, shared by every pass of a run (or of watch mode).
pub(crate) struct Session<'a> {
    pub args: &'a Args,
    pub file: PathBuf,
    pub config_files: Vec<PathBuf>,
    triggers: Triggers,
    resources: BTreeMap<String, u64>,
    pub verbosity: Verbosity,
    /// Whether runs draw the live status line.
    live: bool,
    trace: Option<PathBuf>,
    report: Option<PathBuf>,
    mpi: Launcher,
}

/// A loaded, validated workflow.
pub(crate) struct Loaded {
    pub workflow: script::Workflow,
    pub rules: Rules,
}

impl<'a> Session<'a> {
    fn new(args: &'a Args) -> Result<Self, Stop> {
        let verbosity = if args.quiet {
            Verbosity::Quiet
        } else if args.verbose {
            Verbosity::Verbose
        } else {
            Verbosity::Normal
        };
        // Checked here, not only when the workflow loads: no edit can fix a bad override, so
        // watch mode must not wait for one.
        for text in &args.config {
            script::config::parse_override(text)?;
        }
        let live = verbosity != Verbosity::Quiet
            && match args.progress {
                ProgressMode::Auto => {
                    std::io::stderr().is_terminal()
                        && std::env::var_os("TERM").is_none_or(|t| t != "dumb")
                }
                ProgressMode::Bar => true,
                ProgressMode::Lines => false,
            };
        let file = absolute(&args.file);
        let trace = args.trace.as_deref().map(absolute);
        let report = args.report.as_deref().map(absolute);
        let config_files: Vec<PathBuf> = args.configfile.iter().map(|p| absolute(p)).collect();
        if let Some(dir) = &args.directory {
            std::env::set_current_dir(dir).map_err(|e| {
                Diagnostic::new(format!(
                    "cannot change to directory `{}`: {e}",
                    dir.display()
                ))
            })?;
        }
        Ok(Self {
            args,
            file,
            config_files,
            triggers: Triggers::parse(&args.rerun_triggers)?,
            resources: parse_resources(&args.resources)?,
            verbosity,
            live,
            trace,
            report,
            mpi: Launcher::configure(args.mpi_launcher.as_deref(), args.mpi_args.as_deref())
                .map_err(Diagnostic::new)?,
        })
    }

    /// Evaluates the workflow file and validates its rules.
    pub fn load(&self) -> Result<Loaded, Stop> {
        let mut workflow = script::load(&LoadOptions {
            file: self.file.clone(),
            config_files: self.config_files.clone(),
            config_overrides: self.args.config.clone(),
        })?;
        let decls = std::mem::take(&mut workflow.rules);
        let rules = Rules::build(decls, &workflow.constraints)?;
        if rules.is_empty() && !self.args.list {
            return Err(Diagnostic::new(format!(
                "`{}` declares no rules",
                self.args.file.display()
            ))
            .hint("declare one with `rule(\"name\", #{ output: \"...\", shell: \"...\" });`")
            .into());
        }
        Ok(Loaded { workflow, rules })
    }

    /// The workflow and its job graph.
    fn load_and_resolve(&self) -> Result<(Loaded, Dag), Stop> {
        let loaded = self.load()?;
        let dag = self.resolve(&loaded)?;
        Ok((loaded, dag))
    }

    /// The targets as asked for: the command line's, else the default rule's name.
    fn target_words(&self, rules: &Rules) -> Vec<String> {
        if self.args.targets.is_empty() {
            rules
                .default_target()
                .map(|r| r.name.clone())
                .into_iter()
                .collect()
        } else {
            self.args.targets.clone()
        }
    }

    /// The job graph for the requested targets.
    pub fn resolve(&self, loaded: &Loaded) -> Result<Dag, Stop> {
        let rules = &loaded.rules;
        let targets: Vec<Target> = self
            .target_words(rules)
            .iter()
            .map(|t| Target::parse(t, rules))
            .collect();
        Ok(Dag::resolve(rules, &targets)?)
    }

    /// Opens the trace and checks the report path, for the runs of this invocation.
    pub fn record(&self) -> Result<Record, Stop> {
        Ok(Record::open(self.trace.as_deref(), self.report.as_deref())?)
    }

    fn plan_options(&self) -> PlanOptions {
        PlanOptions {
            triggers: self.triggers,
            force_all: self.args.force_all,
            force: self.args.force.clone(),
            until: self.args.until.clone(),
        }
    }

    /// Plans and runs one pass against what the store held at its start, emitting its events;
    /// `None` when there was nothing to do.
    pub fn execute(
        &self,
        loaded: &Loaded,
        dag: &Dag,
        snapshot: &Snapshot,
        store: &mut Store,
        shell: &Shell,
        record: &mut Record,
    ) -> Result<Option<schedule::Outcome>, Stop> {
        sandbox::set_phase(sandbox::Phase::Definition);
        let plan = plan::check(&loaded.rules, dag, snapshot, &self.plan_options())?;
        let cores = self
            .args
            .cores
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get() as u32))
            .max(1);
        let planned = schedule::planned(&loaded.rules, dag, &plan, cores);
        let nothing = planned.is_empty();
        let display = Progress::new(self.job_verbosity(), self.live && !nothing, cores);
        let mut events = Events::new(display, record);
        events.emit(&Event::RunStart {
            workflow: &self.file,
            targets: &self.target_words(&loaded.rules),
            cores,
            jobs: &planned,
        });
        drop(planned);
        if nothing {
            let _ = store.record(plan.refresh.iter().map(|(p, r)| (p.as_str(), r)));
            events.emit(&Event::RunEnd {
                exit_code: exit::SUCCESS,
                outcome: &schedule::Outcome::default(),
            });
            return Ok(None);
        }
        sandbox::set_phase(sandbox::Phase::Run);
        let checker = Checker::new(&loaded.rules, dag, snapshot, self.triggers);
        let run_opts = RunOptions {
            cores,
            resources: self.resources.clone(),
            keep_going: self.args.keep_going,
            keep_incomplete: self.args.keep_incomplete,
            verbosity: self.job_verbosity(),
            grace: Duration::from_secs_f64(self.args.grace.max(0.0)),
        };
        let outcome = schedule::run(
            RunContext {
                rules: &loaded.rules,
                dag,
                runtime: &loaded.workflow.runtime,
                shell,
                store,
            },
            plan,
            checker,
            &run_opts,
            &mut events,
        );
        events.emit(&Event::RunEnd {
            exit_code: outcome.exit_code(),
            outcome: &outcome,
        });
        Ok(Some(outcome))
    }

    /// Per-job lines: watch mode keeps to one line per pass unless `-v`.
    fn job_verbosity(&self) -> Verbosity {
        match (self.args.watch, self.verbosity) {
            (true, Verbosity::Normal) => Verbosity::Quiet,
            (_, v) => v,
        }
    }

    /// Prints the closing line of a run and picks the exit code.
    fn conclude(&self, outcome: Option<&schedule::Outcome>, started: Instant) -> u8 {
        let Some(outcome) = outcome else {
            if self.verbosity != Verbosity::Quiet {
                eprintln!("nothing to be done: every output is up to date");
            }
            return exit::SUCCESS;
        };
        let took = progress::brief(started.elapsed());
        let mut parts = outcome_parts(outcome);
        let code = outcome.exit_code();
        if outcome.interrupted {
            eprintln!(
                "interrupted: {} ({took}); partial outputs were removed",
                parts.join(", ")
            );
        } else if outcome.failed > 0 {
            eprintln!("error: {} ({took})", parts.join(", "));
        } else {
            if self.verbosity == Verbosity::Verbose {
                parts.push(format!("peak memory {} MiB", peak_rss_mib()));
            }
            if self.verbosity != Verbosity::Quiet {
                eprintln!("done: {} ({took})", parts.join(", "));
            }
        }
        code
    }
}

/// The counts of an outcome, in words.
pub(crate) fn outcome_parts(outcome: &schedule::Outcome) -> Vec<String> {
    let mut parts = vec![format!("{} ran", outcome.ran)];
    if outcome.cutoff > 0 {
        parts.push(format!("{} skipped (inputs unchanged)", outcome.cutoff));
    }
    if outcome.failed > 0 {
        parts.push(format!("{} failed", outcome.failed));
    }
    if outcome.blocked > 0 {
        parts.push(format!(
            "{} not run because a job they need failed",
            outcome.blocked
        ));
    }
    parts
}
