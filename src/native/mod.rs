//! The native library: fast Rust functions callable from Rhai (the "numpy" of flowrun).
//!
//! Heavy loops belong here rather than in interpreted Rhai. Everything that writes files goes
//! through [`atomic`] and refuses to run at definition time ([`crate::script::sandbox`]).
//! See `docs/native-library.md` for the script-facing reference.

pub mod atomic;
pub mod elementwise;
pub mod errors;
pub mod matrix;
pub mod random;
pub mod text;
pub mod vector;

/// Registers every native function and type on `engine`.
pub fn register(engine: &mut rhai::Engine) {
    text::register(engine);
    vector::register(engine);
    matrix::register(engine);
    random::register(engine);
}
