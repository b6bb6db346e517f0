//! What the user declared: rules as a workflow file states them, their file patterns with
//! wildcards, shell templates, and the validated registry the DAG asks "who makes this path?".

pub mod decl;
pub mod function;
pub mod pattern;
pub mod registry;
pub mod script;
pub mod software;
pub mod template;
pub mod wildcards;
