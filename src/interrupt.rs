//! The process-wide interrupt flag. Signal handlers (SIGINT, SIGTERM) set it; the scheduler
//! stops starting jobs and the Rhai engine aborts running closures at their next operation.

use std::sync::atomic::{AtomicUsize, Ordering};

static COUNT: AtomicUsize = AtomicUsize::new(0);

/// How many interrupts arrived (0 = none). The first asks running jobs to stop after a grace
/// period; the second kills at once.
pub fn count() -> usize {
    COUNT.load(Ordering::SeqCst)
}

/// Whether any interrupt arrived.
pub fn requested() -> bool {
    count() > 0
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
