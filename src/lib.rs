//! flowrun: a fast, reproducible workflow runner. Workflows are Rhai files declaring rules; the
//! data flows one way: load → rules → DAG → plan → schedule → execute → report.

pub mod native;
pub mod script;
