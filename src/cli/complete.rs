//! Shell completion: `flowrun --completions bash|zsh|fish` prints a script that completes the
//! options, their values, and the rule names and files of the workflow in the current
//! directory.
//!
//! Why clap_complete's dynamic engine (`unstable-dynamic`) rather than a static script: rule
//! names and targets exist only once a workflow is evaluated, so the shell must ask flowrun
//! itself at each Tab. The script (the same small shim for each shell, written by
//! clap_complete) calls `flowrun` again with [`VAR`] set to the shell's name and the words
//! typed so far; [`complete_if_asked`], the first thing `main` does, answers from the same
//! [`clap::Command`] that parses the command line, so options never drift from the script.
//! The engine's protocol may change between clap_complete versions, so the docs tell users to
//! source the script at shell start-up (it then always matches the installed flowrun) rather
//! than to save it.

use std::ffi::OsStr;
use std::path::Path;

use clap::CommandFactory;
use clap_complete::engine::{
    ArgValueCompleter, CompletionCandidate, PathCompleter, ValueCompleter,
};
use clap_complete::env::{Bash, EnvCompleter, Fish, Zsh};
use clap_complete::CompleteEnv;

use crate::cli::workflow::Workflow;
use crate::cli::Args;

/// The environment variable that asks flowrun for completions instead of a run.
pub const VAR: &str = "FLOWRUN_COMPLETE";

/// The shells `--completions` writes a script for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

/// What a workflow offers to complete as targets (rule names, files), each with a
/// description; given by the caller, which may evaluate workflows where this module may not.
pub type Candidates = fn(&Path) -> Vec<(String, String)>;

/// The completion script for `shell`: it calls `flowrun` (found on `PATH`) at each Tab.
pub fn script(shell: Shell) -> String {
    let completer: &dyn EnvCompleter = match shell {
        Shell::Bash => &Bash,
        Shell::Zsh => &Zsh,
        Shell::Fish => &Fish,
    };
    let mut buf = Vec::new();
    completer
        .write_registration(VAR, "flowrun", "flowrun", "flowrun", &mut buf)
        .expect("writing to memory does not fail");
    String::from_utf8_lossy(&buf).into_owned()
}

/// When the shell asks for completions ([`VAR`] is set), writes them and exits; otherwise
/// returns at once.
pub fn complete_if_asked(candidates: Candidates) {
    CompleteEnv::with_factory(move || command(candidates))
        .var(VAR)
        .complete();
}

/// The command line's definition, with the workflow's targets and the paths on disk as
/// completions of the positional arguments (the first may be a workflow file or a target) and
/// of the options that take a rule or a file.
fn command(candidates: Candidates) -> clap::Command {
    let target = move |current: &OsStr| {
        let files = PathCompleter::any().complete(current);
        targets(candidates, current)
            .into_iter()
            .chain(files)
            .collect()
    };
    ["file", "targets", "force", "until"]
        .into_iter()
        .fold(Args::command(), |command, id| {
            command.mut_arg(id, |a| a.add(ArgValueCompleter::new(target)))
        })
}

/// The targets of the workflow discovered in the current directory that start with `current`.
fn targets(candidates: Candidates, current: &OsStr) -> Vec<CompletionCandidate> {
    let prefix = current.to_string_lossy();
    let Some(workflow) = std::env::current_dir()
        .ok()
        .and_then(|cwd| Workflow::discover(&cwd))
    else {
        return Vec::new();
    };
    candidates(&workflow.path)
        .into_iter()
        .filter(|(word, _)| word.starts_with(prefix.as_ref()))
        .map(|(word, help)| CompletionCandidate::new(word).help(Some(help.into())))
        .collect()
}
