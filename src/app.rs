//! The pipeline from arguments to exit code: load → rules → DAG → plan → schedule → report.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::cli::Args;
use crate::dag::{Dag, Target};
use crate::diagnostic::Diagnostic;
use crate::exec::mpi::Launcher;
use crate::exec::{ChildRegistry, Shell};
use crate::lock::{Lock, LockError};
use crate::plan::{self, Checker, PlanOptions, Triggers};
use crate::progress::{self, Verbosity};
use crate::rules::Rules;
use crate::schedule::{self, RunContext, RunOptions};
use crate::script::{self, sandbox, LoadOptions};
use crate::store::Store;
use crate::{exit, report};

/// Where flowrun keeps its state, inside the working directory.
pub const STATE_DIR: &str = ".flowrun";

/// A reason to stop before running anything.
enum Stop {
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

fn warn(text: &str) {
    let mut err = anstream::stderr();
    let style = anstyle::AnsiColor::Yellow.on_default().bold();
    let _ = writeln!(err, "{style}warning{style:#}: {text}");
}

fn print_errors(errors: &[Diagnostic]) {
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
    let started = Instant::now();
    let verbosity = if args.quiet {
        Verbosity::Quiet
    } else if args.verbose {
        Verbosity::Verbose
    } else {
        Verbosity::Normal
    };
    let file = absolute(&args.file);
    let config_files: Vec<PathBuf> = args.configfile.iter().map(|p| absolute(p)).collect();
    if let Some(dir) = &args.directory {
        std::env::set_current_dir(dir).map_err(|e| {
            Diagnostic::new(format!(
                "cannot change to directory `{}`: {e}",
                dir.display()
            ))
        })?;
    }
    let triggers = Triggers::parse(&args.rerun_triggers)?;
    let mpi = Launcher::configure(args.mpi_launcher.as_deref(), args.mpi_args.as_deref())
        .map_err(Diagnostic::new)?;
    let resources = parse_resources(&args.resources)?;

    let workflow = script::load(&LoadOptions {
        file: file.clone(),
        config_files,
        config_overrides: args.config.clone(),
    })?;
    let rules = Rules::build(workflow.rules, &workflow.constraints)?;
    if args.list {
        print!("{}", report::list(&rules));
        return Ok(exit::SUCCESS);
    }
    if rules.is_empty() {
        return Err(
            Diagnostic::new(format!("`{}` declares no rules", args.file.display()))
                .hint("declare one with `rule(\"name\", #{ output: \"...\", shell: \"...\" });`")
                .into(),
        );
    }
    let targets: Vec<Target> = if args.targets.is_empty() {
        rules
            .default_target()
            .map(|r| Target::Rule(r.name.clone()))
            .into_iter()
            .collect()
    } else {
        args.targets
            .iter()
            .map(|t| Target::parse(t, &rules))
            .collect()
    };
    let dag = Dag::resolve(&rules, &targets)?;
    if args.rulegraph {
        print!("{}", report::rule_dot(&rules, &dag));
        return Ok(exit::SUCCESS);
    }

    let state_dir = Path::new(STATE_DIR);
    let writing = !(args.dry_run || args.dag || args.summary);
    let lock = if writing {
        let (lock, note) = Lock::acquire(state_dir).map_err(Stop::Locked)?;
        if let Some(note) = note {
            warn(&note);
        }
        Some(lock)
    } else {
        None
    };
    let (store, snapshot) = if writing {
        let (store, warning) =
            Store::open(state_dir).map_err(|e| Diagnostic::new(e.to_string()))?;
        if let Some(w) = warning {
            warn(&w);
        }
        let snapshot = store
            .snapshot()
            .map_err(|e| Diagnostic::new(e.to_string()))?;
        (Some(store), snapshot)
    } else {
        let (snapshot, warning) = Store::peek(state_dir);
        if let Some(w) = warning {
            warn(&w);
        }
        (None, snapshot)
    };
    let opts = PlanOptions {
        triggers,
        force_all: args.force_all,
        force: args.force.clone(),
        until: args.until.clone(),
    };
    let plan = plan::check(&rules, &dag, &snapshot, &opts)?;
    if args.dry_run {
        print!("{}", report::dry_run(&rules, &dag, &plan));
        return Ok(exit::SUCCESS);
    }
    if args.dag {
        print!("{}", report::dag_dot(&rules, &dag, &plan));
        return Ok(exit::SUCCESS);
    }
    if args.summary {
        print!("{}", report::summary(&rules, &dag, &plan, &snapshot));
        return Ok(exit::SUCCESS);
    }

    let Some(mut store) = store else {
        return Ok(exit::SUCCESS);
    };
    let total = plan.to_run(&dag).count();
    if total == 0 {
        let _ = store.record(plan.refresh.iter().map(|(p, r)| (p.as_str(), r)));
        if verbosity != Verbosity::Quiet {
            eprintln!("nothing to be done: every output is up to date");
        }
        return Ok(exit::SUCCESS);
    }
    if let Err(e) = crate::interrupt::install() {
        warn(&format!("cannot install signal handlers: {e}"));
    }
    sandbox::set_phase(sandbox::Phase::Run);
    let cores = args
        .cores
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get() as u32))
        .max(1);
    let shell = Shell {
        registry: lock.map_or_else(ChildRegistry::default, |l| {
            ChildRegistry::recorded(std::sync::Arc::new(l))
        }),
        scripts_dir: state_dir.join("scripts"),
        mpi,
    };
    let checker = Checker::new(&rules, &dag, &snapshot, triggers);
    let run_opts = RunOptions {
        cores,
        resources,
        keep_going: args.keep_going,
        keep_incomplete: args.keep_incomplete,
        verbosity,
        grace: Duration::from_secs_f64(args.grace.max(0.0)),
    };
    let outcome = schedule::run(
        RunContext {
            rules: &rules,
            dag: &dag,
            runtime: &workflow.runtime,
            shell: &shell,
            store: &mut store,
        },
        plan,
        checker,
        &run_opts,
    );
    drop(shell);
    let took = progress::brief(started.elapsed());
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
    if outcome.interrupted {
        eprintln!(
            "interrupted: {} ({took}); partial outputs were removed",
            parts.join(", ")
        );
        return Ok(exit::INTERRUPTED);
    }
    if outcome.failed > 0 {
        eprintln!("error: {} ({took})", parts.join(", "));
        return Ok(exit::JOB_FAILED);
    }
    if verbosity == Verbosity::Verbose {
        parts.push(format!("peak memory {} MiB", peak_rss_mib()));
    }
    if verbosity != Verbosity::Quiet {
        eprintln!("done: {} ({took})", parts.join(", "));
    }
    Ok(exit::SUCCESS)
}
