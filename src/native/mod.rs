//! The native library: fast Rust functions callable from Rhai (the "numpy" of flowrun).
//!
//! Heavy loops belong here rather than in interpreted Rhai. Everything that writes files goes
//! through [`atomic`] and refuses to run at definition time ([`crate::sandbox`]).
//! See `docs/native-library.md` for the script-facing reference.
//!
//! Types: [`vector::Vector`] and [`matrix::Matrix`] (with [`elementwise`] arithmetic). Data:
//! [`random`] (portable seeded values), [`npy`], [`csv`] and raw files, read in row blocks by
//! [`rows::RowReader`] for the chunked execution model. I/O requests for the async model:
//! [`io`].

pub mod atomic;
pub mod blocks;
pub mod csv;
pub mod elementwise;
pub mod errors;
pub mod io;
pub mod le;
pub mod matrix;
pub mod npy;
pub mod pyliteral;
pub mod random;
pub mod rows;
pub mod table;
#[cfg(test)]
mod testing;
pub mod text;
pub mod vector;

/// Registers every native function and type on `engine`.
pub fn register(engine: &mut rhai::Engine) {
    text::register(engine);
    blocks::register(engine);
    vector::register(engine);
    matrix::register(engine);
    random::register(engine);
    npy::register(engine);
    rows::register(engine);
    csv::register(engine);
    io::register(engine);
}
