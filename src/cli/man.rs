//! The manual page, `flowrun --man`: roff written by clap_mangen from the same definition that
//! parses the command line, so it lists exactly the options this binary has.
//!
//! Why printed by the binary rather than kept as `docs/flowrun.1`: a file in the repository
//! needs a step to regenerate it and a test to catch it stale, and a packager still has to
//! know to install it; `flowrun --man > flowrun.1` gives the page of the flowrun at hand, and
//! `flowrun --man | man -l -` reads it without installing anything.

use clap::CommandFactory;

use crate::cli::Args;

/// The page's DESCRIPTION: what `--help` has no room for.
const DESCRIPTION: &str = "\
flowrun runs reproducible data workflows written in Rhai: it builds the graph of jobs from the \
rules a workflow file declares, reruns only what is outdated (and says why), and runs jobs in \
parallel in a deterministic order.

Without a workflow file, flowrun runs Flowfile.rhai of the working directory, or else \
workflow/Flowfile.rhai. The first argument names the workflow only when it ends in .rhai; \
otherwise it is a target. -s names a workflow of any name.

Files: flowrun.toml beside the workflow and $XDG_CONFIG_HOME/flowrun/flowrun.toml \
(~/.config/flowrun/flowrun.toml) are profiles of default options; .flowrun/ in the working \
directory holds the store of what was made and the run lock.

The user guide and the language reference are in the docs/ directory of flowrun's sources.";

/// The manual page of flowrun, in roff (section 1).
pub fn page() -> String {
    let mut buf = Vec::new();
    clap_mangen::Man::new(Args::command().long_about(DESCRIPTION))
        .render(&mut buf)
        .expect("writing to memory does not fail");
    String::from_utf8_lossy(&buf).into_owned()
}
