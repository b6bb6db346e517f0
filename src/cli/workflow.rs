//! Which workflow file an invocation runs.
//!
//! `snakemake` alone runs the project's `Snakefile`; `flowrun` alone runs its `Flowfile.rhai`,
//! looked for where the run happens (the current directory, or `-d DIR`), then under
//! `workflow/` (Snakemake's recommended layout). A workflow can still be named: `-s FILE`
//! (Snakemake's `--snakefile`), or a first argument that ends in `.rhai`.
//!
//! Why the `.rhai` ending decides: `flowrun results/a.txt` must make a target, and
//! `flowrun wf.rhai results/a.txt` must run a workflow. Whether the first word names an
//! existing file cannot tell them apart (targets are often existing files, and a workflow named
//! by mistake may not exist yet), while the ending is what the user typed and reads the same
//! tomorrow. A target that itself ends in `.rhai` goes after a named workflow.

use std::path::{Path, PathBuf};

use crate::cli::Args;
use crate::diagnostic::Diagnostic;

/// Where a workflow file is looked for when none is named, in order, relative to the working
/// directory.
pub const DISCOVERED: [&str; 2] = ["Flowfile.rhai", "workflow/Flowfile.rhai"];

/// How the workflow file was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    /// Named on the command line.
    Named,
    /// Found in one of the [`DISCOVERED`] places.
    Discovered,
}

/// The workflow file of an invocation.
#[derive(Debug, Clone)]
pub struct Workflow {
    /// The file, absolute.
    pub path: PathBuf,
    /// The file as the user knows it: as typed, or relative to the working directory.
    pub shown: PathBuf,
    pub found: Found,
}

/// No workflow was named, and none was found.
#[derive(Debug, thiserror::Error)]
#[error(
    "no workflow file given, and none found: looked for `{}` and `{}` in `{}`",
    DISCOVERED[0],
    DISCOVERED[1],
    dir.display()
)]
pub struct NotFound {
    /// The working directory the run would have had.
    pub dir: PathBuf,
    /// A first argument that is an existing file without the `.rhai` ending: taken as a target,
    /// though the user may have meant it as the workflow.
    pub stray: Option<String>,
}

impl From<NotFound> for Diagnostic {
    fn from(e: NotFound) -> Self {
        let hint = match &e.stray {
            Some(file) => format!(
                "`{file}` was taken as a target because it does not end in `.rhai`; to run it \
                 as the workflow, use `flowrun -s {file}`"
            ),
            None => "name the workflow: `flowrun FILE.rhai [TARGETS]` or `flowrun -s FILE \
                     [TARGETS]`, or create `Flowfile.rhai`"
                .to_string(),
        };
        Diagnostic::new(e.to_string()).hint(hint)
    }
}

impl Workflow {
    /// The workflow `args` name, taken relative to `cwd` (where the command was typed), else
    /// the first of [`DISCOVERED`] that is a file in the run's working directory (`cwd`, or
    /// `-d DIR` from there).
    pub fn locate(args: &Args, cwd: &Path) -> Result<Self, NotFound> {
        if let Some(named) = args.named_workflow() {
            return Ok(Self {
                path: cwd.join(named),
                shown: named.to_path_buf(),
                found: Found::Named,
            });
        }
        let dir = args
            .directory
            .as_deref()
            .map_or(cwd.to_path_buf(), |d| cwd.join(d));
        if let Some(found) = Self::discover(&dir) {
            return Ok(found);
        }
        let stray = args
            .file
            .clone()
            .filter(|f| args.workflow.is_none() && cwd.join(f).is_file());
        Err(NotFound { dir, stray })
    }

    /// The first of [`DISCOVERED`] that is a file in `dir`.
    pub fn discover(dir: &Path) -> Option<Self> {
        DISCOVERED.iter().find_map(|name| {
            let path = dir.join(name);
            path.is_file().then(|| Self {
                path,
                shown: PathBuf::from(name),
                found: Found::Discovered,
            })
        })
    }
}
