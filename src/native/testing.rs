//! Test helpers: a real Rhai engine with the whole native library, in the run phase.
//!
//! Tests run in parallel threads and the sandbox phase is process-wide, so tests only ever set
//! [`Phase::Run`] (never back to definition).

use rhai::{Dynamic, Engine};

use crate::sandbox::{set_phase, Phase};

/// An engine with [`crate::native::register`] applied, writers allowed.
pub fn engine() -> Engine {
    set_phase(Phase::Run);
    let mut engine = Engine::new();
    crate::native::register(&mut engine);
    engine
}

/// Evaluates `script`, panicking with the script and error on failure.
pub fn eval<T: Clone + Send + Sync + 'static>(script: &str) -> T {
    engine()
        .eval::<T>(script)
        .unwrap_or_else(|e| panic!("{script}: {e}"))
}

/// Evaluates `script`, which must fail; returns the error message.
pub fn eval_err(script: &str) -> String {
    match engine().eval::<Dynamic>(script) {
        Ok(v) => panic!("{script} should fail, gave {v}"),
        Err(e) => e.to_string(),
    }
}
