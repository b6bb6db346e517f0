//! Submitting one job: the `sbatch` arguments its resources map to, the batch script that runs
//! flowrun on the node, and `sbatch` itself, paced and retried.
//!
//! | flowrun | sbatch |
//! |---|---|
//! | the cores of the model (`threads`, `procs`, `procs × threads`) | `--cpus-per-task` |
//! | `ranks` of an `mpi` rule | `--ntasks` (one CPU each), `srun` launches the ranks |
//! | `resources.mem_mb` | `--mem=<n>M` |
//! | `resources.runtime` (minutes) | `--time=<n>` |
//! | `resources.gpus` | `--gpus=<n>` |
//! | `resources.slurm_partition`, `slurm_account`, `constraint`, `gres` | `--partition`, `--account`, `--constraint`, `--gres` |
//! | `resources.slurm_extra` | passed through, split like a shell (flowrun's own flags refused) |
//! | the job's label, the run's id | `--comment`, `--job-name` |
//!
//! `srun` stopped inheriting `--cpus-per-task` from its job in SLURM 22.05, so the batch script
//! exports `SRUN_CPUS_PER_TASK` for steps started inside the job, and `OMP_NUM_THREADS` so that
//! tools which size themselves by it (and `nproc`) see the job's threads.

use std::path::Path;
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::rules::decl::{Model, ModelKind};
use crate::rules::registry::Rule;

/// The flags flowrun sets itself, with what to use instead; `slurm_extra` may not repeat them.
const OWN_FLAGS: &[(&str, Option<char>, &str)] = &[
    (
        "job-name",
        Some('J'),
        "flowrun names each job after its run",
    ),
    ("comment", None, "flowrun puts the job's label there"),
    (
        "output",
        Some('o'),
        "the log is `.flowrun/slurm/<rule>/<wildcards>/<job id>.log`",
    ),
    (
        "error",
        Some('e'),
        "the log is `.flowrun/slurm/<rule>/<wildcards>/<job id>.log`",
    ),
    (
        "chdir",
        Some('D'),
        "jobs run in flowrun's working directory",
    ),
    (
        "cpus-per-task",
        Some('c'),
        "set `threads` (or `procs`) on the rule",
    ),
    ("ntasks", Some('n'), "set `ranks` on an `mpi` rule"),
    ("mem", None, "set `resources: #{ mem_mb: ... }`"),
    (
        "time",
        Some('t'),
        "set `resources: #{ runtime: <minutes> }`",
    ),
    (
        "partition",
        Some('p'),
        "set `resources: #{ slurm_partition: \"...\" }`",
    ),
    (
        "account",
        Some('A'),
        "set `resources: #{ slurm_account: \"...\" }`",
    ),
    (
        "constraint",
        Some('C'),
        "set `resources: #{ constraint: \"...\" }`",
    ),
    ("gres", None, "set `resources: #{ gres: \"...\" }`"),
    ("gpus", Some('G'), "set `resources: #{ gpus: <n> }`"),
    ("parsable", None, "flowrun reads the job id with it"),
    ("wrap", None, "flowrun submits its own batch script"),
    ("array", Some('a'), "flowrun submits one job per job"),
];

/// A `slurm_extra` that repeats a flag flowrun sets.
#[derive(Debug, thiserror::Error)]
pub enum ExtraError {
    #[error("rule `{rule}`: `slurm_extra` cannot be split into words: {error}")]
    Words { rule: String, error: String },
    #[error("rule `{rule}`: `slurm_extra` sets `{flag}`, which flowrun sets itself ({instead})")]
    Own {
        rule: String,
        flag: String,
        instead: &'static str,
    },
}

/// The words of a rule's `slurm_extra`, refusing flowrun's own flags.
pub fn extra_words(rule: &Rule) -> Result<Vec<String>, ExtraError> {
    let Some(text) = rule.cluster.get("slurm_extra") else {
        return Ok(Vec::new());
    };
    let words = shell_words::split(text).map_err(|e| ExtraError::Words {
        rule: rule.name.clone(),
        error: e.to_string(),
    })?;
    for word in &words {
        let own = OWN_FLAGS.iter().find(|(long, short, _)| {
            let long_form = word
                .strip_prefix("--")
                .map(|w| w.split('=').next().unwrap_or(w));
            let short_form = word
                .strip_prefix('-')
                .filter(|w| !w.starts_with('-'))
                .and_then(|w| w.chars().next());
            long_form == Some(*long) || (short.is_some() && short_form == *short)
        });
        if let Some((_, _, instead)) = own {
            return Err(ExtraError::Own {
                rule: rule.name.clone(),
                flag: word.clone(),
                instead,
            });
        }
    }
    Ok(words)
}

/// The CPUs per task and the number of tasks a job of `model` asks for.
pub fn shape(model: &Model) -> (u32, u32) {
    match model.kind {
        ModelKind::Mpi => (1, model.ranks.max(1)),
        _ => (model.cores().max(1), 1),
    }
}

/// The `sbatch` arguments for a job of `rule` holding `resources` (without the script).
pub fn sbatch_args(
    rule: &Rule,
    resources: &std::collections::BTreeMap<String, u64>,
    model: &Model,
    run: &str,
    label: &str,
    log: &Path,
) -> Vec<String> {
    let (cpus, tasks) = shape(model);
    let mut args = vec![
        "--parsable".to_string(),
        format!("--job-name={run}"),
        format!("--comment={label}"),
        format!("--output={}", log.display()),
        format!("--cpus-per-task={cpus}"),
    ];
    if tasks > 1 {
        args.push(format!("--ntasks={tasks}"));
    }
    let number = |key: &str| resources.get(key).copied();
    if let Some(mb) = number("mem_mb") {
        args.push(format!("--mem={mb}M"));
    }
    if let Some(minutes) = number("runtime") {
        args.push(format!("--time={minutes}"));
    }
    if let Some(gpus) = number("gpus") {
        args.push(format!("--gpus={gpus}"));
    }
    for (key, flag) in [
        ("slurm_partition", "partition"),
        ("slurm_account", "account"),
        ("constraint", "constraint"),
        ("gres", "gres"),
    ] {
        if let Some(value) = rule.cluster.get(key) {
            args.push(format!("--{flag}={value}"));
        }
    }
    // Checked for every rule before the run starts (`Slurm::new`).
    args.extend(extra_words(rule).unwrap_or_default());
    args
}

/// The batch script: pass the job's CPUs on to `srun` steps, then run flowrun on the node.
pub fn batch_script(exe: &Path, spec: &Path, label: &str, run: &str, threads: u32) -> String {
    let quote = |p: &Path| shell_words::quote(&p.to_string_lossy()).into_owned();
    format!(
        "#!/bin/bash\n\
         # flowrun job {label} of run {run}\n\
         # srun stopped inheriting --cpus-per-task from its job in SLURM 22.05: pass it on.\n\
         export SRUN_CPUS_PER_TASK=\"${{SLURM_CPUS_PER_TASK:-1}}\"\n\
         export OMP_NUM_THREADS={threads}\n\
         exec {} {} {}\n",
        quote(exe),
        crate::exec::node::NODE_ARG,
        quote(spec),
    )
}

/// Why `sbatch` did not give a job id.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error("cannot run `sbatch`: {0}")]
    Start(std::io::Error),
    #[error("sbatch refused the job: {0}")]
    Refused(String),
    #[error("sbatch kept failing ({tries} tries over {seconds:.0} s), last: {last}")]
    Transient {
        tries: u32,
        seconds: f64,
        last: String,
    },
}

/// `sbatch` errors that go away by themselves: the controller is busy or restarting.
fn transient(stderr: &str) -> bool {
    [
        "Socket timed out",
        "Unable to contact slurm controller",
        "Resource temporarily unavailable",
        "temporarily unable to accept job",
        "Zero Bytes were transmitted or received",
        "Connection refused",
    ]
    .iter()
    .any(|s| stderr.contains(s))
}

/// Paces submissions (at most `rate` a second) and retries transient failures with a doubling
/// backoff, `tries` times in all.
pub struct Submitter {
    next: Mutex<Instant>,
    gap: Duration,
    tries: u32,
    backoff: Duration,
}

impl Submitter {
    pub fn new(rate: f64, tries: u32, backoff: Duration) -> Self {
        Self {
            next: Mutex::new(Instant::now()),
            gap: Duration::from_secs_f64(1.0 / rate.max(0.01)),
            tries: tries.max(1),
            backoff,
        }
    }

    /// Waits for this submission's turn.
    fn pace(&self) {
        let wait = {
            let Ok(mut next) = self.next.lock() else {
                return;
            };
            let now = Instant::now();
            let at = (*next).max(now);
            *next = at + self.gap;
            at - now
        };
        std::thread::sleep(wait);
    }

    /// Runs `sbatch ARGS SCRIPT` and returns the job id.
    pub fn submit(&self, args: &[String], script: &Path) -> Result<String, SubmitError> {
        let start = Instant::now();
        let mut delay = self.backoff;
        let mut last = String::new();
        for attempt in 1..=self.tries {
            self.pace();
            let out = Command::new("sbatch")
                .args(args)
                .arg(script)
                .output()
                .map_err(SubmitError::Start)?;
            let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
            if out.status.success() {
                // `--parsable` prints `id` or `id;cluster`.
                let stdout = String::from_utf8_lossy(&out.stdout);
                let id = stdout.trim().split(';').next().unwrap_or("").to_string();
                if !id.is_empty() && id.chars().all(|c| c.is_ascii_digit()) {
                    return Ok(id);
                }
                return Err(SubmitError::Refused(format!(
                    "it printed no job id (stdout `{}`, stderr `{stderr}`)",
                    stdout.trim()
                )));
            }
            if !transient(&stderr) {
                return Err(SubmitError::Refused(stderr));
            }
            last = stderr;
            if attempt < self.tries && !crate::interrupt::requested() {
                std::thread::sleep(delay);
                delay *= 2;
            }
        }
        Err(SubmitError::Transient {
            tries: self.tries,
            seconds: start.elapsed().as_secs_f64(),
            last,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_errors_are_told_from_refusals() {
        assert!(transient(
            "sbatch: error: Batch job submission failed: Socket timed out on send/recv operation"
        ));
        assert!(!transient(
            "sbatch: error: Batch job submission failed: Invalid partition name specified"
        ));
    }

    #[test]
    fn the_batch_script_passes_cpus_to_srun_and_quotes_paths() {
        let s = batch_script(
            Path::new("/opt/flow run/flowrun"),
            Path::new("/w/.flowrun/slurm/a/job.json"),
            "a",
            "flowrun-1",
            4,
        );
        assert!(s.starts_with("#!/bin/bash\n"), "{s}");
        assert!(s.contains("export SRUN_CPUS_PER_TASK=\"${SLURM_CPUS_PER_TASK:-1}\"\n"));
        assert!(s.contains("export OMP_NUM_THREADS=4\n"));
        assert!(s.ends_with("exec '/opt/flow run/flowrun' __job /w/.flowrun/slurm/a/job.json\n"));
    }
}
