//! The `flowrun` binary: parse arguments, run, exit with a published code.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let args = flowrun::cli::Args::parse();
    std::process::ExitCode::from(flowrun::app::run(args))
}
