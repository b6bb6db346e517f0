//! The `flowrun` binary: parse arguments, run, exit with a published code.

use clap::Parser;

fn main() -> std::process::ExitCode {
    if std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == flowrun::exec::worker::WORKER_ARG)
    {
        return std::process::ExitCode::from(flowrun::exec::worker::main());
    }
    let args = flowrun::cli::Args::parse();
    std::process::ExitCode::from(flowrun::app::run(args))
}
