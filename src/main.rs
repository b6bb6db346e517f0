//! The `flowrun` binary: parse arguments, run, exit with a published code.

use clap::Parser;

#[global_allocator]
static ALLOCATOR: flowrun::memory::Counting = flowrun::memory::Counting;

fn main() -> std::process::ExitCode {
    let first = std::env::args_os().nth(1);
    if first
        .as_ref()
        .is_some_and(|a| a == flowrun::exec::worker::WORKER_ARG)
    {
        return std::process::ExitCode::from(flowrun::exec::worker::main());
    }
    if first
        .as_ref()
        .is_some_and(|a| a == flowrun::exec::mpi::RANK_ARG)
    {
        return std::process::ExitCode::from(flowrun::exec::mpi::rank_main());
    }
    if first
        .as_ref()
        .is_some_and(|a| a == flowrun::exec::node::NODE_ARG)
    {
        return std::process::ExitCode::from(flowrun::exec::node::main());
    }
    let args = flowrun::cli::Args::parse();
    std::process::ExitCode::from(flowrun::app::run(args))
}
