//! flowrun: a fast, reproducible workflow runner. Workflows are Rhai files declaring rules; the
//! data flows one way: load → rules → DAG → plan → schedule → execute → report.

pub mod native;
pub mod script;
pub mod pattern;
pub mod diagnostic;
pub mod rule;
pub mod template;
pub mod rules;
pub mod interrupt;
pub mod dag;
pub mod filestate;
pub mod store;
