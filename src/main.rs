//! The `flowrun` binary: parse arguments, run, exit with a published code.

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
    flowrun::app::complete_if_asked();
    std::process::ExitCode::from(flowrun::app::main(std::env::args_os().collect()))
}
