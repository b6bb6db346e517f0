//! The process-wide interrupt flag. Signal handlers (SIGINT, SIGTERM) set it (and watch mode can
//! cancel a pass); the scheduler stops starting jobs and the Rhai engine aborts running closures
//! at their next operation.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

static COUNT: AtomicUsize = AtomicUsize::new(0);
static CANCEL: AtomicBool = AtomicBool::new(false);

/// How many interrupts arrived (0 = none). The first asks running jobs to stop after a grace
/// period; the second kills at once.
pub fn count() -> usize {
    COUNT.load(Ordering::SeqCst)
}

/// Whether running work should stop: an interrupt arrived, or watch mode cancelled the pass.
pub fn requested() -> bool {
    count() > 0 || CANCEL.load(Ordering::SeqCst)
}

/// Stops the running pass as an interrupt would, without ending flowrun (watch mode's
/// `--on-change restart`).
pub fn cancel() {
    CANCEL.store(true, Ordering::SeqCst);
}

/// Clears a cancellation; returns whether there was one.
pub fn take_cancel() -> bool {
    CANCEL.swap(false, Ordering::SeqCst)
}

/// Installs SIGINT/SIGTERM handlers that count interrupts; a third one exits immediately.
pub fn install() -> std::io::Result<()> {
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // SAFETY: the handler only touches an atomic counter and calls `_exit`, both
        // async-signal-safe.
        unsafe {
            signal_hook::low_level::register(sig, move || {
                let n = COUNT.fetch_add(1, Ordering::SeqCst);
                if n >= 2 {
                    signal_hook::low_level::exit(130);
                }
            })?;
        }
    }
    Ok(())
}

thread_local! {
    /// The deadline of the job whose Rhai code runs on this thread (a rule's `timeout`).
    static DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// The deadline of the job running on this thread, if its rule has a `timeout`.
pub fn deadline() -> Option<Instant> {
    DEADLINE.with(Cell::get)
}

/// Runs `f` with `deadline` as this thread's job deadline, restoring the previous one after.
/// Threads a job starts (the `thread` model's pool) pass it on with this.
pub fn with_deadline<T>(deadline: Option<Instant>, f: impl FnOnce() -> T) -> T {
    let before = DEADLINE.with(|d| d.replace(deadline));
    let out = f();
    DEADLINE.with(|d| d.set(before));
    out
}

/// Whether the job running on this thread is past its deadline.
pub fn past_deadline() -> bool {
    DEADLINE.with(|d| d.get().is_some_and(|d| Instant::now() >= d))
}
