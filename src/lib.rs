//! flowrun: a fast, reproducible workflow runner. Workflows are Rhai files declaring rules; the
//! data flows one way, and the tree follows it:
//!
//! load ([`script`]) → rules ([`rules`]) → DAG and plan ([`graph`]) → schedule ([`run`]) →
//! execute ([`exec`], with the [`native`] library) → report ([`report`]).
//!
//! At the top, [`app`] turns arguments into one invocation and [`watch`] loops over passes;
//! both drive a [`session::Session`]. Below them, imports only go down the pipeline; the
//! leaves every phase may use sit at the root: [`diagnostic`] (errors pointing at the source),
//! [`exit`] (published exit codes), [`interrupt`] (the Ctrl-C flag), [`memory`] (the
//! definition-time allocation bound) and [`usage`] (what a job cost). `docs/architecture.md` tells the same story at length.

pub mod app;
pub mod cli;
pub mod diagnostic;
pub mod exec;
pub mod exit;
pub mod graph;
pub mod interrupt;
pub mod memory;
pub mod native;
pub mod report;
pub mod rules;
pub mod run;
pub mod sandbox;
pub mod script;
pub mod session;
pub mod usage;
pub mod watch;

/// Where flowrun keeps its state (store, lock, scripts), inside the working directory.
pub const STATE_DIR: &str = ".flowrun";
