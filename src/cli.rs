//! Command-line arguments, as typed. Validation into run options happens in [`crate::session`].

use std::path::PathBuf;

use clap::Parser;

/// flowrun runs reproducible data workflows written in Rhai: it builds the graph of jobs, reruns
/// only what is outdated (and says why), and runs jobs in parallel in a deterministic order.
#[derive(Debug, Parser)]
#[command(name = "flowrun", version, about, after_help = EXIT_CODES)]
pub struct Args {
    /// The workflow file (Rhai)
    pub file: PathBuf,

    /// Files or rule names to make [default: rule `all`, else the first rule]
    pub targets: Vec<String>,

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

    /// Which changes make a job rerun: mtime, content, code, params, input
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "TRIGGER,...",
        default_value = "content,code,params,input"
    )]
    pub rerun_triggers: Vec<String>,

    /// Set a config value (typed: numbers, booleans, [lists]); `a.b=1` sets a nested key
    #[arg(long = "config", value_name = "KEY=VALUE")]
    pub config: Vec<String>,

    /// Read config from a JSON, TOML or YAML file; repeatable, later files win
    #[arg(long = "configfile", value_name = "FILE")]
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
    #[arg(short = 'd', long, value_name = "DIR")]
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
    #[arg(long, value_name = "FILE")]
    pub trace: Option<PathBuf>,

    /// Write an HTML report with a timeline to FILE when the run ends, however it ends
    #[arg(long, value_name = "FILE.html")]
    pub report: Option<PathBuf>,

    /// Print only errors
    #[arg(short = 'q', long, conflicts_with = "verbose")]
    pub quiet: bool,

    /// Print each job's reasons and shell command
    #[arg(short = 'v', long)]
    pub verbose: bool,
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

const EXIT_CODES: &str = "\
Exit codes:
  0    success (or nothing to do; watch mode ended with Ctrl-C while idle)
  1    one or more jobs failed
  2    the workflow or the command line is wrong (nothing ran)
  3    another flowrun is running in this directory
  130  interrupted (Ctrl-C or SIGTERM)";
