//! Command-line arguments, as typed, and the two things settled before a run can start: which
//! workflow file it runs ([`workflow`]: named, or discovered as Snakemake finds its
//! `Snakefile`) and which defaults a profile adds ([`profile`]). Also what the same definition
//! prints without any workflow: shell completion ([`complete`]) and the man page ([`man`]).
//! Validation into run options happens in [`crate::session`].

pub mod complete;
pub mod man;
pub mod profile;
pub mod workflow;

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::{CommandFactory, FromArgMatches, Parser, ValueHint};

use crate::diagnostic::Diagnostic;
use profile::Applied;
use workflow::Workflow;

/// An invocation ready to run: the arguments with the profiles' settings, and the workflow.
#[derive(Debug)]
pub struct Invocation {
    pub args: Args,
    pub workflow: Workflow,
    /// The profiles that applied, weakest first, with what each added.
    pub profiles: Vec<Applied>,
}

/// What the command line asks for.
#[derive(Debug)]
pub enum Request {
    /// Run (or explain, or watch) a workflow.
    Run(Box<Invocation>),
    /// Print this text (a completion script, the manual page) and stop: no workflow is
    /// needed.
    Print(String),
}

/// Parses the command line `argv` (with the program name first): locates the workflow, then
/// parses again with the options its profiles add. `--help`, `--version` and a malformed
/// command line end the process here, as clap does.
pub fn parse(argv: Vec<OsString>) -> Result<Request, Diagnostic> {
    let command = Args::command();
    let given = command.clone().get_matches_from(&argv);
    let args = Args::from_arg_matches(&given).unwrap_or_else(|e| e.exit());
    if let Some(shell) = args.completions {
        return Ok(Request::Print(complete::script(shell)));
    }
    if args.man {
        return Ok(Request::Print(man::page()));
    }
    let cwd = std::env::current_dir()
        .map_err(|e| Diagnostic::new(format!("cannot read the current directory: {e}")))?;
    let workflow = Workflow::locate(&args, &cwd)?;
    let found = profile::find(&workflow.path);
    let (args, profiles) = if found.is_empty() {
        (args, Vec::new())
    } else {
        let (argv, profiles) = profile::apply(&command, &given, &argv, &found)?;
        let args = command
            .try_get_matches_from(argv)
            .and_then(|m| Args::from_arg_matches(&m))
            .map_err(|e| profile::ProfileError::Together {
                message: profile::clap_message(&e),
            })?;
        (args, profiles)
    };
    Ok(Request::Run(Box::new(Invocation {
        args,
        workflow,
        profiles,
    })))
}

/// flowrun runs reproducible data workflows written in Rhai: it builds the graph of jobs, reruns
/// only what is outdated (and says why), and runs jobs in parallel in a deterministic order.
#[derive(Debug, Parser)]
#[command(name = "flowrun", version, about, after_help = AFTER_HELP)]
pub struct Args {
    /// The workflow file, if this first argument ends in `.rhai` (else it is a target)
    /// [default: Flowfile.rhai, else workflow/Flowfile.rhai]
    #[arg(value_name = "FILE.rhai")]
    pub file: Option<String>,

    /// Files or rule names to make [default: the rule with `default_target: true`, else rule
    /// `all`, else the first rule of the workflow file]
    pub targets: Vec<String>,

    /// The workflow file, whatever its name; every argument is then a target
    #[arg(short = 's', long, value_name = "FILE", value_hint = ValueHint::FilePath)]
    pub workflow: Option<PathBuf>,

    /// Show the jobs that would run and why, then stop
    #[arg(short = 'n', long)]
    pub dry_run: bool,

    /// Use at most N cores at once [default: all cores]; with `--executor slurm`, have at most
    /// N jobs submitted at once [default: 100]
    #[arg(short = 'j', long = "cores", value_name = "N")]
    pub cores: Option<u32>,

    /// Go on with independent jobs when a job fails
    #[arg(short = 'k', long)]
    pub keep_going: bool,

    /// Rerun every job
    #[arg(short = 'F', long)]
    pub force_all: bool,

    /// Rerun the jobs of RULE (or the job making FILE) and everything downstream; repeatable
    #[arg(short = 'R', long = "force", value_name = "RULE|FILE")]
    pub force: Vec<String>,

    /// Run only the jobs of RULE (or making FILE) and what they need; repeatable
    #[arg(long, value_name = "RULE|FILE")]
    pub until: Vec<String>,

    /// Which changes make a job rerun: mtime, content, code, params, input, software
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "TRIGGER,...",
        default_value = "content,code,params,input,software"
    )]
    pub rerun_triggers: Vec<String>,

    /// Set a config value (typed: numbers, booleans, [lists]); `a.b=1` sets a nested key
    #[arg(long = "config", value_name = "KEY=VALUE")]
    pub config: Vec<String>,

    /// Read config from a JSON, TOML or YAML file; repeatable, later files win
    #[arg(long = "configfile", value_name = "FILE", value_hint = ValueHint::FilePath)]
    pub configfile: Vec<PathBuf>,

    /// Cap a declared resource, e.g. `--resources mem_mb=4000`
    #[arg(long, value_name = "NAME=N", value_delimiter = ',')]
    pub resources: Vec<String>,

    /// Keep the outputs of failed jobs (they stay marked incomplete)
    #[arg(long)]
    pub keep_incomplete: bool,

    /// List the rules and their files
    #[arg(short = 'l', long)]
    pub list: bool,

    /// Print the job graph in Graphviz DOT (up-to-date jobs dashed)
    #[arg(long)]
    pub dag: bool,

    /// Print the rule graph in Graphviz DOT
    #[arg(long)]
    pub rulegraph: bool,

    /// Print every output with its state (present, missing, outdated, incomplete) and why; with
    /// -v, also when its job last finished and how long it took
    #[arg(long)]
    pub summary: bool,

    /// Print the environment that runs the script of job LABEL by hand (an IDE, a debugger):
    /// `eval "$(flowrun --job-env 'plot[sample=a]' wf.rhai)"`, then the printed command
    #[arg(long, value_name = "LABEL")]
    pub job_env: Option<String>,

    /// Create the software environments (`software: #{ python: ... }`) of the targets' rules,
    /// in the cache shared by every workflow, and run nothing
    #[arg(long)]
    pub create_envs: bool,

    /// Record the existing outputs of the targets' jobs as up to date under the current code,
    /// params and inputs, running nothing (with -n: only say what would be accepted)
    #[arg(long)]
    pub accept: bool,

    /// Print the outputs whose record disagrees with the present on KIND
    #[arg(long, value_name = "KIND", value_parser = crate::graph::accept::KINDS)]
    pub list_changes: Option<String>,

    /// Delete the outputs flowrun made: every one the store records, or those of the targets'
    /// jobs; -n lists them, -F deletes protected ones too
    #[arg(long)]
    pub clean: bool,

    /// Delete the temporary outputs of the targets' jobs left behind (-n lists them)
    #[arg(long)]
    pub clean_temp: bool,

    /// Restore the outputs of jobs of `cache: true` rules from the result cache in DIR, and
    /// publish them there after they ran [env: FLOWRUN_CACHE_DIR]
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,

    /// With --cache-dir: every job goes through the cache, not only `cache: true` rules
    #[arg(long)]
    pub cache_all: bool,

    /// With --cache-dir: after the run, evict the least recently used entries until the cache
    /// fits SIZE (e.g. 500M, 20G)
    #[arg(long, value_name = "SIZE")]
    pub cache_max_size: Option<String>,

    /// Say whether the job LABEL (e.g. `count[s=a]`) would be restored from the cache and, if
    /// not, which part of its key differs from the cached entries
    #[arg(long, value_name = "LABEL")]
    pub explain_cache: Option<String>,

    /// Run in DIR (relative paths in the workflow and `.flowrun/` live there)
    #[arg(short = 'd', long, value_name = "DIR", value_hint = ValueHint::DirPath)]
    pub directory: Option<PathBuf>,

    /// Seconds interrupted commands get between SIGTERM and SIGKILL
    #[arg(long, value_name = "SECS", default_value_t = 5.0)]
    pub grace: f64,

    /// MPI launcher for `model: "mpi"` rules: mpirun, mpiexec, srun or a path
    /// [env: FLOWRUN_MPI_LAUNCHER; default: mpirun]
    #[arg(long, value_name = "LAUNCHER")]
    pub mpi_launcher: Option<String>,

    /// Extra launcher arguments, split like a shell, e.g. `--mpi-args="--bind-to none"`
    /// [env: FLOWRUN_MPI_ARGS]
    #[arg(long, value_name = "ARGS", allow_hyphen_values = true)]
    pub mpi_args: Option<String>,

    /// Where jobs run: `local` (this machine) or `slurm` (each job not marked `local: true` is
    /// submitted with sbatch and run on a node by flowrun itself; see docs/cluster.md)
    /// [env: FLOWRUN_EXECUTOR; default: local]
    #[arg(long, value_name = "EXECUTOR")]
    pub executor: Option<String>,

    /// SLURM: seconds a job's outputs may take to appear here after it ended (shared
    /// filesystems show files late)
    #[arg(long, value_name = "SECS", default_value_t = 5.0)]
    pub latency_wait: f64,

    /// SLURM: the longest wait between two status queries (one `squeue` for the whole run);
    /// after a job changes state they come ten times as often, then slow down
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    pub poll_interval: f64,

    /// SLURM: submit at most N jobs a second
    #[arg(long, value_name = "N", default_value_t = 10.0)]
    pub submit_rate: f64,

    /// Run, then keep watching the workflow, its rule and config files and the source inputs,
    /// and rerun what each change made outdated (Ctrl-C ends)
    #[arg(short = 'w', long)]
    pub watch: bool,

    /// Watch mode: milliseconds of quiet after a change before a new pass
    #[arg(long, value_name = "MS", default_value_t = 100)]
    pub debounce: u64,

    /// Watch mode: what a change during a pass does
    #[arg(long, value_enum, default_value_t = OnChange::Queue)]
    pub on_change: OnChange,

    /// When to draw the live status line (done/total, running jobs, elapsed, ETA) below the
    /// job lines
    #[arg(long, value_enum, value_name = "WHEN", default_value_t = ProgressMode::Auto)]
    pub progress: ProgressMode,

    /// Write the run's events to FILE as JSON Lines, as they happen (see docs/report.md)
    #[arg(long, value_name = "FILE", value_hint = ValueHint::FilePath)]
    pub trace: Option<PathBuf>,

    /// Write an HTML report of the run and its results to FILE when the run ends, however it ends
    #[arg(long, value_name = "FILE.html", value_hint = ValueHint::FilePath)]
    pub report: Option<PathBuf>,

    /// Print a script that completes options, rule names and targets in SHELL, then stop;
    /// e.g. in ~/.bashrc: `source <(flowrun --completions bash)`
    #[arg(long, value_name = "SHELL", value_enum)]
    pub completions: Option<complete::Shell>,

    /// Print this manual as a man page (roff), then stop; read it with `flowrun --man | man -l -`
    #[arg(long)]
    pub man: bool,

    /// Print only errors
    #[arg(short = 'q', long, conflicts_with = "verbose")]
    pub quiet: bool,

    /// Print each job's reasons and shell command
    #[arg(short = 'v', long)]
    pub verbose: bool,
}

impl Args {
    /// The workflow named on the command line: `-s FILE`, else a first argument that ends in
    /// `.rhai`. `None` when it is to be discovered.
    pub fn named_workflow(&self) -> Option<&Path> {
        self.workflow.as_deref().or_else(|| {
            self.file
                .as_deref()
                .filter(|f| f.ends_with(".rhai"))
                .map(Path::new)
        })
    }

    /// The targets: every argument except a first one that names the workflow.
    pub fn targets(&self) -> Vec<String> {
        let first = self
            .file
            .as_ref()
            .filter(|f| self.workflow.is_some() || !f.ends_with(".rhai"));
        first.into_iter().chain(&self.targets).cloned().collect()
    }
}

/// What a change during a watch pass does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OnChange {
    /// Finish the pass, then start the next one
    Queue,
    /// Stop the running jobs (cleaning their outputs) and start again
    Restart,
}

/// When to draw the live status line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProgressMode {
    /// When stderr is a terminal (and `TERM` is not `dumb`)
    Auto,
    /// Always, even into a pipe
    Bar,
    /// Never: one line per job event
    Lines,
}

const AFTER_HELP: &str = "\
Profiles:
  `flowrun.toml` beside the workflow, and the user's `~/.config/flowrun/flowrun.toml`, set
  default options: `cores = 4`, `keep-going = true`, `resources = { mem_mb = 8000 }`. The
  command line wins; -v says which profile applied (see docs/cli.md).

Exit codes:
  0    success (or nothing to do; watch mode ended with Ctrl-C while idle)
  1    one or more jobs failed
  2    the workflow or the command line is wrong (nothing ran)
  3    another flowrun is running in this directory
  130  interrupted (Ctrl-C or SIGTERM)";
