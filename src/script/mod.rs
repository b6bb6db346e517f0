//! The one door to Rhai: evaluating workflow files and calling rule closures.

pub mod sandbox;
