//! flowrun: a fast, reproducible workflow runner. Workflows are Rhai files declaring rules; the
//! data flows one way: load → rules → DAG → plan → schedule → execute → report.

pub mod app;
pub mod cli;
pub mod dag;
pub mod diagnostic;
pub mod eta;
pub mod events;
pub mod exec;
pub mod exit;
pub mod filestate;
pub mod interrupt;
pub mod lock;
pub mod memory;
pub mod native;
pub mod pattern;
pub mod plan;
pub mod progress;
pub mod reason;
pub mod report;
pub mod report_html;
pub mod rule;
pub mod rules;
pub mod schedule;
pub mod script;
pub mod store;
pub mod template;
pub mod timeline;
pub mod trace;
pub mod watch;
pub mod wildcards;
