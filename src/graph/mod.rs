//! The job graph and its staleness: jobs bound from rules (the DAG), what each file looks like
//! on disk, what the store recorded, and the plan that says which jobs run and why.

pub mod accept;
pub mod dag;
pub mod dropped;
pub mod filestate;
pub mod manifest;
pub mod memo;
pub mod pending;
pub mod plan;
pub mod reason;
pub mod rulegraph;
pub mod store;
