//! One invocation's settings and the pipeline steps every pass takes, shared by a single run
//! and by watch mode: load → rules → DAG → plan → schedule, with the run lock and the store
//! held in a [`State`].
//!
//! It lives below both drivers so that neither imports the other.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::cli::workflow::Workflow;
use crate::cli::{Args, ProgressMode};
use crate::diagnostic::{warn, Diagnostic};
use crate::exec::mpi::Launcher;
use crate::exec::{ChildRegistry, Shell};
use crate::graph::dag::{Dag, Target};
use crate::graph::dropped;
use crate::graph::memo::{self, Memo};
use crate::graph::plan::{self, Checker, PlanOptions, Triggers};
use crate::graph::store::{Snapshot, Store, StoreError};
use crate::report::events::{Event, Events, Outcome, Record};
use crate::report::progress::{self, Progress, Verbosity};
use crate::rules::registry::{Rules, Work};
use crate::run::cache::{self, Cache, Cached};
use crate::run::clean;
use crate::run::lock::{Lock, LockError};
use crate::run::place::{Local, Place};
use crate::run::schedule::{self, Growth, RunContext, RunOptions};
use crate::run::slurm::{Slurm, SlurmOptions};
use crate::sandbox;
use crate::script::{self, CommandRunner, Handler, LoadOptions};
use crate::{exit, STATE_DIR};
use typed_arena::Arena;

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

/// The result cache asked for by `--cache-dir` or `FLOWRUN_CACHE_DIR`, resolved against the
/// directory flowrun was started in.
fn cache_of(args: &Args) -> Result<Option<Cache>, Diagnostic> {
    let dir = args.cache_dir.clone().or_else(|| {
        std::env::var_os(CACHE_ENV)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    });
    let max = args
        .cache_max_size
        .as_deref()
        .map(cache::parse_size)
        .transpose()
        .map_err(|e| Diagnostic::new(format!("--cache-max-size {e}")))?;
    match dir {
        Some(dir) => Ok(Some(Cache::new(&absolute(&dir), max))),
        None if args.cache_all || max.is_some() || args.explain_cache.is_some() => Err(
            Diagnostic::new("--cache-all, --cache-max-size and --explain-cache need a cache")
                .hint(format!("give one with `--cache-dir DIR` or `{CACHE_ENV}`")),
        ),
        None => Ok(None),
    }
}

/// The environment variable that sets the cache directory.
pub const CACHE_ENV: &str = "FLOWRUN_CACHE_DIR";

/// A store flowrun must not use, with what the user can do about it.
pub(crate) fn store_error(e: StoreError) -> Diagnostic {
    let hint = match &e {
        StoreError::Newer { .. } => Some(
            "run the newer flowrun here, or move `.flowrun/` away to start afresh (every job then reruns)",
        ),
        StoreError::Migrate { .. } => {
            Some("nothing was changed; please report this with the store attached")
        }
        _ => None,
    };
    let d = Diagnostic::new(e.to_string());
    match hint {
        Some(h) => d.hint(h),
        None => d,
    }
}

/// Everything recorded about the outputs.
pub(crate) fn read_snapshot(store: &Store) -> Result<Snapshot, Stop> {
    store
        .snapshot()
        .map_err(|e| Diagnostic::new(e.to_string()).into())
}

/// The run lock and the store opened under it, with what taking them found.
pub(crate) struct State {
    lock: Lock,
    /// Set when the lock of a run that died was taken over.
    takeover: Option<String>,
    pub(crate) store: Store,
    /// Set when a damaged store was moved aside and rebuilt.
    rebuilt: Option<String>,
}

impl State {
    /// Takes the run lock (killing what a killed run left running) and opens the store.
    pub(crate) fn open(state_dir: &Path) -> Result<Self, Stop> {
        let (lock, takeover) = Lock::acquire(state_dir).map_err(Stop::Locked)?;
        let (store, rebuilt) = Store::open(state_dir).map_err(store_error)?;
        Ok(Self {
            lock,
            takeover,
            store,
            rebuilt,
        })
    }

    /// Prints what taking the state found.
    pub(crate) fn tell(&self) {
        for note in self.takeover.iter().chain(&self.rebuilt) {
            warn(note);
        }
    }

    /// Clears the temporary files a killed run left among the graph's outputs: with the signal
    /// handlers, everything a run needs before its first job.
    pub(crate) fn ready(self, session: &Session<'_>, dag: Option<&Dag>) -> (Store, Shell) {
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

/// Where jobs run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Executor {
    Local,
    Slurm,
}

/// The environment variable that picks the executor when `--executor` does not.
pub const EXECUTOR_ENV: &str = "FLOWRUN_EXECUTOR";

/// Jobs submitted at once under `--executor slurm` when `-j` does not say.
const DEFAULT_SLURM_JOBS: u32 = 100;

impl Executor {
    /// `--executor`, else `FLOWRUN_EXECUTOR`, else `local`.
    fn configure(arg: Option<&str>) -> Result<Self, Diagnostic> {
        let env = std::env::var(EXECUTOR_ENV)
            .ok()
            .filter(|v| !v.trim().is_empty());
        let (name, from) = match (arg, env) {
            (Some(a), _) => (a.to_string(), "--executor"),
            (None, Some(e)) => (e, EXECUTOR_ENV),
            (None, None) => return Ok(Self::Local),
        };
        match name.trim() {
            "local" => Ok(Self::Local),
            "slurm" => Ok(Self::Slurm),
            other => Err(
                Diagnostic::new(format!("{from} `{other}` is not an executor"))
                    .hint("the executors are `local` (the default) and `slurm`"),
            ),
        }
    }
}

/// Settings taken from the arguments once, shared by every pass of a run (or of watch mode).
pub(crate) struct Session<'a> {
    pub args: &'a Args,
    /// The workflow file, absolute.
    pub file: PathBuf,
    /// The workflow file as the user knows it.
    shown: PathBuf,
    /// The targets named on the command line.
    targets: Vec<String>,
    pub config_files: Vec<PathBuf>,
    triggers: Triggers,
    resources: BTreeMap<String, u64>,
    pub verbosity: Verbosity,
    /// Whether runs draw the live status line.
    live: bool,
    trace: Option<PathBuf>,
    report: Option<PathBuf>,
    mpi: Launcher,
    /// The result cache (`--cache-dir`).
    pub cache: Option<Cache>,
    executor: Executor,
}

/// The words a shell may complete as targets of `workflow`, each with a description: its rule
/// names (in declaration order), then every file the graph of its default target makes
/// (sorted). Empty when the workflow does not load or plan: completing must never fail loudly.
pub(crate) fn target_candidates(workflow: &Path) -> Vec<(String, String)> {
    let Ok(mut loaded) = script::load(&LoadOptions {
        file: workflow.to_path_buf(),
        config_files: Vec::new(),
        config_overrides: Vec::new(),
    }) else {
        return Vec::new();
    };
    let decls = std::mem::take(&mut loaded.rules);
    let Ok(rules) = Rules::build(decls, &loaded.constraints) else {
        return Vec::new();
    };
    let mut words: Vec<(String, String)> = rules
        .iter()
        .map(|r| (r.name.clone(), "rule".to_string()))
        .collect();
    let default = rules
        .default_target()
        .map(|r| Target::parse(&r.name, &rules));
    let exists = |path: &str| Path::new(path).exists();
    let targets = Vec::from_iter(default);
    if let Ok(dag) = Dag::resolve(&rules, &loaded.runtime, &exists, &targets) {
        let files: BTreeMap<&str, &str> = dag
            .jobs
            .iter()
            .flat_map(|j| j.outputs.iter().map(|o| (o.path.as_str(), j.rule)))
            .map(|(path, rule)| (path, rules.get(rule).name.as_str()))
            .collect();
        words.extend(
            files
                .into_iter()
                .map(|(path, rule)| (path.to_string(), format!("made by {rule}"))),
        );
    }
    words
}

/// A loaded, validated workflow.
pub(crate) struct Loaded {
    pub workflow: script::Workflow,
    pub rules: Rules,
    /// The functions' results remembered from earlier runs of this definition.
    pub memo: Memo,
}

impl<'a> Session<'a> {
    pub(crate) fn new(args: &'a Args, workflow: &Workflow) -> Result<Self, Stop> {
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
        let file = absolute(&workflow.path);
        let cache = cache_of(args)?;
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
            shown: workflow.shown.clone(),
            targets: args.targets(),
            config_files,
            triggers: Triggers::parse(&args.rerun_triggers)?,
            resources: parse_resources(&args.resources)?,
            verbosity,
            live,
            trace,
            report,
            mpi: Launcher::configure(args.mpi_launcher.as_deref(), args.mpi_args.as_deref())
                .map_err(Diagnostic::new)?,
            cache,
            executor: Executor::configure(args.executor.as_deref())?,
        })
    }

    /// Evaluates the workflow file and validates its rules.
    pub fn load(&self) -> Result<Loaded, Stop> {
        let options = LoadOptions {
            file: self.file.clone(),
            config_files: self.config_files.clone(),
            config_overrides: self.args.config.clone(),
        };
        let mut workflow = script::load(&options)?;
        let definition = memo::definition(&format!("{options:?}"), &workflow.read);
        let memo = Memo::open(Path::new(STATE_DIR), definition);
        let decls = std::mem::take(&mut workflow.rules);
        let rules = Rules::build(decls, &workflow.constraints)?.with_order(&workflow.rule_order)?;
        if rules.is_empty() && !self.args.list {
            return Err(
                Diagnostic::new(format!("`{}` declares no rules", self.shown.display()))
                    .hint(
                        "declare one with `rule(\"name\", #{ output: \"...\", shell: \"...\" });`",
                    )
                    .into(),
            );
        }
        Ok(Loaded {
            workflow,
            rules,
            memo,
        })
    }

    /// The workflow and its job graph.
    pub(crate) fn load_and_resolve(&self) -> Result<(Loaded, Dag), Stop> {
        let loaded = self.load()?;
        let dag = self.resolve(&loaded)?;
        Ok((loaded, dag))
    }

    /// The targets as asked for: the command line's, else the default rule's name.
    pub(crate) fn target_words(&self, rules: &Rules) -> Vec<String> {
        if self.targets.is_empty() {
            rules
                .default_target()
                .map(|r| r.name.clone())
                .into_iter()
                .collect()
        } else {
            self.targets.clone()
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
        let dag = resolve_targets(loaded, &targets)?;
        let (reused, called) = loaded.memo.settle();
        if self.verbosity == Verbosity::Verbose && reused + called > 0 {
            eprintln!(
                "functions of the wildcards: {reused} results remembered from the last run, {called} calls"
            );
        }
        Ok(dag)
    }

    /// Opens the trace and checks the report path, for the runs of this invocation.
    pub fn record(&self) -> Result<Record, Stop> {
        Ok(crate::report::record(
            self.trace.as_deref(),
            self.report.as_deref(),
        )?)
    }

    /// `--job-env LABEL`: the variables that run one job's script by hand, as shell `export`s,
    /// and the command that runs it. Writes the job file under `.flowrun/jobs/` and makes the
    /// folders of the job's outputs and logs, as a run would; runs nothing.
    pub fn job_env(&self, label: &str) -> Result<String, Stop> {
        let (loaded, dag) = self.load_and_resolve()?;
        let labels: Vec<String> = dag
            .order()
            .iter()
            .map(|id| dag.label(&loaded.rules, *id).to_string())
            .collect();
        let Some(at) = labels.iter().position(|l| l == label) else {
            let mut d = Diagnostic::new(format!("no job `{label}` in the graph of the targets"));
            d = match crate::diagnostic::did_you_mean(label, labels.iter().map(String::as_str)) {
                Some(hint) => d.hint(hint),
                None => d.hint("`flowrun --dry-run` lists the jobs; name the target that needs the job after the workflow"),
            };
            return Err(Stop::Errors(vec![d]));
        };
        let id = dag.order()[at];
        let job = dag.job(id);
        let rule = loaded.rules.get(job.rule);
        let Work::Script(script) = &rule.work else {
            return Err(Stop::Errors(vec![Diagnostic::new(format!(
                "job `{label}` runs no script: its rule `{}` has no `script` key",
                rule.name
            ))]));
        };
        for f in job.outputs.iter().chain(&job.logs) {
            if let Some(dir) = Path::new(&f.path).parent() {
                let _ = std::fs::create_dir_all(dir);
            }
        }
        let threads = rule.model.threads.clamp(1, self.cores());
        let spec = crate::exec::job_spec(rule, job, threads, 1);
        let env = crate::exec::script::environment(&spec, label, script.language, &rule.software)
            .map_err(|e| {
            Stop::Errors(vec![Diagnostic::new(format!(
                "cannot write the job file for `{label}`: {e}"
            ))])
        })?;
        let mut out = String::new();
        for (k, v) in env {
            out.push_str(&format!("export {k}={}\n", shell_words::quote(&v)));
        }
        let run = match script.language.interpreter() {
            Some(program) => format!("{program} {}", shell_words::quote(&script.path)),
            None => format!(
                "nothing by hand: a Rhai script such as `{}` runs inside flowrun",
                script.path
            ),
        };
        out.push_str(&format!("# then: {run}\n"));
        Ok(out)
    }

    /// `--create-envs`: makes the software environments of every rule in the graph of the
    /// targets (those that exist are left as they are), and says where they are.
    pub fn create_envs(&self) -> Result<String, Stop> {
        let (loaded, dag) = self.load_and_resolve()?;
        let rules = dag
            .order()
            .iter()
            .map(|id| loaded.rules.get(dag.job(*id).rule));
        let made = create_envs(rules)?;
        let mut out = String::new();
        for env in made {
            out.push_str(&format!(
                "{} ({}) is ready in {}\n",
                env.name(),
                env.file,
                crate::exec::software::envs_dir().join(env.name()).display()
            ));
        }
        Ok(out)
    }

    /// The core budget: `-j`, else the machine's cores (a default number of jobs on SLURM).
    pub fn cores(&self) -> u32 {
        self.args
            .cores
            .unwrap_or_else(|| match self.executor {
                Executor::Slurm => DEFAULT_SLURM_JOBS,
                Executor::Local => {
                    std::thread::available_parallelism().map_or(1, |n| n.get() as u32)
                }
            })
            .max(1)
    }

    pub(crate) fn plan_options(&self) -> PlanOptions {
        PlanOptions {
            triggers: self.triggers,
            force_all: self.args.force_all,
            force: self.args.force.clone(),
            until: self.args.until.clone(),
            done: Default::default(),
            failed: Default::default(),
        }
    }

    /// Plans and runs one pass against what the store held at its start, emitting its events;
    /// `None` when there was nothing to do.
    pub fn execute(
        &self,
        loaded: &Loaded,
        (dag, snapshot): (&Dag, &Snapshot),
        store: &mut Store,
        shell: &Shell,
        record: &mut Record,
        opts: &PlanOptions,
    ) -> Result<Option<Outcome>, Stop> {
        sandbox::set_phase(sandbox::Phase::Definition);
        let dropped = self.remove_dropped(&loaded.rules, (dag, snapshot), Some(store))?;
        let plan = plan::check(&loaded.rules, dag, snapshot, opts)?;
        let pending = plan
            .decisions
            .iter()
            .filter(|d| matches!(d, plan::Decision::Pending(_)))
            .count();
        let cores = self.cores();
        let planned = schedule::planned(&loaded.rules, dag, &plan, cores, &snapshot.history);
        // Before the first job starts, never per job.
        create_envs(planned.iter().map(|p| p.job.rule))?;
        let nothing = planned.is_empty();
        let display = Progress::new(self.job_verbosity(), self.live && !nothing, cores);
        let mut events = Events::new(Box::new(display), record);
        events.emit(&Event::RunStart {
            workflow: &self.file,
            targets: &self.target_words(&loaded.rules),
            cores,
            jobs: &planned,
            dag,
            rules: &loaded.rules,
        });
        for text in &dropped {
            events.emit(&Event::Note {
                verb: "Dropped",
                job: None,
                text,
            });
        }
        drop(planned);
        if nothing {
            let _ = store.record(plan.refresh.iter().map(|(p, r)| (p.as_str(), r)));
            let outcome = Outcome {
                pending,
                ..Outcome::default()
            };
            events.emit(&Event::RunEnd {
                exit_code: exit::SUCCESS,
                outcome: &outcome,
            });
            // Jobs left waiting (their checkpoint failed before) are worth saying.
            return Ok((pending > 0).then_some(outcome));
        }
        sandbox::set_phase(sandbox::Phase::Run);
        let runtime = &loaded.workflow.runtime;
        let handlers = handler_runner(shell);
        if let Err(d) = runtime.call_handlers(Handler::Start, &handlers) {
            events.emit(&Event::RunEnd {
                exit_code: exit::WORKFLOW_ERROR,
                outcome: &Outcome::default(),
            });
            return Err(d.into());
        }
        // The jobs checkpoints tell of are planned as they finish, as graphs of their own
        // (`schedule::Growth`); under `--until`, the next pass plans them, with the whole graph
        // in view.
        let (dags, snapshots) = (Arena::new(), Arena::new());
        let grow = |targets: &[Target]| {
            let dag = resolve_targets(loaded, targets).ok();
            loaded.memo.settle();
            dag
        };
        let growth = self.args.until.is_empty().then(|| Growth {
            dags: &dags,
            snapshots: &snapshots,
            resolve: &grow,
            base: snapshot,
            opts: opts.clone(),
            taken: (0, 0),
        });
        let checker = Checker::new(&loaded.rules, dag, snapshot, self.triggers);
        let run_opts = RunOptions {
            cores,
            resources: self.resources.clone(),
            keep_going: self.args.keep_going,
            keep_incomplete: self.args.keep_incomplete,
            verbosity: self.job_verbosity(),
            grace: Duration::from_secs_f64(self.args.grace.max(0.0)),
        };
        let slurm = match self.executor {
            Executor::Slurm => Some(self.slurm(shell, &loaded.rules)?),
            Executor::Local => None,
        };
        let local = Local(shell);
        let base: &dyn Place = match &slurm {
            Some(s) => s,
            None => &local,
        };
        let cached = self.cache.as_ref().map(|cache| Cached {
            inner: base,
            cache,
            all: self.args.cache_all,
        });
        let place: &dyn Place = match &cached {
            Some(c) => c,
            None => base,
        };
        let outcome = schedule::run(
            RunContext {
                rules: &loaded.rules,
                dag,
                runtime: &loaded.workflow.runtime,
                shell,
                place,
                store,
                growth,
            },
            plan,
            checker,
            &run_opts,
            &mut events,
        );
        if let Some(slurm) = slurm.filter(|_| self.verbosity == Verbosity::Verbose) {
            eprintln!("{}", slurm.load());
        }
        events.emit(&Event::RunEnd {
            exit_code: outcome.exit_code(),
            outcome: &outcome,
        });
        let after = if outcome.failed > 0 || outcome.interrupted {
            Handler::Error
        } else {
            Handler::Success
        };
        // Like Snakemake: a handler that fails is an error of the workflow.
        runtime.call_handlers(after, &handlers)?;
        if let Some(cache) = &self.cache {
            let evicted = cache.evict();
            if evicted > 0 && self.verbosity == Verbosity::Verbose {
                eprintln!("evicted {evicted} least recently used cache entries (--cache-max-size)");
            }
        }
        Ok(Some(outcome))
    }

    /// Runs passes until no job waits for a checkpoint: each pass runs what is known, then the
    /// graph is resolved again (functions see the checkpoints' outputs now) and planned against
    /// the store as the pass left it. Without checkpoints, one pass.
    pub fn execute_passes(
        &self,
        loaded: &Loaded,
        dag: &Dag,
        snapshot: &Snapshot,
        store: &mut Store,
        shell: &Shell,
        record: &mut Record,
    ) -> Result<Option<Outcome>, Stop> {
        let mut opts = self.plan_options();
        let mut total = self.execute(loaded, (dag, snapshot), store, shell, record, &opts)?;
        let keep_going = self.args.keep_going;
        while let Some(so_far) = total.as_mut().filter(|o| o.wants_another_pass(keep_going)) {
            sandbox::set_phase(sandbox::Phase::Definition);
            let dag = self.resolve(loaded)?;
            let snapshot = read_snapshot(store)?;
            opts.done.extend(so_far.ran_jobs.iter().cloned());
            opts.failed.extend(so_far.failed_jobs.iter().cloned());
            let Some(next) =
                self.execute(loaded, (&dag, &snapshot), store, shell, record, &opts)?
            else {
                so_far.pending = 0;
                break;
            };
            // A pass that did nothing ends the passes; one that only ran again what had run
            // (a checkpoint that is outdated in every pass) would never let its readers be
            // planned.
            let idle = next.ran + next.cutoff + next.restored == 0;
            let again = !idle && next.ran_jobs.iter().all(|j| opts.done.contains(j));
            so_far.absorb(next);
            if idle {
                break;
            }
            if again && so_far.wants_another_pass(keep_going) {
                warn("the jobs that ran in this pass had all run before in this run, so the jobs waiting for their checkpoints are left pending");
                break;
            }
        }
        // Every job has run: the temp files kept for jobs that waited are spent.
        if let Some(o) = total.as_ref().filter(|o| o.pending == 0 && o.failed == 0) {
            if !o.interrupted {
                o.kept_temp.iter().for_each(|p| schedule::remove_file(p));
            }
        }
        if let Err(e) = loaded.memo.save() {
            warn(&format!(
                "cannot remember the functions' results in `{STATE_DIR}/{}`: {e}; the next run calls them again",
                memo::FILE
            ));
        }
        Ok(total)
    }

    /// Names the outputs of jobs that a checkpoint which ran again no longer leads to, and
    /// removes them (protected ones stay), forgetting their records: the files are then those
    /// of a clean run (see `graph::dropped`). Returns one line per output, which the pass emits
    /// as `Dropped` notes (so the trace has them too). Without a store (`--dry-run`), prints
    /// what a run would drop.
    pub(crate) fn remove_dropped(
        &self,
        rules: &Rules,
        (dag, snapshot): (&Dag, &Snapshot),
        store: Option<&mut Store>,
    ) -> Result<Vec<String>, Stop> {
        let dropped = dropped::dropped(rules, dag, snapshot);
        if dropped.is_empty() {
            return Ok(Vec::new());
        }
        let paths: Vec<String> = dropped.iter().map(|d| d.path.clone()).collect();
        let dry = store.is_none();
        let fates = clean::clean(Path::new("."), &paths, false, dry);
        if let Some(store) = store {
            let gone = fates
                .iter()
                .filter(|(_, f)| *f != clean::Fate::KeptProtected);
            store
                .forget(gone.map(|(p, _)| p.as_str()))
                .map_err(store_error)?;
        }
        let removed = if dry { "would remove" } else { "removed" };
        let lines = dropped.iter().zip(&fates).map(|(d, (path, fate))| {
            let reader = dag.job(d.reader);
            let why = match reader.consulted().iter().find_map(|p| dag.producer(p)) {
                Some(c) => format!("checkpoint {} no longer leads to it", dag.label(rules, c)),
                None => format!("{} no longer needs it", dag.label(rules, d.reader)),
            };
            let what = match fate {
                clean::Fate::Deleted => format!("{removed} `{path}`"),
                clean::Fate::KeptProtected => format!("kept `{path}` (protected)"),
                clean::Fate::Absent => format!("`{path}` was gone already"),
            };
            format!("{}: {why}; {what}", d.job)
        });
        if !dry {
            return Ok(lines.collect());
        }
        if self.verbosity != Verbosity::Quiet {
            for line in lines {
                eprintln!("  Would drop {line}");
            }
        }
        Ok(Vec::new())
    }

    /// The SLURM executor for one pass, with the notes of what it found (jobs a killed flowrun
    /// left, followed again) told.
    fn slurm<'s>(&self, shell: &'s Shell, rules: &Rules) -> Result<Slurm<'s>, Stop> {
        // Inside the allocation, MPI ranks are started with `srun --mpi=pmix` (what Open MPI
        // and recent MPICH speak) unless a launcher or its arguments were asked for.
        let set = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty());
        let launcher = if self.args.mpi_launcher.is_some() || set(crate::exec::mpi::LAUNCHER_ENV) {
            self.mpi.clone()
        } else if self.args.mpi_args.is_some() || set(crate::exec::mpi::ARGS_ENV) {
            Launcher {
                program: "srun".into(),
                args: self.mpi.args.clone(),
            }
        } else {
            Launcher {
                program: "srun".into(),
                args: vec!["--mpi=pmix".into()],
            }
        };
        for (value, flag) in [
            (self.args.submit_rate, "--submit-rate"),
            (self.args.poll_interval, "--poll-interval"),
        ] {
            if !(value > 0.0 && value.is_finite()) {
                return Err(
                    Diagnostic::new(format!("`{flag} {value}` must be more than 0")).into(),
                );
            }
        }
        let exe = std::env::current_exe()
            .map_err(|e| Diagnostic::new(format!("cannot find flowrun's own binary: {e}")))?;
        let options = SlurmOptions {
            exe,
            load: LoadOptions {
                file: self.file.clone(),
                config_files: self.config_files.clone(),
                config_overrides: self.args.config.clone(),
            },
            poll: Duration::from_secs_f64(self.args.poll_interval.min(86_400.0)),
            latency_wait: Duration::from_secs_f64(self.args.latency_wait.clamp(0.0, 86_400.0)),
            submit_rate: self.args.submit_rate,
            launcher,
            grace: self.args.grace,
        };
        let (slurm, notes) =
            Slurm::new(Local(shell), options, rules).map_err(|e| Diagnostic::new(e.to_string()))?;
        for note in notes {
            eprintln!("note: {note}");
        }
        Ok(slurm)
    }

    /// Per-job lines: watch mode keeps to one line per pass unless `-v`.
    pub(crate) fn job_verbosity(&self) -> Verbosity {
        match (self.args.watch, self.verbosity) {
            (true, Verbosity::Normal) => Verbosity::Quiet,
            (_, v) => v,
        }
    }

    /// Prints the closing line of a run and picks the exit code.
    pub(crate) fn conclude(&self, outcome: Option<&Outcome>, started: Instant) -> u8 {
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

/// The graph of `targets`. A checkpoint's output can be read once it exists; a checkpoint
/// that is about to run again is found by the plan, which keeps its readers pending.
fn resolve_targets(loaded: &Loaded, targets: &[Target]) -> Result<Dag, Vec<Diagnostic>> {
    let exists = |path: &str| std::path::Path::new(path).exists();
    Dag::resolve(
        &loaded.rules,
        &loaded.memo.over(&loaded.workflow.runtime, &exists),
        &exists,
        targets,
    )
}

/// How `shell()` in `onstart`/`onsuccess`/`onerror` runs a command: like a job's, output to
/// flowrun's standard error, its process group known to Ctrl-C.
fn handler_runner(shell: &Shell) -> CommandRunner {
    let shell = shell.clone();
    std::sync::Arc::new(move |cmd: &str| {
        shell
            .run("handler", cmd, None, 1, &[], &Default::default())
            .map_err(|e| e.to_string())
    })
}

/// The counts of an outcome, in words.
pub(crate) fn outcome_parts(outcome: &Outcome) -> Vec<String> {
    let mut parts = vec![format!("{} ran", outcome.ran)];
    if outcome.restored > 0 {
        parts.push(format!("{} restored from the cache", outcome.restored));
    }
    if outcome.cutoff > 0 {
        parts.push(format!("{} skipped (inputs unchanged)", outcome.cutoff));
    }
    if outcome.failed > 0 {
        parts.push(format!("{} failed", outcome.failed));
    }
    if outcome.pending > 0 {
        parts.push(format!(
            "{} pending (their checkpoints did not run)",
            outcome.pending
        ));
    }
    if outcome.blocked > 0 {
        parts.push(format!(
            "{} not run because a job they need failed",
            outcome.blocked
        ));
    }
    parts
}

/// Makes the Python environments `rules` need that do not exist yet, each once; returns every
/// environment they need, in a stable order.
fn create_envs<'a>(
    rules: impl Iterator<Item = &'a crate::rules::registry::Rule>,
) -> Result<Vec<crate::rules::software::PythonEnv>, Stop> {
    let mut envs: Vec<crate::rules::software::PythonEnv> =
        rules.filter_map(|r| r.software.python.clone()).collect();
    envs.sort_by_key(|e| e.hash);
    envs.dedup_by_key(|e| e.hash);
    for env in &envs {
        crate::exec::software::create(env)
            .map_err(|e| Stop::Errors(vec![Diagnostic::new(e.to_string())]))?;
    }
    Ok(envs)
}
