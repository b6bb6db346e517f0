//! Error helpers shared by the numeric modules.
//!
//! The Rust APIs (readers, writers) return [`std::io::Error`]s whose message already names the
//! path and what was wrong, in the same `op `path`: reason` shape as [`super::text::io_error`],
//! so callers elsewhere in flowrun can show them as they are. The Rhai wrappers turn those, and
//! shape/index errors, into Rhai runtime errors with [`runtime`] and [`from_io`]; [`index`] and
//! [`size`] check the integers scripts pass as positions and sizes.

use std::fmt::Display;
use std::io;
use std::path::Path;

use rhai::{EvalAltResult, Position, INT};

/// Result type of fallible Rhai-facing functions.
pub type Res<T> = Result<T, Box<EvalAltResult>>;

/// A Rhai runtime error with `msg` (Rhai fills in the call position).
pub fn runtime(msg: impl Display) -> Box<EvalAltResult> {
    Box::new(EvalAltResult::ErrorRuntime(
        msg.to_string().into(),
        Position::NONE,
    ))
}

/// A Rhai runtime error from an I/O error that already carries its context.
pub fn from_io(err: io::Error) -> Box<EvalAltResult> {
    runtime(err)
}

/// Adds `op` and `path` to an I/O error, keeping its kind: ``cannot read `x.npy`: …``.
pub fn with_path(op: &str, path: &Path, err: io::Error) -> io::Error {
    io::Error::new(err.kind(), format!("{op} `{}`: {err}", path.display()))
}

/// An [`io::ErrorKind::InvalidData`] error about the content of `path`.
pub fn invalid_data(path: &Path, msg: impl Display) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("cannot read `{}`: {msg}", path.display()),
    )
}

/// An [`io::ErrorKind::InvalidInput`] error about a request (bad argument) concerning `path`.
pub fn invalid_input(op: &str, path: &Path, msg: impl Display) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("{op} `{}`: {msg}", path.display()),
    )
}

/// Checks a script's index `i` against `len`; `what` names the position (`row`, `index`).
pub fn index(i: INT, len: usize, what: &str) -> Res<usize> {
    match usize::try_from(i) {
        Ok(u) if u < len => Ok(u),
        _ if len == 0 => Err(runtime(format!(
            "{what} {i} is out of range: there are none"
        ))),
        _ => Err(runtime(format!(
            "{what} {i} is out of range: valid values are 0 to {}",
            len - 1
        ))),
    }
}

/// Checks a script's size argument (`what` names it): it must not be negative.
pub fn size(n: INT, what: &str) -> Res<usize> {
    usize::try_from(n).map_err(|_| runtime(format!("{what} must not be negative, got {n}")))
}

/// A zero-filled buffer of `n` values, or a message (instead of an abort) when memory runs out.
pub fn zeroed(n: usize) -> Result<Vec<f64>, String> {
    let mut v = Vec::new();
    v.try_reserve_exact(n)
        .map_err(|_| format!("cannot allocate {n} values ({} bytes)", n as u128 * 8))?;
    v.resize(n, 0.0);
    Ok(v)
}

/// [`zeroed`] for Rhai functions.
pub fn try_zeros(n: usize) -> Res<Vec<f64>> {
    zeroed(n).map_err(runtime)
}
